"""Values computed on another database, joined locally as a derived table.

Django answers ``User.objects.annotate(n=Count("blog_posts"))`` with a JOIN
and a GROUP BY inside one database.  Across databases the far side is
computed on its own alias (``SELECT author_id, COUNT(id) ... GROUP BY
author_id``) and its rows ``(key, value, ...)`` are handed to the local query
as one parameter read as a table (``crossdb.transport.render_pairs``):

    LEFT OUTER JOIN unnest(%s::integer[], %s::bigint[]) AS "crossdb_far" ("k", "v0")
        ON ("crossdb_far"."k" = "auth_user"."id")

``DerivedJoin`` is that entry of ``Query.alias_map`` (it renders itself, as
Django's ``Join`` does, and is relabelled, cloned and combined like one); its
rows are read when the query is compiled, so querysets stay lazy and each
evaluation sees the far side as it is.  ``DerivedColumn`` is a column of it in
the local query's expressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django.core.exceptions import FieldError
from django.db.models.expressions import Col
from django.db.models.sql.constants import LOUTER

from crossdb import django_versions, transport
from crossdb.exceptions import CrossDatabaseQueryError

#: The table name Django's alias bookkeeping sees (aliases: crossdb_far, T4, ...).
TABLE_NAME = "crossdb_far"


class DerivedJoin:
    """``LEFT OUTER JOIN (<rows read on another alias>) alias ON alias.k = parent.key``.

    ``source`` provides ``fields()`` (the key's field, then each value
    column's) and ``rows(compiler, connection)`` (rows converted for
    ``connection``, keys first), and ``describe()`` for errors; optionally
    ``key_comparison(key_sql, local_sql, connection)``, returning both sides
    of the ON condition as they must be compared (else ``string_key()``
    decides the MySQL/MariaDB byte-for-byte comparison).
    """

    join_type = LOUTER
    nullable = True
    filtered_relation = None
    join_field = None
    table_name = TABLE_NAME

    def __init__(self, source, parent_alias, key_column, table_alias=None):
        self.source = source
        self.parent_alias = parent_alias
        self.key_column = key_column
        self.table_alias = table_alias

    def as_sql(self, compiler, connection):
        quote = partial(django_versions.quote_alias, compiler)
        # Quoted as Django's Col quotes it: T3 stays bare, crossdb_far is quoted.
        alias_sql = quote(self.table_alias)
        fields = self.source.fields()
        rows = self.source.rows(compiler, connection)
        # A source of far rows (not groups) repeats a key once per row.
        unique = getattr(self.source, "unique_keys", True)
        rendered = transport.render_pairs(alias_sql, fields, connection, rows, unique)
        if rendered is None:
            raise CrossDatabaseQueryError(
                f"{self.source.describe()}: the values read on the other database cannot be "
                f"carried into a query on {connection.vendor} (a key or value type it cannot "
                "hold as a parameter). Read them with their own query and combine in Python."
            )
        from_sql, params = rendered
        key_sql = f"{alias_sql}.{connection.ops.quote_name('k')}"
        local_sql = f"{quote(self.parent_alias)}.{connection.ops.quote_name(self.key_column)}"
        compare = getattr(self.source, "key_comparison", None)
        if compare is not None:
            # The source says how its keys compare with the local column.
            key_sql, local_sql = compare(key_sql, local_sql, connection)
        elif connection.vendor == "mysql" and self.source.string_key():
            # Keys compare as the other database compared them: byte for byte.
            key_sql = transport.exact_sql(key_sql, connection)
            local_sql = transport.exact_sql(local_sql, connection)
        return f"LEFT OUTER JOIN {from_sql} ON ({key_sql} = {local_sql})", params

    # -- what Django's Query does with the entries of alias_map --

    def relabeled_clone(self, change_map):
        return self.__class__(
            self.source,
            change_map.get(self.parent_alias, self.parent_alias),
            self.key_column,
            change_map.get(self.table_alias, self.table_alias),
        )

    def replaced(self, source):
        """Return this join reading ``source`` (a source with more columns)."""
        return self.__class__(source, self.parent_alias, self.key_column, self.table_alias)

    @property
    def identity(self):
        return (self.__class__, self.source, self.parent_alias, self.key_column)

    def __eq__(self, other):
        if not isinstance(other, DerivedJoin):
            return NotImplemented
        return self.identity == other.identity

    def __hash__(self):
        return hash((self.__class__, id(self.source), self.parent_alias, self.key_column))

    def equals(self, other):
        return self == other

    def demote(self):
        # A missing far row is a row of NULLs (Count 0): the join stays outer.
        return self

    def promote(self):
        return self


@dataclass(frozen=True)
class DerivedTarget:
    """What ``Col`` asks of its target, for a column of a derived table."""

    column: str
    primary_key: bool = False

    def get_db_converters(self, connection):
        return []


class DerivedColumn(Col):
    """A column (``v0``, ``v1``...) of a ``DerivedJoin`` in the local query.

    A ``Col``, so that Django's own bookkeeping treats it as one: repointed
    into the inner query when an aggregate runs over a sliced or grouped
    queryset (``get_aggregation``), relabelled with the join, grouped by.
    """

    def __init__(self, alias, name, output_field):
        target = name if isinstance(name, DerivedTarget) else DerivedTarget(name)
        super().__init__(alias, target, output_field)

    @property
    def name(self):
        return self.target.column

    def __repr__(self):
        return f"DerivedColumn({self.alias!r}, {self.target.column!r})"


def resolve_ref_seam(original):
    """Wrap ``Query.resolve_ref``: a derived table is a joined table where joins are refused.

    ``update(name=F("max"))`` with ``max`` an aggregate read from a derived
    table: Django refuses an annotation over a JOINed table where no join is
    allowed ("Joined field references are not permitted in this query"),
    testing ``isinstance(alias_map[alias], Join)``, which a derived table is
    not; the same refusal is raised for it.
    """

    def resolve_ref(self, name, allow_joins=True, reuse=None, summarize=False):
        annotation = self.annotations.get(name)
        if annotation is not None and not allow_joins:
            for alias in self._gen_col_aliases([annotation]):
                if isinstance(self.alias_map.get(alias), DerivedJoin):
                    raise FieldError("Joined field references are not permitted in this query")
        return original(self, name, allow_joins, reuse, summarize)

    resolve_ref.crossdb_original = original
    return resolve_ref
