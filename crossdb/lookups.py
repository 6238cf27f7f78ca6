"""Carry a set of ids from one database into a query on another.

Every crossdb operation ends with "the rows of this table whose column is in
these ids", where the ids were read on another alias.  ``IN (%s, %s, ...)``
with one placeholder per id breaks on SQLite past its variable limit, and
Django 5.2's prefetch renders ``id = 1 OR id = 2 OR ...``, which SQLite
refuses past ~1000 terms.  ``IdsIn`` sends the whole set as one value:

- PostgreSQL: ``col = ANY(%s::type[])`` with the list as one array parameter;
- SQLite: ``col IN (SELECT value FROM json_each(%s))`` with one JSON text;
- MySQL/MariaDB: ``col IN (...)`` as Django writes it; mysqlclient
  interpolates parameters on the client, so no placeholder limit applies;
- any other backend: Django's ``In`` (which splits by ``max_in_list_size``).

So a set of any size is one query on every backend crossdb supports.
"""

from __future__ import annotations

import json

from django.core.exceptions import EmptyResultSet
from django.db.models import F
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In

# Values SQLite's json_each() gives back with the type they had in Python.
_JSON_SAFE = (int, str)


class IdsInMixin:
    """Render a direct list of values as one parameter where the backend can."""

    def as_sql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        render = getattr(self, f"_as_{connection.vendor}", None)
        if render is None:
            return super().as_sql(compiler, connection)
        values = self._db_values(compiler, connection)
        if values is None:
            return super().as_sql(compiler, connection)
        if not values:
            raise EmptyResultSet
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rendered = render(connection, lhs_sql, values)
        if rendered is None:
            return super().as_sql(compiler, connection)
        sql, params = rendered
        return sql, (*lhs_params, *params)

    def _db_values(self, compiler, connection):
        # In.process_rhs() drops None, removes duplicates and runs the target
        # field's get_db_prep_value(); only its parameters are kept.  None when
        # a value is an expression (its SQL is more than one placeholder).
        try:
            sql, params = In.process_rhs(self, compiler, connection)
        except EmptyResultSet:
            return []
        if sql.count("%s") != len(params) or len(sql) != 4 * len(params):
            return None
        return list(params)

    def _as_postgresql(self, connection, lhs_sql, values):
        db_type = self.lhs.output_field.cast_db_type(connection)
        if db_type is None:
            return None
        return f"{lhs_sql} = ANY(%s::{db_type}[])", (values,)

    def _as_sqlite(self, connection, lhs_sql, values):
        if not all(isinstance(value, _JSON_SAFE) for value in values):
            return None
        return f"{lhs_sql} IN (SELECT value FROM json_each(%s))", (json.dumps(values),)


class IdsIn(IdsInMixin, In):
    """``col IN ids`` for a plain column, with ids carried as one parameter."""

    lookup_name = "crossdb_in"


class CrossDatabaseRelatedIn(IdsInMixin, RelatedIn):
    """The ``in`` lookup of crossdb fields: ``author__in=[...]`` as one parameter."""


def ids_in(field_name: str, values) -> IdsIn:
    """Return a filter expression: ``field_name`` is one of ``values``."""
    return IdsIn(F(field_name), list(values))
