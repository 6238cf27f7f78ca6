"""``order_by()`` on a column across a single-valued crossdb relation.

``Post.objects.order_by("author__username")[:10]`` would JOIN ``auth_user``
inside blog_db.  Instead, when the query is compiled:

1. the distinct keys of the rows it selects are read on the local alias
   (``SELECT DISTINCT author_id ...`` with the same conditions, no limit);
2. the far alias orders those keys' rows by the column
   (``User.objects.filter(id__in=keys).order_by("username")``), which gives
   each key its rank, equal values sharing a rank;
3. the local query orders by the rank: ``CASE author_id WHEN 7 THEN 0 ... END``.

So ordering, slicing and the rest of the query stay in the local database,
and what is read from the far one is bounded by the number of distinct
related rows (``CROSSDB_MAX_IDS`` applies), never by the number of rows.  A
missing related row (NULL or dangling key) ranks with the NULL values, where
the far database puts NULLs.  Multi-valued relations raise as before.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.db.models import Count, F, IntegerField, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Expression

from crossdb import query_forward, query_per_row, routing, transport
from crossdb.exceptions import CrossDatabaseLimitError, CrossDatabaseQueryError
from crossdb.fields import is_crossdb_field
from crossdb.lookups import ids_in
from crossdb.query_lookups import find_crossing
from crossdb.query_paths import ends_on_field, final_field, ordering_path


class CrossDatabaseRank(Expression):
    """The rank of each row's related row, ordered by a column on the far alias."""

    contains_aggregate = False
    contains_over_clause = False

    def __init__(self, model, lookup, crossing, descending=False, nulls=None):
        super().__init__(output_field=IntegerField())
        self.model, self.lookup, self.crossing = model, lookup, crossing
        self.descending = descending
        # "first"/"last": where NULLs go locally (None: where the far database puts them).
        self.nulls = nulls
        field = crossing.field
        name = field.field.target_field.name if crossing.reverse else field.name
        self.key_path = LOOKUP_SEP.join([*crossing.prefix, name])
        self.key = F(self.key_path)

    def __repr__(self):
        return f"CrossDatabaseRank({self.lookup!r})"

    def get_source_expressions(self):
        return [self.key]

    def set_source_expressions(self, exprs):
        (self.key,) = exprs

    def _window(self, query):
        """Return how many rows the sliced query needs when it sorts by this rank first."""
        first = query.order_by[0] if query.order_by else None
        expression = getattr(first, "expression", None)
        if (
            query.high_mark is None
            or query.distinct
            or not isinstance(expression, CrossDatabaseRank)
            or expression.lookup != self.lookup
        ):
            return None
        return query.high_mark

    def _key_counts(self, compiler, counted):
        """Return ``{key: rows}`` (counts only if ``counted``) of the query being compiled."""
        query = compiler.query
        if query.combinator or query.group_by is not None:
            raise CrossDatabaseQueryError(
                f"{self.model._meta.label}: order_by({self.lookup!r}) across databases "
                "cannot be combined with union()/annotate() grouping; sort in Python."
            )
        inner = query.clone()
        inner.clear_ordering(force=True)
        inner.clear_limits()
        inner.clear_select_clause()
        queryset = QuerySet(model=inner.model, query=inner, using=compiler.using)
        # Collation twins ('ann', 'ANN') are distinct keys when the target tells them apart.
        key = transport.ExactKey(F(self.key_path), self._key_field())
        if not counted:
            return dict.fromkeys(queryset.values_list(key, flat=True).distinct(), 0)
        rows = queryset.values_list(key).annotate(crossdb_rows=Count("*"))
        return dict(rows.order_by())

    def _key_field(self):
        field = self.crossing.field
        return field.field.target_field if self.crossing.reverse else field

    def _far_ranks(self, keys, outer_alias=None):
        """Return ``({key: rank}, rank of a missing or NULL value)`` from the far alias."""
        limit = getattr(settings, "CROSSDB_MAX_IDS", None)
        if limit is not None and len(keys) > limit:
            raise CrossDatabaseLimitError(
                f"order_by({self.lookup!r}) on {self.model._meta.label} needs {len(keys)} "
                f"related rows, more than CROSSDB_MAX_IDS={limit}. Narrow the queryset, or "
                "raise CROSSDB_MAX_IDS."
            )
        field = self.crossing.field
        far_model = field.related_model
        far_key = field.field.attname if self.crossing.reverse else field.target_field.attname
        # The routers' answer; if they abstain, the outer query's alias when the
        # far table lives there (routing.home_alias, as lookups across).
        alias = routing.home_alias(far_model, outer_alias, "db_for_read")
        rest = self.crossing.rest or "pk"
        ranks, null_rank, rank, previous = {}, None, -1, object()
        # Ranks ascend with the far order; NULLs rank lowest when they must come
        # first ascending or last descending.
        nulls_small = None if self.nulls is None else (self.nulls == "first") != self.descending
        if nulls_small is None:
            far_order = rest
        elif nulls_small:
            far_order = F(rest).asc(nulls_first=True)
        else:
            far_order = F(rest).asc(nulls_last=True)
        if keys:
            rows = (
                far_model._base_manager.db_manager(alias)
                .filter(ids_in(far_key, keys))
                .order_by(far_order, far_key)
                .values_list(far_key, rest)
            )
            for key, value in rows:
                if value != previous or rank < 0:
                    rank += 1
                    previous = value
                ranks[key] = rank
                if value is None:
                    null_rank = rank
        if null_rank is None and nulls_small is not None:
            null_rank = -1 if nulls_small else rank + 1
        elif null_rank is None:
            largest = connections[alias].features.nulls_order_largest
            null_rank = rank + 1 if largest else -1
        return ranks, null_rank

    def _plan(self, compiler):
        """Return ``({key: rank}, rank of a NULL key, rank of any other key)``."""
        query = compiler.query
        window = self._window(query)
        counts = self._key_counts(compiler, counted=window is not None)
        ranks, null_rank = self._far_ranks(set(counts) - {None}, compiler.using)
        if window is None:
            return ranks, null_rank, null_rank
        # A sliced query sorted by this rank first only needs the keys of its
        # first rows: the CASE names those, every other key ranks beyond them.
        rank_of = {key: ranks.get(key, null_rank) for key in counts if key is not None}
        rows_per_rank = {}
        for key, rows in counts.items():
            rank = null_rank if key is None else rank_of[key]
            rows_per_rank[rank] = rows_per_rank.get(rank, 0) + rows
        descending = self.descending != (not query.standard_ordering)
        kept, covered = set(), 0
        for rank in sorted(rows_per_rank, reverse=descending):
            if covered >= window:
                break
            kept.add(rank)
            covered += rows_per_rank[rank]
        every = [*rows_per_rank, null_rank]
        beyond = min(every) - 1 if descending else max(every) + 1
        named = {key: rank for key, rank in rank_of.items() if rank in kept}
        return named, (null_rank if null_rank in kept else beyond), beyond

    def as_sql(self, compiler, connection):
        ranks, null_rank, other_rank = self._plan(compiler)
        key_sql, key_params = compiler.compile(self.key)
        field = self._key_field()
        # Keys travel as the column's own values on this connection (a UUID
        # as SQLite's hex text), compared as the target compares them.
        ranks = {
            prepared: rank
            for key, rank in ranks.items()
            for prepared in transport.prepare(field, connection, [key])
        }
        if transport.narrows(field, connection):
            key_sql = transport.exact_sql(key_sql, connection)
        if all(type(key) is int for key in ranks):
            # Integers written into the SQL: no parameter limit to meet.
            whens = " ".join(f"WHEN {key:d} THEN {rank:d}" for key, rank in ranks.items())
            params = ()
        else:
            whens = " ".join("WHEN %s THEN %s" for _ in ranks)
            params = tuple(value for pair in ranks.items() for value in pair)
        # Never a bare constant: ORDER BY 0 would name a column position.
        inner = f"CASE {key_sql} {whens} ELSE {other_rank:d} END" if ranks else f"{other_rank:d}"
        return (
            f"CASE WHEN {key_sql} IS NULL THEN {null_rank:d} ELSE {inner} END",
            (*key_params, *(key_params if ranks else ()), *params),
        )


def _target_ordering(model, name: str):
    """Return the target's ``Meta.ordering`` under ``name`` if it names a crossdb key."""
    parts = name.split(LOOKUP_SEP)
    if parts[-1] == "pk" or not ends_on_field(model, parts):
        return None
    field = final_field(model, name)
    if field is None or not is_crossdb_field(field) or getattr(field, "attname", None) == parts[-1]:
        return None
    if find_crossing(model, name) is not None:
        return None  # the key is read across an earlier relation: ranked as a column
    ordering = field.related_model._meta.ordering
    if not ordering:
        return None
    if not all(isinstance(item, str) for item in ordering):
        # Django orders by the target's expressions (Lower("name")); crossdb
        # ranks columns only, and ordering by the raw key would differ.
        raise CrossDatabaseQueryError(
            f"{model._meta.label}: order_by({name!r}) orders by the Meta.ordering of "
            f"{field.related_model._meta.label}, which holds an expression, across the "
            "crossdb relation; crossdb ranks columns only. Order by a column across "
            f"(order_by('{name}__<column>')) or sort in Python."
        )
    return ordering


def _ordering(model, item):
    """Return ``item`` (an order_by() argument), with ranks in place of columns across."""
    parsed = ordering_path(item)
    if parsed is None:
        return [item]
    name, descending, nulls_first, nulls_last = parsed
    # F("editor__username").asc(nulls_last=True): ranked like the string form.
    nulls = "first" if nulls_first else "last" if nulls_last else None
    target = _target_ordering(model, name) if nulls is None else None
    if target is not None:
        # Django orders by a relation through its target's Meta.ordering.
        expanded = []
        for part in target:
            part_descending = part.startswith("-") != descending
            path = f"{name}{LOOKUP_SEP}{part.lstrip('-+')}"
            expanded.extend(_ordering(model, f"-{path}" if part_descending else path))
        return expanded
    crossing = find_crossing(model, name)
    if crossing is not None and crossing.multi_valued:
        # A row per related row (crossdb.query_per_row), or the path check's error.
        per_row = query_per_row.ordering(model, item)
        return [item] if per_row is None else per_row
    if crossing is None:
        return [item]  # Django's own
    rank = CrossDatabaseRank(model, name, crossing, descending, nulls)
    return [rank.desc() if descending else rank.asc()]


def order_by_seam(original):
    """Wrap ``QuerySet.order_by``: order by a column across through its rank."""

    def order_by(self, *field_names):
        grouped = query_forward.far_orderings(self.query, field_names)
        return original(
            self,
            *(
                grouped.get(index) or out
                for index, item in enumerate(field_names)
                for out in ([None] if index in grouped else _ordering(self.model, item))
            ),
        )

    order_by.crossdb_original = original
    return order_by
