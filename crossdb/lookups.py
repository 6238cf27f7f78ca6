"""The lookups that carry a set of ids from one database into a query on another.

Every crossdb operation ends with "the rows of this table whose column is in
these ids", where the ids were read on another alias.  ``IN (%s, %s, ...)``
with one placeholder per id breaks on SQLite past its variable limit, and
Django 5.2's prefetch renders ``id = 1 OR id = 2 OR ...``, which SQLite
refuses past ~1000 terms.  ``IdsIn`` renders the set through
``crossdb.transport``: converted through the column's field, values the column
cannot hold dropped, compared exactly as the referenced key, and carried as
one parameter (PostgreSQL, SQLite) or under the packet limit (MySQL/MariaDB).
Any other backend gets Django's ``In`` (which splits by ``max_in_list_size``).
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models import F
from django.db.models.fields.related_lookups import RelatedExact, RelatedIn
from django.db.models.lookups import In

from crossdb import transport


class IdsInMixin:
    """Render a direct list of values through ``crossdb.transport``."""

    def as_sql(self, compiler, connection):
        if not self.rhs_is_direct_value() or connection.vendor not in transport.VENDORS:
            return super().as_sql(compiler, connection)
        field = self.lhs.output_field
        try:
            values = transport.prepare(field, connection, self._direct_values())
        except TypeError:
            return super().as_sql(compiler, connection)  # expressions among the values
        if not values:
            raise EmptyResultSet
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        if lhs_params:
            return super().as_sql(compiler, connection)  # an expression, not a column
        rendered = transport.render_in(lhs_sql, self._lhs_field(field), connection, values)
        if rendered is None:
            return super().as_sql(compiler, connection)
        return rendered

    def _direct_values(self):
        # RelatedIn has normalised model instances to their keys already.
        return list(self.rhs)

    def _lhs_field(self, field):
        # A column of a crossdb relation (``author_id``) is its field: the
        # comparison follows the relation's target.
        return getattr(self.lhs, "target", None) or field


class IdsIn(IdsInMixin, In):
    """``col IN ids`` for a plain column, with ids carried as one parameter."""

    lookup_name = "crossdb_in"


class CrossDatabaseRelatedIn(IdsInMixin, RelatedIn):
    """The ``in`` lookup of crossdb fields: ``author__in=[...]`` through the transport."""


class CrossDatabaseRelatedExact(RelatedExact):
    """The ``exact`` lookup of crossdb fields (reverse managers): compared as the target does."""

    def as_sql(self, compiler, connection):
        if connection.vendor not in transport.VENDORS or not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        if rhs_sql != "%s" or len(rhs_params) != 1 or rhs_params[0] is None:
            return super().as_sql(compiler, connection)
        field = self.lhs.output_field
        if not transport.holds(field, connection, rhs_params[0]):
            raise EmptyResultSet
        sql, repeats = transport.equal_sql(lhs_sql, getattr(self.lhs, "target", field), connection)
        return sql, (*lhs_params, *rhs_params) * repeats


def ids_in(field_name: str, values) -> IdsIn:
    """Return a filter expression: ``field_name`` is one of ``values``."""
    return IdsIn(F(field_name), list(values))
