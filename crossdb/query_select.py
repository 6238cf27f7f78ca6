"""``select_related()`` across a crossdb relation, carried out as a prefetch.

``Post.objects.select_related("author")`` would JOIN ``auth_user`` inside
blog_db.  ``QuerySet.select_related`` is wrapped so that each requested path is
split at its first crossdb field: the part before it stays a JOIN
(``select_related("post")``), the crossdb field becomes a prefetch on its own
alias, and what follows it becomes ``select_related()`` of the prefetch's
queryset (itself split again if it crosses once more).  So
``Comment.objects.select_related("post__author__shop_profile")`` is one query
on each of blog_db, default and shop_db.

``select_related()`` without arguments (the admin changelist's) follows every
non-null ForeignKey; crossdb's compiler check keeps it from JOINing across,
and the non-null crossdb keys it would have followed are prefetched.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Prefetch
from django.db.models.constants import LOOKUP_SEP

from crossdb.fields import is_crossdb_field

# Django's own limit for select_related() without arguments.
MAX_DEPTH = 5
# QuerySet.iterator()'s default chunk size, used when only crossdb's prefetches ask for one.
CHUNK_SIZE = 2000


def split_paths(model, paths):
    """Return ``(paths joined in SQL, {crossing lookup: [paths beyond it]})``."""
    joined, crossings = [], {}
    for path in paths:
        parts = path.split(LOOKUP_SEP)
        opts = model._meta
        for position, name in enumerate(parts):
            try:
                field = opts.get_field(name)
            except FieldDoesNotExist:
                joined.append(path)  # Django reports the invalid name
                break
            if is_crossdb_field(field):
                if position:
                    joined.append(LOOKUP_SEP.join(parts[:position]))
                beyond = crossings.setdefault(LOOKUP_SEP.join(parts[: position + 1]), [])
                if position + 1 < len(parts):
                    beyond.append(LOOKUP_SEP.join(parts[position + 1 :]))
                break
            if not field.is_relation or field.related_model is None:
                joined.append(path)
                break
            opts = field.related_model._meta
        else:
            joined.append(path)
    return joined, crossings


def default_crossings(model, prefix=(), depth=0):
    """Return the crossdb keys ``select_related()`` without arguments would follow."""
    found = []
    if depth >= MAX_DEPTH:
        return found
    for field in model._meta.concrete_fields:
        if not field.is_relation or field.null or getattr(field.remote_field, "parent_link", False):
            continue
        path = (*prefix, field.name)
        if is_crossdb_field(field):
            found.append(LOOKUP_SEP.join(path))
        else:
            found.extend(default_crossings(field.related_model, path, depth + 1))
    return found


def _lookup(model, lookup, beyond):
    if not beyond:
        return lookup
    field = model._meta.get_field(lookup.split(LOOKUP_SEP)[0])
    for name in lookup.split(LOOKUP_SEP)[1:]:
        field = field.related_model._meta.get_field(name)
    far = field.related_model
    return Prefetch(lookup, queryset=far._base_manager.select_related(*beyond))


def _apply(queryset, crossings):
    """Record ``crossings`` on ``queryset`` and make them its prefetches."""
    query = queryset.query
    previous = getattr(query, "crossdb_select_related", {})
    merged = {lookup: list(beyond) for lookup, beyond in previous.items()}
    for lookup, beyond in crossings.items():
        merged.setdefault(lookup, [])
        merged[lookup].extend(path for path in beyond if path not in merged[lookup])
    ours = getattr(query, "crossdb_prefetches", ())
    theirs = [item for item in queryset._prefetch_related_lookups if item not in ours]
    seen = {getattr(item, "prefetch_to", item) for item in theirs}
    added = tuple(
        _lookup(queryset.model, lookup, beyond)
        for lookup, beyond in merged.items()
        if lookup not in seen
    )
    queryset._prefetch_related_lookups = (*theirs, *added)
    query.crossdb_select_related = merged
    query.crossdb_prefetches = added
    return queryset


def select_related(original):
    def select_related(self, *fields):
        if fields == (None,):
            clone = original(self, None)
            ours = getattr(clone.query, "crossdb_prefetches", ())
            clone._prefetch_related_lookups = tuple(
                item for item in clone._prefetch_related_lookups if item not in ours
            )
            clone.query.crossdb_select_related = {}
            clone.query.crossdb_prefetches = ()
            return clone
        if not fields:
            clone = original(self)
            return _apply(clone, dict.fromkeys(default_crossings(self.model), ()))
        joined, crossings = split_paths(self.model, fields)
        if joined:
            clone = original(self, *joined)
        else:
            if self._fields is not None:
                raise TypeError("Cannot call select_related() after .values() or .values_list()")
            clone = self._chain()
        return _apply(clone, crossings) if crossings else clone

    select_related.crossdb_original = original
    return select_related


def iterator(original):
    def iterator(self, chunk_size=None):
        ours = getattr(self.query, "crossdb_prefetches", ())
        if (
            chunk_size is None
            and self._prefetch_related_lookups
            and all(item in ours for item in self._prefetch_related_lookups)
        ):
            # select_related() needs no chunk_size; its emulation must not either.
            chunk_size = CHUNK_SIZE
        return original(self, chunk_size)

    iterator.crossdb_original = original
    return iterator
