"""Raw SQL that names a table across a crossdb relation: a clear error, not a database error.

``RawSQL("queries_note.note")`` in ``order_by()``, ``extra(where=[...])`` and
``extra(select=...)`` reach the table of a related model through the JOIN
Django makes for a lookup across the relation.  Across databases crossdb
makes no JOIN (the condition is a set of ids, values across are read on their
own alias), so the text names a table this query does not hold: the database
would answer "no such column", or, where a same-named table exists on this
alias, read the wrong rows.  crossdb cannot rewrite raw SQL, so it refuses
when the query compiles, naming the relation and the alternative.

Installed from ``crossdb.query`` (the ``query`` seam): ``RawSQL.as_sql`` (which
``extra(select=)`` and ``extra(order_by=)`` compile to) and
``ExtraWhere.as_sql`` (``extra(where=)``).
"""

from __future__ import annotations

import functools
import re

from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.fields import is_crossdb_field
from crossdb.m2m import is_crossdb_many_to_many


def _related_tables(model) -> dict[str, str]:
    """Return ``{table: relation}`` for the models one crossdb relation away from ``model``."""
    tables = {}
    for field in model._meta.get_fields(include_hidden=True):
        if not field.is_relation or field.related_model is None:
            continue
        crossing = field if not field.auto_created or field.concrete else field.remote_field
        if is_crossdb_field(crossing) or is_crossdb_many_to_many(crossing):
            other = field.related_model._meta
            tables.setdefault(other.db_table, f"{model._meta.label}.{field.name}")
    return tables


def _names_column_of(sql: str, table: str) -> bool:
    """Return True when ``sql`` qualifies a column by ``table`` and does not select from it."""
    quoted = rf'["`]?{re.escape(table)}["`]?'
    qualifies = re.search(rf"(?<![\w$.]){quoted}\s*\.", sql, re.IGNORECASE)
    selects = re.search(rf"\b(?:FROM|JOIN)\s+{quoted}(?![\w$])", sql, re.IGNORECASE)
    return bool(qualifies) and not selects


def check(compiler, sqls) -> None:
    """Raise when the raw ``sqls`` name a table only a JOIN across would bring."""
    query = getattr(compiler, "query", None)
    model = getattr(query, "model", None)
    if model is None:
        return
    tables = _related_tables(model)
    if not tables:
        return
    # The tables the FROM clause renders: Django skips aliases no longer referred to.
    joined = {
        join.table_name
        for alias, join in query.alias_map.items()
        if query.alias_refcount.get(alias)
    }
    for sql in sqls:
        for table, relation in tables.items():
            if table not in joined and _names_column_of(sql, table):
                raise CrossDatabaseQueryError(
                    f"Raw SQL {sql!r} names the table {table!r}, reached across the "
                    f"crossdb relation {relation} from {model._meta.label}: crossdb makes "
                    "no JOIN across databases and cannot rewrite raw SQL. Use the lookup, "
                    "values() or order_by() across the relation instead (see "
                    "docs/limitations.rst, 'Raw SQL naming a table across')."
                )


def raw_sql_seam(original):
    """Wrap ``RawSQL.as_sql``."""

    @functools.wraps(original)
    def as_sql(self, compiler, connection):
        check(compiler, [self.sql])
        return original(self, compiler, connection)

    as_sql.crossdb_original = original
    return as_sql


def extra_where_seam(original):
    """Wrap ``ExtraWhere.as_sql``."""

    @functools.wraps(original)
    def as_sql(self, compiler=None, connection=None):
        if compiler is not None:
            check(compiler, self.sqls)
        return original(self, compiler, connection)

    as_sql.crossdb_original = original
    return as_sql
