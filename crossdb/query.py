"""Queries across crossdb relations: the right answer, one query per alias, or a clear error.

Installed from ``CrossdbConfig.ready()`` (the ``query`` seam of
``crossdb.seams``), so it applies to every manager and queryset, including
``auth.User``'s, the admin's and related managers, with no manager to change:

- ``Aggregate.resolve_expression``: ``Count``/``Sum``/``Avg``/``Min``/``Max``
  across a reverse crossdb relation read a derived table of values computed
  on the far alias (``crossdb.query_aggregates``); over far columns across a
  forward single-valued relation (``Max("author__last_login")``) they read a
  derived table of the far rows (``crossdb.query_forward``);
- ``Exists.resolve_expression``: ``Exists()``/``~Exists()`` correlated by a
  crossdb key become a test of the key against ids read on the other alias
  (``crossdb.query_exists``);
- ``Query.add_q`` and ``Q.resolve_expression``: conditions crossing a crossdb
  field are rewritten before Django builds SQL (``crossdb.query_lookups``);
  across a multi-valued relation they join the far rows, a local row per
  related row (``crossdb.query_rows``), and ``Query.combine`` (``qs1 | qs2``)
  joins every far row then, as Django's promoted join does;
- ``Query.resolve_ref``: an annotation read from a derived table is refused
  where Django refuses joined references (``update(x=F("annotation"))``,
  ``crossdb.query_derived``);
- ``QuerySet.select_related``: crossdb relations are read on their own alias
  (``crossdb.query_select``);
- ``QuerySet.order_by``: a column across a single-valued relation is ordered
  by its rank on the far alias (``crossdb.query_order``);
- ``QuerySet._values``, ``values``, ``values_list``, ``Query.add_distinct_fields``
  and ``set_group_by``: fields across a single-valued relation are read on
  their own alias, grouped by through a derived table of the far rows
  (``values("author__username").annotate(...)``, ``crossdb.query_forward``),
  or refused where that would change the answer (``crossdb.query_values``);
- ``Query.names_to_path``, ``Query.resolve_expression``, ``Join.as_sql`` and
  the compiler's ``select_related_descend``: everything else that would reach
  across raises ``CrossDatabaseQueryError`` (``crossdb.query_guard``);
- ``RawSQL.as_sql`` and ``ExtraWhere.as_sql``: raw SQL naming a table only a
  JOIN across would bring raises ``CrossDatabaseQueryError`` (``crossdb.query_raw``);
- the ``crossdb_ids`` lookup on every field (``crossdb.query_ids``).
"""

from __future__ import annotations

from django.db.models import Exists, Q, QuerySet
from django.db.models.aggregates import Aggregate
from django.db.models.expressions import RawSQL
from django.db.models.sql import compiler
from django.db.models.sql.datastructures import Join
from django.db.models.sql.query import Query
from django.db.models.sql.where import ExtraWhere

from crossdb import (
    query_aggregates,
    query_derived,
    query_exists,
    query_guard,
    query_ids,
    query_order,
    query_raw,
    query_rows,
    query_select,
    query_values,
)
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.query_lookups import find_crossing, rewrite_q

__all__ = ["find_crossing", "install", "installed", "rewrite_q"]


def _rewriting_add_q(original):
    def add_q(self, q_object, *args, **kwargs):
        return original(self, rewrite_q(self.model, q_object), *args, **kwargs)

    add_q.crossdb_original = original
    return add_q


def _multi_valued_crossings(model, node):
    """Yield the lookups of ``node`` that cross a crossdb relation to many rows."""
    for child in node.children:
        if isinstance(child, Q):
            yield from _multi_valued_crossings(model, child)
        elif isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
            crossing = find_crossing(model, child[0])
            if crossing is not None and crossing.multi_valued:
                yield child[0]


def _rewriting_resolve(original):
    def resolve_expression(self, query=None, *args, **kwargs):
        # Q used as an expression: When(), filter= of aggregates.
        model = getattr(query, "model", None)
        if model is not None:
            for lookup in _multi_valued_crossings(model, self):
                # Django JOINs the related rows: each one counts (Count(filter=...)),
                # or is a row of its own (Case(When(...))); an id set cannot say how many.
                raise CrossDatabaseQueryError(
                    f"{model._meta.label}: Q({lookup}=...) is used as an expression "
                    "(an aggregate's filter=, When(), a boolean annotation) across a "
                    "multi-valued relation into another database; Django would give one "
                    "value per related row, which crossdb cannot. Filter with filter() "
                    "first, or count on the related model's own database (see "
                    "docs/querying.rst, 'What is rewritten and what raises')."
                )
        rewritten = rewrite_q(model, self)
        return original(rewritten, query, *args, **kwargs)

    resolve_expression.crossdb_original = original
    return resolve_expression


# (owner, attribute name, wrapper factory)
_PATCHES = (
    (Query, "add_q", _rewriting_add_q),
    (Query, "combine", query_rows.combine_seam),
    (Query, "resolve_ref", query_derived.resolve_ref_seam),
    (Aggregate, "resolve_expression", query_aggregates.checked_aggregate_resolve),
    (Exists, "resolve_expression", query_exists.exists_resolve),
    (Q, "resolve_expression", _rewriting_resolve),
    (Query, "names_to_path", query_guard.checked_names_to_path),
    (Query, "resolve_expression", query_guard.checked_subquery),
    (Join, "as_sql", query_guard.checked_join),
    (compiler, "select_related_descend", query_guard.checked_select_related_descend),
    (QuerySet, "select_related", query_select.select_related),
    (QuerySet, "order_by", query_order.order_by_seam),
    (QuerySet, "_values", query_values.values_seam),
    (QuerySet, "values", query_values.shape_seam),
    (QuerySet, "values_list", query_values.shape_seam),
    (Query, "add_distinct_fields", query_values.combine_seam),
    (Query, "set_group_by", query_values.combine_seam),
    (Query, "sql_with_params", query_ids.text_seam),
    (RawSQL, "as_sql", query_raw.raw_sql_seam),
    (ExtraWhere, "as_sql", query_raw.extra_where_seam),
)


def install() -> None:
    """Install crossdb's query rewriting and checks (idempotent)."""
    query_ids.register()
    for owner, name, wrap in _PATCHES:
        current = getattr(owner, name)
        if not hasattr(current, "crossdb_original"):
            setattr(owner, name, wrap(current))


def installed() -> bool:
    """Return True when every part of ``install()`` is in place."""
    return query_ids.registered() and all(
        hasattr(getattr(owner, name), "crossdb_original") for owner, name, _wrap in _PATCHES
    )
