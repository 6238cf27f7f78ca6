"""``order_by()`` and ``values()`` across a multi-valued crossdb relation: a row per related row.

Inside one database ``User.objects.order_by("blog_posts__created")`` and
``User.objects.values("username", "blog_posts__title")`` LEFT JOIN
``blog_post``: a user comes back once per post (once, with NULL, without
posts), and a join an earlier ``filter()`` made across the relation is
reused, so only its matching posts are rows.  Across databases the far
column is read per far row with the key (``crossdb.query_rows``), joined as
a derived table, and the local query orders by it or selects it:

- the join of the last ``filter()`` across the same relation is reused (one
  more column of its far query), as Django's ``setup_joins()`` reuses it;
  otherwise a join of every far row of the keys the local query selects;
- a far string travels as its dense rank under the far database's order,
  zero-padded, then its value (``crossdb.query_forward``): ordering and
  ``distinct()`` follow the far database's order and equality whatever the
  local collation, and the prefix is stripped from what is returned;
- other values travel as the derived table's typed columns.

A path that crosses again from the far model, or that follows a
multi-valued relation of the local database first, still raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import CharField, Q, TextField
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Expression

from crossdb import routing, transport
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.query_derived import DerivedColumn, DerivedJoin
from crossdb.query_forward import RankedTarget
from crossdb.query_paths import _multi_valued, final_field, find_crossing, ordering_path
from crossdb.query_rows import FarRowsSource, add_join, relation_ends


@dataclass(frozen=True)
class FarValue:
    """A far column read per far row: ``path`` on the far model."""

    path: str
    ranked: bool  # a string: carried as "<rank><value>"


def supported(model, name: str):
    """Return the crossing of ``name`` when it is read per related row here, else None."""
    crossing = find_crossing(model, name) if isinstance(name, str) else None
    if crossing is None or not crossing.multi_valued:
        return None
    if _multi_valued(model, list(crossing.prefix)):
        return None  # after a multi-valued local relation: the guard's error
    far_model = crossing.field.related_model
    rest = crossing.rest or "pk"
    field = final_field(far_model, rest)
    if field is None or find_crossing(far_model, rest) is not None:
        return None
    parts = rest.split(LOOKUP_SEP)
    if _multi_valued(far_model, parts):
        return None  # to many rows again on the far side: the guard's error
    # A column, or a forward key on the far model (its id, as Django's values() gives it).
    if field.is_relation and not (field.concrete and (field.many_to_one or field.one_to_one)):
        return None
    return crossing


class FarRowValue(Expression):
    """The value of ``name`` on each joined far row (a derived column once resolved)."""

    contains_aggregate = False
    contains_over_clause = False

    def __init__(self, model, name, crossing):
        super().__init__()
        self.model, self.name, self.crossing = model, name, crossing

    def __repr__(self):
        return f"FarRowValue({self.name!r})"

    @property
    def _rest(self):
        return self.crossing.rest or "pk"

    @property
    def output_field(self):
        field = final_field(self.crossing.field.related_model, self._rest)
        return transport.column_field(field)

    def resolve_expression(
        self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False
    ):
        if not allow_joins:
            raise CrossDatabaseQueryError(
                f"{self.model._meta.label}: {self.name!r} reads a column of another database "
                "where no join is allowed (update(), a check constraint)."
            )
        field = transport.column_field(final_field(self.crossing.field.related_model, self._rest))
        value = FarValue(self._rest, isinstance(field, CharField | TextField))
        alias, column = _column(query, self.model, self.crossing, value)
        if value.ranked:
            return DerivedColumn(alias, RankedTarget(column), field)
        return DerivedColumn(alias, column, field)


def reused_join(query, crossing) -> str | None:
    """Return the alias of the query's last join of far rows of the relation, or None.

    Django reuses the last join of a multi-valued relation for order_by(),
    values() and aggregates (``setup_joins(reuse=None)``): a ``filter()``'s
    join before them, whose rows are then the only ones.
    """
    for alias, join in reversed(list(query.alias_map.items())):
        if (
            isinstance(join, DerivedJoin)
            and isinstance(join.source, FarRowsSource)
            and join.source.relation == crossing.key
        ):
            return alias
    return None


def value_column(query, alias, value) -> str:
    """Return the column holding ``value`` (a FarValue) in the join ``alias``, adding it."""
    join = query.alias_map[alias]
    source, column = join.source.with_value(value)
    if source is not join.source:
        # Copy on write: clones of this query keep the join they had.
        query.alias_map[alias] = join.replaced(source)
    return column


def _column(query, model, crossing, value) -> tuple[str, str]:
    """Return ``(alias, column)`` of ``value`` in the query's last join of the relation."""
    alias = reused_join(query, crossing)
    if alias is not None:
        return alias, value_column(query, alias, value)
    far_key, key_field, key_path = relation_ends(crossing)
    far_model = crossing.field.related_model
    manager = far_model._base_manager.db_manager(routing.db_for_read(far_model))
    description = f"{model._meta.label}.{LOOKUP_SEP.join([*crossing.prefix, _accessor(crossing)])}"
    source = FarRowsSource(manager, far_key, key_field, description, Q(), crossing.key)
    source.every = True
    source.local_key_path = LOOKUP_SEP.join(key_path)
    source, column = source.with_value(value)
    return add_join(query, source, key_path), column


def _accessor(crossing) -> str:
    field = crossing.field
    return field.get_accessor_name() if crossing.reverse else field.name


def _orders_by_more_than_pk(model) -> bool:
    opts = model._meta
    return any(
        not isinstance(part, str) or part.lstrip("-+") not in ("pk", opts.pk.name)
        for part in opts.ordering
    )


def ordering(model, item):
    """Return ``item`` (an order_by() argument) as orderings by far rows' values, or None.

    ``order_by("blog_posts")`` orders, as in Django, by the related model's
    ``Meta.ordering`` (by its pk without one).
    """
    parsed = ordering_path(item)
    if parsed is None:
        return None
    name, descending, nulls_first, nulls_last = parsed
    nulls = {"nulls_first": nulls_first or None, "nulls_last": nulls_last or None}
    crossing = supported(model, name)
    if crossing is None:
        return None
    far_ordering = crossing.field.related_model._meta.ordering
    if not crossing.rest and far_ordering:
        if not all(isinstance(part, str) for part in far_ordering):
            return None  # an expression: the guard's error
        expanded = []
        for part in far_ordering:
            part_descending = part.startswith("-") != descending
            path = f"{name}{LOOKUP_SEP}{part.lstrip('-+')}"
            found = ordering(model, f"-{path}" if part_descending else path)
            if found is None:
                return None
            expanded.extend(found)
        return expanded
    last = final_field(crossing.field.related_model, crossing.rest)
    if crossing.rest and last.is_relation and _orders_by_more_than_pk(last.related_model):
        # Django orders by that model's Meta.ordering: columns of another table.
        return None
    value = FarRowValue(model, name, crossing)
    return [value.desc(**nulls) if descending else value.asc(**nulls)]
