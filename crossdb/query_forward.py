"""Grouping by, and aggregating over, far columns across a single-valued crossdb relation.

``Post.objects.values("author__username").annotate(n=Count("id"))`` and
``Post.objects.aggregate(Max("author__last_login"))`` are, in one database, a
LEFT JOIN of ``auth_user`` and a GROUP BY.  Across databases the far columns
of the rows the local query needs are read on the far alias and joined
locally as a derived table (``crossdb.query_derived``), keyed by the far key:

    LEFT OUTER JOIN unnest(%s::integer[], %s::varchar[]) AS "crossdb_far" ("k", "v0")
        ON ("crossdb_far"."k" = "blog_post"."author_id")

so the local database groups, aggregates, orders and filters (HAVING) the
local rows as Django's JOIN would: a user with three posts counts three
times in ``Sum``, a NULL or dangling key reads NULLs (the group ``None``).

Strings are compared by the far database, not the local one: a MariaDB
``_ci`` column would merge ``'ann'`` and ``'ANN'``, which a PostgreSQL far
side keeps apart (and the other way round).  A far string column therefore
travels as its dense rank under the far database's ordering, zero-padded
and followed by one value of that rank (``'0000000003ann'``): grouping,
``COUNT(DISTINCT ...)``, ``MIN``/``MAX`` and ordering by it are decided by
the far database's equality and order, whatever the local collation; the
prefix is stripped from what is returned.

The keys whose far rows are read come from the local query itself (its
WHERE part, one ``SELECT DISTINCT key`` on the local alias), bounded by
``CROSSDB_MAX_IDS`` with ``CrossDatabaseLimitError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    QuerySet,
    TextField,
)
from django.db.models.aggregates import Aggregate
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Func, OrderBy, Window
from django.db.models.functions import Coalesce, DenseRank, Substr
from django.db.models.sql.where import WhereNode

from crossdb import routing, transport
from crossdb.exceptions import CrossDatabaseLimitError, CrossDatabaseQueryError
from crossdb.lookups import ids_in
from crossdb.m2m import paths as m2m_paths
from crossdb.query_derived import DerivedColumn, DerivedJoin, DerivedTarget
from crossdb.query_paths import final_field, find_crossing

#: Digits of the far rank put before a far string (ranks are bounded by CROSSDB_MAX_IDS).
RANK_WIDTH = 10


def _error(model, what, why) -> CrossDatabaseQueryError:
    return CrossDatabaseQueryError(
        f"{model._meta.label}: {what} {why} Read the related rows with their own query "
        "(prefetch_related(), or a queryset of the related model on its own database) and "
        "combine in Python (see docs/limitations.rst)."
    )


def _is_string(field) -> bool:
    return isinstance(transport.column_field(field), CharField | TextField)


def _plain_field(field):
    """Return a field of ``field``'s value type (no auto-increment, no relation)."""
    field = transport.column_field(field)
    internal = field.get_internal_type()
    if internal in ("AutoField", "SmallAutoField"):
        return IntegerField()
    if internal == "BigAutoField":
        return BigIntegerField()
    return field


def _ends(crossing):
    """Return ``(far model, far key attname, far key field, local key column, local key name)``."""
    field = crossing.field
    if crossing.reverse:  # a reverse one-to-one: the far rows hold the key
        target = field.field.target_field
        return field.related_model, field.field.attname, field.field, target.column, target.name
    target = field.target_field
    return field.related_model, target.attname, target, field.column, field.name


@dataclass(frozen=True)
class FarColumn:
    """A column of the forward derived table: ``path`` on the far model."""

    path: str
    ranked: bool  # a string: carried as "<rank><value>"


@dataclass(frozen=True)
class ForwardSource:
    """The far rows of one single-valued crossdb relation, keyed by the far key."""

    model: object  # the local model, for messages
    crossing: object  # query_paths.Crossing (its rest is not used)
    columns: tuple

    def with_column(self, column):
        """Return ``(source, column index)`` holding ``column``."""
        if column in self.columns:
            return self, self.columns.index(column)
        return ForwardSource(self.model, self.crossing, (*self.columns, column)), len(self.columns)

    @property
    def key_path(self) -> str:
        return LOOKUP_SEP.join([*self.crossing.prefix, _ends(self.crossing)[4]])

    # -- what DerivedJoin asks --

    def describe(self) -> str:
        return f"{self.model._meta.label}.{self.key_path} (columns read across)"

    def string_key(self) -> bool:
        # DerivedJoin asks key_comparison() first; this answers the same for the MySQL case.
        local = self._local_key_field()
        return transport.narrows(local, connections[routing.db_for_read(local.model)])

    def _local_key_field(self):
        field = self.crossing.field
        return field.field.target_field if self.crossing.reverse else field

    def key_comparison(self, key_sql, local_sql, connection):
        """Return ``(key, local column)`` SQL compared as the far database compares keys."""
        local = self._local_key_field()
        if connection.vendor != "mysql" or not _is_string(local):
            return key_sql, local_sql
        if transport.narrows(local, connection):
            # The far database tells 'ann' from 'ANN': byte for byte on both sides.
            return transport.exact_sql(key_sql, connection), transport.exact_sql(
                local_sql, connection
            )
        # Both compare under a collation: the local column's own, which the
        # carried keys (of the derived table's default collation) take.
        charset, collation = _column_collation(connection, local)
        return f"CONVERT({key_sql} USING {charset}) COLLATE {collation}", local_sql

    def fields(self) -> list:
        far_model, _attname, key_field, _column, _name = _ends(self.crossing)
        out = [key_field]
        for column in self.columns:
            field = _plain_field(final_field(far_model, column.path))
            if column.ranked:
                length = getattr(field, "max_length", None)
                field = CharField(max_length=length + RANK_WIDTH if length else None)
            out.append(field)
        return out

    def rows(self, compiler, connection) -> list:
        far_model, far_key, _key_field, _column, _name = _ends(self.crossing)
        fields = self.fields()
        # A subquery's compiler has no alias of its own (Query.as_sql): its connection's.
        using = compiler.using or connection.alias
        keys = _needed_keys(
            compiler, using, self.key_path, self._local_key_field(), self.describe()
        )
        if not keys:
            return []
        alias = routing.home_alias(far_model, using, "db_for_read")
        queryset = far_model._base_manager.db_manager(alias).filter(ids_in(far_key, keys))
        names = {}  # far path or rank -> position in the far row
        ranks = {}
        for index, column in enumerate(self.columns):
            names.setdefault(column.path, None)
            if column.ranked:
                # DENSE_RANK under the far database's own order: equal strings
                # (as it compares) share a rank, different ones do not.
                rank = f"crossdb_r{index}"
                ranks[column.path] = rank
                queryset = queryset.annotate(
                    **{rank: Window(DenseRank(), order_by=F(column.path).asc())}
                )
                names.setdefault(rank, None)
        names = list(names)
        far_rows = list(queryset.order_by().values_list(far_key, *names))
        position = {name: index + 1 for index, name in enumerate(names)}
        columns = [[row[0] for row in far_rows]]
        for column in self.columns:
            values = [row[position[column.path]] for row in far_rows]
            if column.ranked:
                values = _ranked(values, [row[position[ranks[column.path]]] for row in far_rows])
            columns.append(values)
        prepared_keys = transport.prepare_keys(fields[0], connection, columns[0])
        converted = [
            transport.pair_column(field, connection, values)
            for field, values in zip(fields[1:], columns[1:], strict=True)
        ]
        return [
            [key, *(values[index] for values in converted)]
            for index, key in enumerate(prepared_keys)
            if key is not None
        ]


def _column_collation(connection, field) -> tuple[str, str]:
    """Return ``(character set, collation)`` of ``field``'s column on MySQL (read once)."""
    cache = connection.__dict__.setdefault("crossdb_collations", {})
    key = (field.model._meta.db_table, field.column)
    if key not in cache:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                key,
            )
            found = cursor.fetchone()
        if not found or not all(found) or not all(part.isidentifier() for part in found):
            raise CrossDatabaseQueryError(
                f"{field.model._meta.label}.{field.name}: the collation of its column could not "
                "be read, so keys read on the other database cannot be compared with it."
            )
        cache[key] = found
    return cache[key]


def _ranked(values, ranks) -> list:
    """Return each value as ``"<rank><one value of that rank>"`` (None stays None)."""
    # Values the far database holds equal share a rank; one spelling stands for them.
    spelling = {}
    for value, rank in zip(values, ranks, strict=True):
        if value is not None and rank not in spelling:
            spelling[rank] = str(rank).zfill(RANK_WIDTH) + value
    pairs = zip(values, ranks, strict=True)
    return [None if value is None else spelling[rank] for value, rank in pairs]


def _reads_derived(node) -> bool:
    if isinstance(node, DerivedColumn):
        return True
    children = getattr(node, "children", None)
    if children is None:
        children = getattr(node, "get_source_expressions", lambda: [])()
    return any(child is not None and _reads_derived(child) for child in children)


def _needed_keys(compiler, using, key_path, key_field, description) -> list:
    """Return the distinct keys of the rows the local query selects (its WHERE part).

    A condition across another database (an id set) is evaluated again, one
    more query on its alias, rather than left out: a selective search must
    not read, nor be refused for, the far rows of the whole table.  One that
    reads a derived table is left out (the keys of every row, a superset).
    """
    query = compiler.query
    where, _having, _qualify = query.where.split_having_qualify(
        must_group_by=query.group_by is not None
    )
    inner = query.clone()
    inner.where = WhereNode() if where is None or _reads_derived(where) else where
    for alias, join in inner.alias_map.items():
        if isinstance(join, DerivedJoin):
            inner.alias_refcount[alias] = 0  # never compiled: no far query from here
    inner.clear_ordering(force=True)
    inner.clear_limits()
    inner.clear_select_clause()
    inner.group_by = None
    inner.set_annotation_mask(())
    inner.combinator = None
    queryset = QuerySet(model=inner.model, query=inner, using=using)
    # Collation twins ('ann', 'ANN') are distinct keys when the far database tells them apart.
    exact = transport.narrows(key_field, connections[using])
    key = transport.ExactKey(F(key_path), key_field) if exact else key_path
    values = queryset.values_list(key, flat=True).distinct()
    limit = getattr(settings, "CROSSDB_MAX_IDS", None)
    keys = [
        key for key in (values[: limit + 1] if limit is not None else values) if key is not None
    ]
    if limit is not None and len(keys) > limit:
        raise CrossDatabaseLimitError(
            f"{description} needs the rows of more than {limit} keys on the other database, "
            f"more than CROSSDB_MAX_IDS={limit} allows. Narrow the queryset, or raise "
            "CROSSDB_MAX_IDS."
        )
    return keys


def _parent_alias(query, crossing):
    """Return the alias of the table holding the local key (the prefix JOINed as Django would)."""
    start = query.get_initial_alias()
    if not crossing.prefix:
        return start
    info = query.setup_joins(list(crossing.prefix), query.get_meta(), start)
    # A nullable step gives a row of NULLs, as the LEFT JOIN Django's annotate makes.
    query.promote_joins(info.joins[1:])
    return info.joins[-1]


class RankedTarget(DerivedTarget):
    """A derived column holding ``"<rank><value>"``: the value is what Django returns."""

    def get_db_converters(self, connection):
        return [_strip_rank]


def _strip_rank(value, expression, connection):
    return value if value is None else value[RANK_WIDTH:]


def _check_path(model, name, crossing) -> None:
    far_model = crossing.field.related_model
    if crossing.multi_valued:
        raise _error(model, f"{name!r}", "crosses to several rows of another database.")
    if crossing.rest and find_crossing(far_model, crossing.rest) is not None:
        raise _error(
            model,
            f"{name!r}",
            "crosses into a third database from the related model; crossdb reads columns "
            "of the related model's own database only.",
        )


def far_column(query, model, name, crossing, *, raw=False):
    """Return the DerivedColumn of ``name`` (across ``crossing``), joining its derived table.

    A far string is its ranked form (see the module docstring); ``raw=True``
    gives the ranked text itself, for an aggregate to unwrap.
    """
    _check_path(model, name, crossing)
    far_model = crossing.field.related_model
    path = crossing.rest or "pk"  # values("shop_profile"): the related row's key
    field = final_field(far_model, path)
    column = FarColumn(path, _is_string(field))
    parent = _parent_alias(query, crossing)
    for alias, join in query.alias_map.items():
        if (
            isinstance(join, DerivedJoin)
            and isinstance(join.source, ForwardSource)
            and join.source.crossing.key == crossing.key
            and join.parent_alias == parent
        ):
            source, index = join.source.with_column(column)
            if source is not join.source:
                # Copy on write: clones of this query keep the join they had.
                query.alias_map[alias] = join.replaced(source)
            break
    else:
        source, index = ForwardSource(model, crossing, ()).with_column(column)
        alias, _ = query.table_alias(DerivedJoin.table_name, create=True)
        local_column = _ends(crossing)[3]
        query.alias_map[alias] = DerivedJoin(source, parent, local_column, alias)
    name = f"v{index}"
    if column.ranked and not raw:
        return DerivedColumn(alias, RankedTarget(name), _plain_field(field))
    return DerivedColumn(alias, name, source.fields()[index + 1] if raw else _plain_field(field))


# -- values(<far column>).annotate(<aggregate>): group by the far values --


def group_by_far_values(query) -> None:
    """Turn the far fields of a values() query into columns of derived tables, before grouping.

    ``query_values`` selects the local key in their place and fills the far
    values in Python, which grouping would decide on the key.  Here each far
    field becomes an annotation of the same name reading the derived table,
    selected where values() named it, so Django's GROUP BY groups by it.
    """
    crossing_of, output = query.crossdb_values, query.crossdb_output
    model = query.model
    for name, (_key, crossing) in crossing_of.items():
        if crossing.multi_valued:
            raise _error(model, f"values({name!r})", "crosses to several rows.")
        query.annotations[name] = far_column(query, model, name, crossing)
        query.append_annotation_mask([name])
    fields = [*output, *(name for name in query.annotation_select if name not in output)]
    query.set_values(fields)
    query.crossdb_values = None
    query.crossdb_output = None


# -- Count/Sum/Avg/Min/Max over far columns --


def _f_names(expression):
    """Yield the names of every F() under ``expression`` (its filter left out)."""
    if isinstance(expression, F):
        yield expression.name
        return
    if isinstance(expression, Aggregate):
        sources = Func.get_source_expressions(expression)
    else:
        sources = getattr(expression, "get_source_expressions", lambda: [])()
    for source in sources:
        if source is not None:
            yield from _f_names(source)


def _forward_crossings(model, aggregate):
    """Return ``{name: crossing}`` when every crossing of ``aggregate`` is forward, else None."""
    crossings = {}
    for name in _f_names(aggregate):
        if m2m_paths.through_path(model, name):
            return None
        crossing = find_crossing(model, name)
        if crossing is None:
            continue
        if crossing.reverse or crossing.field.many_to_many or crossing.multi_valued:
            return None  # query_aggregates' (reverse) or query_guard's (error)
        crossings[name] = crossing
    return crossings or None


def _replace(query, model, expression, crossings, description):
    """Return ``expression`` with each F() across read from its derived table."""
    if isinstance(expression, F):
        crossing = crossings.get(expression.name)
        if crossing is None:
            return expression
        column = far_column(query, model, expression.name, crossing)
        if isinstance(column.target, RankedTarget):
            raise _error(
                model,
                description,
                "computes with a string of another database, which the local database "
                "would compare under its own collation; crossdb aggregates far strings "
                "directly under Count(), Min() and Max() only.",
            )
        return column
    if not hasattr(expression, "get_source_expressions"):
        return expression
    copy = expression.copy()
    copy.set_source_expressions(
        [
            None if source is None else _replace(query, model, source, crossings, description)
            for source in expression.get_source_expressions()
        ]
    )
    return copy


def forward_aggregate(aggregate, query):
    """Return the local expression of ``aggregate`` over far columns, or None if not one.

    The returned expression is unresolved (the caller resolves it).
    """
    model = getattr(query, "model", None)
    if model is None:
        return None
    crossings = _forward_crossings(model, aggregate)
    if crossings is None:
        return None
    description = f"{aggregate.__class__.__name__}({', '.join(map(repr, crossings))})"
    copy = aggregate.copy()
    sources = list(Func.get_source_expressions(copy))
    first = sources[0] if sources else None
    if isinstance(first, F) and first.name in crossings:
        crossing = crossings[first.name]
        if _is_string(final_field(crossing.field.related_model, crossing.rest)):
            ranked = far_column(query, model, first.name, crossing, raw=True)
            return _ranked_aggregate(model, copy, ranked, sources, description)
    copy.source_expressions = [
        None if source is None else _replace(query, model, source, crossings, description)
        for source in sources
    ]
    return copy


def _ranked_aggregate(model, aggregate, ranked, sources, description):
    """Return Count/Min/Max of a far string, decided on its ranked form."""
    function = type(aggregate)
    if function is Count:
        aggregate.source_expressions = [ranked, *sources[1:]]
        return aggregate
    if function not in (Min, Max):
        raise _error(
            model,
            description,
            "aggregates a string of another database; crossdb computes Count(), Min() "
            "and Max() of far strings (in the far database's order).",
        )
    default = aggregate.default
    aggregate.default = None
    aggregate.source_expressions = [ranked, *sources[1:]]
    # The rank decides the order; the prefix goes before the value is returned.
    output = ranked.output_field
    value = Substr(aggregate, RANK_WIDTH + 1, output_field=output)
    if default is not None:
        value = Coalesce(value, default, output_field=output)
    return value


# -- order_by(<far field grouped by>) --


def far_orderings(query, items) -> dict:
    """Return ``{position: OrderBy}`` for the items of order_by() naming a far column grouped by.

    Ordered by the ranked form (the far database's order), NULLs (no related
    row) where the far database puts them, as ``crossdb.query_order`` ranks.
    """
    found = {}
    for index, item in enumerate(items):
        if isinstance(item, str) and item != "?":
            name, descending = item.lstrip("-+"), item.startswith("-")
        elif type(item) is F:
            name, descending = item.name, False
        else:
            continue
        column = query.annotations.get(name)
        if not isinstance(column, DerivedColumn):
            continue
        join = query.alias_map.get(column.alias)
        if not isinstance(join, DerivedJoin) or not isinstance(join.source, ForwardSource):
            continue
        far_model = join.source.crossing.field.related_model
        vendor = connections[routing.db_for_read(far_model)].vendor
        # PostgreSQL (and Oracle) sort NULLs as the largest value; SQLite and MySQL the smallest.
        nulls_large = vendor in ("postgresql", "oracle")
        last = nulls_large != descending
        found[index] = OrderBy(
            F(name), descending=descending, nulls_last=last or None, nulls_first=(not last) or None
        )
    return found
