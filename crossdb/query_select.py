"""``select_related()`` across a crossdb relation: the related rows read on their own alias.

``Post.objects.select_related("author")`` would JOIN ``auth_user`` inside
blog_db.  ``QuerySet.select_related`` is wrapped so that each requested path is
split at its first crossdb field: the part before it stays a JOIN
(``select_related("post")``), and the rows fetched are completed by
``CrossDatabaseSelectIterable``: for each batch of rows it reads every
crossing's related rows with one query per target model and alias (authors
and editors together), by one id-set parameter, and fills the same caches
``select_related`` fills.  What follows the crossdb field becomes
``select_related()`` of that query, split again if it crosses once more, so
``Comment.objects.select_related("post__author__shop_profile")`` is one query
on each of blog_db, default and shop_db.

``select_related()`` without arguments (the admin changelist's) follows every
non-null ForeignKey: crossdb's compiler check keeps it from JOINing across,
and the non-null crossdb keys it would have followed are read the same way.
"""

from __future__ import annotations

from itertools import islice

from django.core.exceptions import FieldDoesNotExist, FieldError, ObjectDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.db.models.query import ModelIterable

from crossdb import django_versions, routing
from crossdb.fields import is_crossdb_field
from crossdb.lookups import ids_in

# far_loading(): a crossing select_related() without arguments does not follow.
SKIP = ("skip", ())

# Django's own depth limit for select_related() without arguments.
MAX_DEPTH = 5


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
            if is_crossdb_field(field) and not (field.one_to_many or field.many_to_many):
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


def _resolve(model, lookup):
    """Return ``(prefix names, crossdb field or rel)`` of a crossing lookup."""
    *prefix, name = lookup.split(LOOKUP_SEP)
    opts = model._meta
    for step in prefix:
        opts = opts.get_field(step).related_model._meta
    return prefix, opts.get_field(name)


def _holders(objs, prefix):
    """Return the objects ``prefix`` leads to from ``objs`` (already joined)."""
    for name in prefix:
        objs = [related for obj in objs if (related := _joined(obj, name)) is not None]
    return objs


def _joined(obj, name):
    # A reverse one-to-one that select_related() found missing is cached as
    # None and its descriptor raises: there is nothing to follow beyond it.
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def _ends(field):
    """Return ``(far model, far key attname, local key attname, rel)`` of a crossing."""
    if isinstance(field, ForeignObjectRel):
        return field.related_model, field.field.attname, field.field.target_field.attname
    return field.related_model, field.target_field.attname, field.attname


def far_loading(query, model, crossings) -> dict:
    """Return ``{crossing: ("only"|"defer", names)}`` from the query's only()/defer().

    Raise Django's FieldError, before any query, for a crossing that is itself
    deferred; with ``select_related()`` without arguments, a deferred crossing
    is not followed instead (``SKIP``): Django raises only for names asked for.
    """
    names, defer = query.deferred_loading
    restricted = {}
    for lookup in crossings:
        _prefix, field = _resolve(model, lookup)
        beyond = [name[len(lookup) + 2 :] for name in names if name.startswith(f"{lookup}__")]
        deferred = (lookup in names) if defer else (names and lookup not in names and not beyond)
        if deferred and not isinstance(field, ForeignObjectRel) and query.select_related is True:
            # The key column is not loaded: reading it per row would cost a
            # query each; the relation loads on access, as an unloaded one does.
            restricted[lookup] = SKIP
            continue
        if deferred and not isinstance(field, ForeignObjectRel):
            raise FieldError(
                f"Field {field.model._meta.object_name}.{field.name} cannot be both deferred "
                "and traversed using select_related at the same time."
            )
        if beyond:
            restricted[lookup] = ("defer" if defer else "only", beyond)
    return restricted


def check_beyond(model, crossings) -> None:
    """Raise Django's FieldError for an invalid path beyond a crossing, before any query."""
    for lookup, beyond in crossings.items():
        if not beyond:
            continue
        _prefix, field = _resolve(model, lookup)
        far_model = _ends(field)[0]
        alias = routing.db_for_read(far_model)
        far = far_model._base_manager.db_manager(alias).select_related(*beyond)
        far.query.get_compiler(alias).setup_query()
        nested = getattr(far.query, "crossdb_select_related", None)
        if nested:
            check_beyond(far_model, nested)


def load_related(objs, model, crossings, loading=None, outer=None) -> None:
    """Fill, on ``objs``, the caches of every crossing: one query per far model and alias.

    ``outer``: the queryset ``objs`` come from, whose fetch mode the far rows get.
    """
    groups = {}
    loading = loading or {}
    for lookup, beyond in crossings.items():
        if loading.get(lookup) is SKIP:
            continue
        prefix, field = _resolve(model, lookup)
        holders = _holders(objs, prefix)
        if not holders:
            continue
        far_model, far_key, local_key = _ends(field)
        alias = routing.db_for_read(far_model, instance=holders[0])
        restriction = loading.get(lookup)
        group = groups.setdefault(
            (far_model, far_key, alias, restriction and (restriction[0], tuple(restriction[1]))),
            {"beyond": [], "wanted": []},
        )
        group["beyond"].extend(path for path in beyond if path not in group["beyond"])
        group["wanted"].append((field, holders, local_key))
    for (far_model, far_key, alias, restriction), group in groups.items():
        keys = {
            getattr(holder, local_key)
            for _field, holders, local_key in group["wanted"]
            for holder in holders
        }
        keys.discard(None)
        found = {}
        if keys:
            queryset = far_model._base_manager.db_manager(alias).filter(ids_in(far_key, keys))
            if outer is not None:
                queryset = django_versions.same_fetch_mode(queryset, outer)
            if group["beyond"]:
                queryset = queryset.select_related(*group["beyond"])
            if restriction:
                # The columns only()/defer() named beyond the crossing, as Django loads.
                how, names = restriction
                queryset = getattr(queryset, how)(*names)
            found = {getattr(row, far_key): row for row in queryset.order_by()}
        for field, holders, local_key in group["wanted"]:
            for holder in holders:
                _attach(field, holder, found.get(getattr(holder, local_key)), local_key)


def _attach(field, holder, related, local_key) -> None:
    if isinstance(field, ForeignObjectRel):
        # user.shop_profile: None caches "no profile", as select_related does.
        field.set_cached_value(holder, related)
        if related is not None:
            field.field.set_cached_value(related, holder)
        return
    if related is None and getattr(holder, local_key) is not None:
        # A key with no row on the far side: left unloaded, so that reading it
        # raises the descriptor's error naming the alias.
        return
    field.set_cached_value(holder, related)
    if related is not None and not field.remote_field.multiple:
        field.remote_field.set_cached_value(related, holder)


class CrossDatabaseSelectIterable(ModelIterable):
    """Model instances whose crossdb relations named in select_related() are loaded."""

    def __iter__(self):
        crossings = getattr(self.queryset.query, "crossdb_select_related", None)
        rows = super().__iter__()
        if not crossings:
            yield from rows
            return
        model = self.queryset.model
        # Django's FieldErrors come at compile time, with or without rows.
        loading = far_loading(self.queryset.query, model, crossings)
        check_beyond(model, crossings)
        # iterator(): a batch per chunk, so memory stays bounded; otherwise all.
        size = self.chunk_size if self.chunked_fetch else None
        while batch := list(islice(rows, size)):
            load_related(batch, model, crossings, loading, self.queryset)
            yield from batch
            if size is None:
                return


def _apply(queryset, crossings):
    """Record ``crossings`` on ``queryset`` (merged with earlier calls)."""
    query = queryset.query
    merged = {
        lookup: list(beyond)
        for lookup, beyond in getattr(query, "crossdb_select_related", {}).items()
    }
    for lookup, beyond in crossings.items():
        known = merged.setdefault(lookup, [])
        known.extend(path for path in beyond if path not in known)
    query.crossdb_select_related = merged
    if queryset._iterable_class is ModelIterable:
        queryset._iterable_class = CrossDatabaseSelectIterable
    return queryset


def select_related(original):
    def select_related(self, *fields):
        if fields == (None,):
            clone = original(self, None)
            clone.query.crossdb_select_related = {}
            if clone._iterable_class is CrossDatabaseSelectIterable:
                clone._iterable_class = ModelIterable
            return clone
        if not fields:
            clone = django_versions.select_related_everything(original, self)
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
