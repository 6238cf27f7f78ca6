"""``values()`` / ``values_list()`` naming fields across a single-valued crossdb relation.

``Post.objects.values("title", "author__username")`` would JOIN ``auth_user``
inside blog_db.  Such a field is replaced, in the query sent to blog_db, by
the local key (``author``); the rows come back in batches, and each batch's
keys are read on the far alias in one query per relation
(``User.objects.filter(id__in=keys).values_list("id", "username")``), like a
LEFT JOIN: a NULL or dangling key gives ``None``.

Only what stays bounded by the rows themselves is answered this way.  A
multi-valued relation (one row per related row), ``distinct()`` and grouping
(``annotate()`` with an aggregate) over such fields would be decided on the
local key rather than on the far values, so they raise
``CrossDatabaseQueryError``.
"""

from __future__ import annotations

from itertools import islice

from django.db.models.constants import LOOKUP_SEP
from django.db.models.query import (
    BaseIterable,
    FlatValuesListIterable,
    NamedValuesListIterable,
    ValuesIterable,
    ValuesListIterable,
)
from django.db.models.utils import create_namedtuple_class

from crossdb import query_forward, query_per_row, routing
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.lookups import ids_in
from crossdb.query_lookups import find_crossing

_SHAPES = {
    ValuesIterable: "dict",
    ValuesListIterable: "tuple",
    FlatValuesListIterable: "flat",
    NamedValuesListIterable: "named",
}


def _error(model, field, why):
    return CrossDatabaseQueryError(
        f"{model._meta.label}: values({field!r}) reads a column of another database, "
        f"{why}. Read the related rows with their own query (prefetch_related(), or a "
        "queryset of the related model) and combine the results in Python."
    )


def plan(model, fields, known=()):
    """Return ``(fields for the local query, {field: (local key, crossing)})``.

    Names in ``known`` (annotations, such as far columns already grouped by) stay local.
    """
    local, crossing_of = [], {}
    for name in fields:
        crossing = (
            find_crossing(model, name) if isinstance(name, str) and name not in known else None
        )
        if crossing is None:
            local.append(name)
            continue
        if crossing.multi_valued:
            raise _error(model, name, "through a multi-valued relation (a row per related row)")
        field = crossing.field
        # What follows the crossing is the far values_list()'s to check.
        key_name = field.field.target_field.name if crossing.reverse else field.name
        key = LOOKUP_SEP.join([*crossing.prefix, key_name])
        crossing_of[name] = (key, crossing)
        if key not in local:
            local.append(key)
    return local, crossing_of


def refuse_if_combined(query):
    """Raise if ``query`` groups or de-duplicates rows whose values come from another database."""
    values = getattr(query, "crossdb_values", None)
    if not values:
        return
    name = next(iter(values))
    if query.distinct:
        raise _error(query.model, name, "and distinct() would compare the local keys instead")
    if query.group_by is not None:
        raise _error(query.model, name, "and annotate() would group by the local keys instead")


def _far_end(crossing):
    """Return ``(far model, far key attname)`` of a crossing."""
    field = crossing.field
    if crossing.reverse:
        return field.related_model, field.field.attname
    return field.related_model, field.target_field.attname


def _far_values(far_model, far_key, keys, rests, outer_alias):
    """Return ``{key: {rest: value}}`` read on the far model's alias.

    That alias is the routers' answer; when they abstain, the outer query's
    alias if the far table lives there (``routing.home_alias``, as lookups).
    """
    alias = routing.home_alias(far_model, outer_alias, "db_for_read")
    rows = (
        far_model._base_manager.db_manager(alias)
        .filter(ids_in(far_key, keys))
        .order_by()
        .values_list(far_key, *rests)
    )
    return {row[0]: dict(zip(rests, row[1:], strict=True)) for row in rows}


class CrossDatabaseValuesIterable(BaseIterable):
    """The rows of values()/values_list() with the far columns filled in."""

    shape = "dict"

    def __iter__(self):
        queryset = self.queryset
        query = queryset.query
        if not getattr(query, "crossdb_values", None):
            # Grouped by the far values (crossdb.query_forward): Django's own rows.
            django_iterable = _DJANGO_ITERABLES[self.shape]
            yield from django_iterable(queryset, self.chunked_fetch, self.chunk_size)
            return
        refuse_if_combined(query)
        fields, crossing_of = query.crossdb_output, query.crossdb_values
        compiler = query.get_compiler(queryset.db)
        rows = compiler.results_iter(
            tuple_expected=True, chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size
        )
        # The local row: extra columns first, as Django's ValuesIterable reads it.
        names = list(query.selected or [*query.extra_select, *query.values_select])
        names += [name for name in query.annotation_select if name not in names]
        position = {name: index for index, name in enumerate(names)}
        keys = {name: position[key] for name, (key, _crossing) in crossing_of.items()}
        size = self.chunk_size if self.chunked_fetch else None
        if self.shape == "named":
            tuple_class = create_namedtuple_class(*fields)
        while batch := list(islice(rows, size)):
            filled = self._fill(batch, crossing_of, keys)
            # (field, position in the local row, far values by key or None)
            plan = [
                (name, keys[name], filled[name])
                if name in crossing_of
                else (name, position[name], None)
                for name in fields
            ]
            if self.shape == "dict":
                for row in batch:
                    yield {
                        name: row[index] if far is None else far.get(row[index])
                        for name, index, far in plan
                    }
                continue
            for row in batch:
                values = tuple(
                    row[index] if far is None else far.get(row[index]) for _n, index, far in plan
                )
                if self.shape == "flat":
                    yield values[0]
                elif self.shape == "named":
                    yield tuple.__new__(tuple_class, values)
                else:
                    yield values
            if size is None:
                return

    def _fill(self, batch, crossing_of, keys):
        """Return ``{field: {key: value}}``, one query per far model (authors with editors)."""
        groups = {}
        for name, (_key, crossing) in crossing_of.items():
            groups.setdefault(_far_end(crossing), []).append((name, crossing.rest or "pk"))
        filled = {}
        for (far_model, far_key), wanted in groups.items():
            found_keys = {row[keys[name]] for row in batch for name, _rest in wanted} - {None}
            rests = list(dict.fromkeys(rest for _name, rest in wanted))
            found = (
                _far_values(far_model, far_key, found_keys, rests, self.queryset.db)
                if found_keys
                else {}
            )
            for name, rest in wanted:
                filled[name] = {k: values[rest] for k, values in found.items()}
        return filled


def _iterable_for(shape):
    return type(
        f"CrossDatabaseValues{shape.title()}Iterable",
        (CrossDatabaseValuesIterable,),
        {"shape": shape},
    )


_ITERABLES = {shape: _iterable_for(shape) for shape in _SHAPES.values()}
_DJANGO_ITERABLES = {shape: iterable for iterable, shape in _SHAPES.items()}
# Module attributes, so that a pickled queryset finds its iterable class by name.
globals().update({iterable.__name__: iterable for iterable in _ITERABLES.values()})


def values_seam(original):
    """Wrap ``QuerySet._values``: put local keys in place of fields across."""

    def _values(self, *fields, **expressions):
        per_row = {
            name: crossing
            for name in fields
            if isinstance(name, str)
            and name not in self.query.annotations
            and (crossing := query_per_row.supported(self.model, name)) is not None
            # values("blog_posts") would be an annotation named as the relation.
            and crossing.rest
        }
        if per_row:
            # A row per related row: the far value joined, selected by its name.
            self = self.annotate(
                **{
                    name: query_per_row.FarRowValue(self.model, name, crossing)
                    for name, crossing in per_row.items()
                }
            )
        local, crossing_of = plan(self.model, fields, self.query.annotations)
        if not crossing_of:
            clone = original(self, *fields, **expressions)
            clone.query.crossdb_values = None
            return clone
        clone = original(self, *local, **expressions)
        # What the rows hold: values_list("author__username") used as a filter
        # value is read again by these names.
        clone._fields = tuple(fields)
        clone.query.crossdb_values = crossing_of
        clone.query.crossdb_output = tuple(fields)
        refuse_if_combined(clone.query)
        return clone

    _values.crossdb_original = original
    return _values


def shape_seam(original):
    """Wrap ``QuerySet.values`` / ``values_list``: fill far columns when there are some."""

    def shaped(self, *args, **kwargs):
        clone = original(self, *args, **kwargs)
        if getattr(clone.query, "crossdb_values", None):
            clone._iterable_class = _ITERABLES[_SHAPES.get(clone._iterable_class, "dict")]
        return clone

    shaped.crossdb_original = original
    return shaped


def combine_seam(original):
    """Wrap a Query method that groups or de-duplicates: refuse it over far columns."""

    def combined(self, *args, **kwargs):
        if original.__name__ == "set_group_by" and getattr(self, "crossdb_values", None):
            # values(<far field>).annotate(<aggregate>): group by the far values.
            query_forward.group_by_far_values(self)
        result = original(self, *args, **kwargs)
        refuse_if_combined(self)
        return result

    combined.crossdb_original = original
    return combined
