"""``Exists()`` and ``~Exists()`` correlated through a crossdb key.

``User.objects.filter(Exists(Post.objects.filter(author=OuterRef("pk"), published=True)))``
would send a subquery on ``blog_post`` to ``default``.  A subquery correlated
by one equality between a crossdb key and the column it references asks
"is the row's key among the keys the inner rows hold": the inner queryset,
without the correlation, is read on its own alias for those keys, and the
outer query tests its column against them (``crossdb_ids``, as filters across
are rewritten).  ``~Exists`` is Django's ``NOT`` around it; the condition is
never NULL (a NULL key: false), so ``~Exists`` holds for a row without key.

It works in ``filter()``, ``exclude()`` and ``annotate()`` (a boolean),
forward (``Post`` rows, ``User`` subquery on ``pk=OuterRef("author_id")``)
and reverse.  Any other correlation (several OuterRefs, a comparison other
than equality, an OuterRef not on the key) keeps raising
``CrossDatabaseQueryError`` (``crossdb.query_guard``).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Col, ResolvedOuterRef
from django.db.models.sql.where import AND

from crossdb import routing
from crossdb.fields import is_crossdb_field
from crossdb.query_ids import CrossDatabaseIds
from crossdb.query_paths import field_of


def _correlation(inner):
    """Return ``(index, lookup)`` of the one OuterRef equality of ``inner``'s WHERE, or None."""
    where = inner.where
    if where.connector != AND or where.negated:
        return None
    found = []
    for index, child in enumerate(where.children):
        rhs = getattr(child, "rhs", None)
        if isinstance(rhs, ResolvedOuterRef):
            found.append((index, child))
        elif _mentions_outer(child):
            return None
    if len(found) != 1:
        return None
    index, lookup = found[0]
    if lookup.lookup_name != "exact" or not isinstance(lookup.lhs, Col):
        return None
    return index, lookup


def _mentions_outer(node) -> bool:
    if isinstance(node, ResolvedOuterRef):
        return True
    children = getattr(node, "children", None)
    if children is not None:
        return any(_mentions_outer(child) for child in children)
    sources = getattr(node, "get_source_expressions", None)
    if sources is None:
        return False
    return any(_mentions_outer(source) for source in sources() if source is not None)


def _outer_field(model, name: str):
    """Return the field of ``model`` an OuterRef ``name`` reads (its attname included)."""
    if LOOKUP_SEP in name:
        return None
    opts = model._meta
    field = field_of(opts, name)
    if field is None:
        for candidate in opts.concrete_fields:
            if candidate.attname == name:
                return candidate
    return field


def _rewrite(exists, outer_model):
    """Return the local Q equivalent to ``exists``, or None when it is not correlated by a key."""
    inner = exists.query
    inner_model = inner.model
    if inner_model is None or routing.db_for_read(inner_model) == routing.db_for_read(outer_model):
        return None
    # Exists() limits its query to one row itself (Query.exists()).
    sliced = inner.low_mark or inner.high_mark not in (None, 1)
    if sliced or inner.combinator or inner.group_by is not None:
        return None
    found = _correlation(inner)
    if found is None:
        return None
    index, lookup = found
    inner_field = lookup.lhs.target
    outer_field = _outer_field(outer_model, lookup.rhs.name)
    if outer_field is None:
        return None
    if is_crossdb_field(inner_field) and inner_field.related_model is not None:
        # Reverse: Post.author = OuterRef("pk"); the outer column is the target.
        if (
            inner_field.target_field.model._meta.concrete_model
            is not outer_model._meta.concrete_model
        ):
            return None
        if outer_field != inner_field.target_field:
            return None
        far_column, local_name = inner_field.attname, outer_field.name
    elif is_crossdb_field(outer_field):
        # Forward: User.pk = OuterRef("author_id"); the outer column is the key.
        if outer_field.related_model._meta.concrete_model is not inner_model._meta.concrete_model:
            return None
        if inner_field != outer_field.target_field:
            return None
        far_column, local_name = inner_field.attname, outer_field.name
    else:
        return None
    far = inner.clone()
    del far.where.children[index]
    far.clear_ordering(force=True)
    far.clear_limits()  # Query.exists()'s LIMIT 1: every matching key is wanted
    far.clear_select_clause()
    queryset = QuerySet(model=inner_model, query=far, using=routing.db_for_read(inner_model))
    description = f"Exists({inner_model._meta.label} correlated on {lookup.rhs.name!r})"
    ids = CrossDatabaseIds(queryset.values_list(far_column, flat=True), description)
    condition = Q((f"{local_name}{LOOKUP_SEP}crossdb_ids", ids))
    if outer_field.null:
        # Never NULL, as EXISTS never is: ~Exists (Django's NOT around it) holds
        # for a row whose key is NULL.
        condition &= Q((f"{local_name}{LOOKUP_SEP}isnull", False))
    return condition


def exists_resolve(original):
    """Wrap ``Exists.resolve_expression``: a key-correlated subquery on another alias."""

    def resolve_expression(self, query=None, *args, **kwargs):
        outer_model = getattr(query, "model", None)
        if outer_model is not None:
            condition = _rewrite(self, outer_model)
            if condition is not None:
                return condition.resolve_expression(query, *args, **kwargs)
        return original(self, query, *args, **kwargs)

    resolve_expression.crossdb_original = original
    return resolve_expression
