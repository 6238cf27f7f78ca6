"""The related managers of a ``CrossDatabaseManyToManyField``: ``post.tags``, ``tag.posts``.

They extend the manager Django builds (``create_forward_many_to_many_manager``)
where it assumes that the through table and the target share one database:

- reads of the target (``all()``, ``filter()``, ``count()``, ``exists()``)
  filter by the through rows, which ``crossdb.m2m.paths`` turns into an id set
  read on the through's alias, then the target's query on its own alias;
- ``create()``, ``get_or_create()`` and ``update_or_create()`` write the new
  object on *its* model's alias (Django uses the instance's);
- ``set()`` reads the current links from the through table, and ``remove()``
  and ``clear()`` read a filtered target manager's rows on the target's alias;
- ``prefetch_related()`` reads the through rows on their alias and the targets
  on theirs: one query per alias, whatever the number of rows.

Writes of through rows go, as in Django, to ``router.db_for_write(through)``
inside ``transaction.atomic`` on that alias, and ``m2m_changed`` is sent with
that alias as ``using``.  The async twins are Django's, calling these.
"""

from __future__ import annotations

import copy

from django.db import router, transaction
from django.db.models import QuerySet
from django.db.models.fields.related_descriptors import create_forward_many_to_many_manager

from crossdb import django_versions
from crossdb.lookups import ids_in


class _PrefetchedRows:
    """The related objects of a prefetch, one per through row, read when iterated.

    ``prefetch_one_level()`` takes the nested lookups of the queryset it is
    given (``_prefetch_related_lookups``) and then lists it: both go to the
    target queryset, whose rows are then matched with the through rows.
    """

    def __init__(self, queryset, rows):
        self.queryset = queryset
        self._rows = rows

    @property
    def _prefetch_related_lookups(self):
        return self.queryset._prefetch_related_lookups

    @_prefetch_related_lookups.setter
    def _prefetch_related_lookups(self, value):
        self.queryset._prefetch_related_lookups = value

    def __iter__(self):
        return iter(self._rows(self.queryset))


def create_crossdb_many_to_many_manager(superclass, rel, reverse):
    """Return the manager class of one side of a ``CrossDatabaseManyToManyField``."""
    base = create_forward_many_to_many_manager(superclass, rel, reverse)

    class CrossDatabaseManyRelatedManager(base):
        def __call__(self, *, manager):
            manager = getattr(self.model, manager)
            manager_class = create_crossdb_many_to_many_manager(manager.__class__, rel, reverse)
            return manager_class(instance=self.instance)

        @property
        def _target_db_for_write(self):
            return router.db_for_write(self.model, instance=self.instance)

        @property
        def _through_db_for_read(self):
            return router.db_for_read(self.through, instance=self.instance)

        def _build_remove_filters(self, removed_vals):
            # Django hands over the target rows as a queryset on the through's
            # alias; they are read on their own (crossdb's __in carries the ids).
            if isinstance(removed_vals, QuerySet):
                removed_vals = removed_vals.using(
                    router.db_for_read(self.model, instance=self.instance)
                )
            return super()._build_remove_filters(removed_vals)

        def _linked_ids(self, db):
            """Return the target keys the through rows on ``db`` link this instance to."""
            target = self.through._meta.get_field(self.target_field_name)
            return set(
                self.through._base_manager.using(db)
                .filter(**{self.source_field_name: self.related_val[0]})
                .exclude(**{f"{target.attname}__isnull": True})
                .values_list(target.attname, flat=True)
            )

        def _changes(self, objs, db):
            """Return ``(keys to unlink, objects to link)`` for ``set(objs)``.

            Django reads the current targets with ``self.using(db)``: a query of
            the targets on the through's alias.  The through rows there give
            the same keys.
            """
            old_ids = self._linked_ids(db)
            new_objs = []
            for obj in objs:
                fk_val = (
                    self.target_field.get_foreign_related_value(obj)[0]
                    if isinstance(obj, self.model)
                    else self.target_field.get_prep_value(obj)
                )
                if fk_val in old_ids:
                    old_ids.remove(fk_val)
                else:
                    new_objs.append(obj)
            return old_ids, new_objs

        def set(self, objs, *, clear=False, through_defaults=None):
            if django_versions.MANY_TO_MANY_SET_BASE:
                return self.set_base(objs, clear=clear, through_defaults=through_defaults)
            objs = tuple(objs)
            db = router.db_for_write(self.through, instance=self.instance)
            with transaction.atomic(using=db, savepoint=False):
                if clear:
                    self.clear()
                    self.add(*objs, through_defaults=through_defaults)
                    return
                old_ids, new_objs = self._changes(objs, db)
                self.remove(*old_ids)
                self.add(*new_objs, through_defaults=through_defaults)

        def set_base(self, objs, *, clear=False, through_defaults=None, raw=False):
            # Django 6.1: set() and the deserializer (raw=True) come here.
            objs = tuple(objs)
            db = router.db_for_write(self.through, instance=self.instance)
            with transaction.atomic(using=db, savepoint=False):
                self._remove_prefetched_objects()
                if clear:
                    self._clear_base(using=db, raw=raw)
                    self._add_base(*objs, through_defaults=through_defaults, using=db, raw=raw)
                    return
                old_ids, new_objs = self._changes(objs, db)
                self._remove_base(*old_ids, using=db, raw=raw)
                self._add_base(*new_objs, through_defaults=through_defaults, using=db, raw=raw)

        set.alters_data = True

        def create(self, *, through_defaults=None, **kwargs):
            new_obj = super(base, self.db_manager(self._target_db_for_write)).create(**kwargs)
            self.add(new_obj, through_defaults=through_defaults)
            return new_obj

        create.alters_data = True

        def get_or_create(self, *, through_defaults=None, **kwargs):
            obj, created = super(base, self.db_manager(self._target_db_for_write)).get_or_create(
                **kwargs
            )
            if created:
                self.add(obj, through_defaults=through_defaults)
            return obj, created

        get_or_create.alters_data = True

        def update_or_create(self, *, through_defaults=None, **kwargs):
            manager = super(base, self.db_manager(self._target_db_for_write))
            obj, created = manager.update_or_create(**kwargs)
            if created:
                self.add(obj, through_defaults=through_defaults)
            return obj, created

        update_or_create.alters_data = True

        def get_prefetch_querysets(self, instances, querysets=None):
            if querysets and len(querysets) != 1:
                raise ValueError(
                    "querysets argument of get_prefetch_querysets() should have a length of 1."
                )
            queryset = querysets[0] if querysets else super(base, self).get_queryset()
            queryset._add_hints(instance=instances[0])
            queryset = queryset.using(
                queryset._db or router.db_for_read(self.model, instance=instances[0])
            )
            sliced = queryset.query.is_sliced
            low, high = queryset.query.low_mark, queryset.query.high_mark
            if sliced:
                # Django slices per instance with a window function over the
                # JOIN; here each instance's rows are sliced in Python.
                queryset.query.clear_limits()
            source = self.through._meta.get_field(self.source_field_name)
            target = self.through._meta.get_field(self.target_field_name)
            # The through rows point at the source by source.target_field.
            instance_key = source.target_field.attname
            through_db = router.db_for_read(self.through, instance=instances[0])
            keys = {getattr(instance, instance_key) for instance in instances}
            pairs = list(
                self.through._base_manager.using(through_db)
                .filter(ids_in(source.attname, keys))
                .exclude(**{f"{target.attname}__isnull": True})
                .values_list(source.attname, target.attname)
            )
            far_key = target.target_field.attname

            def rows(queryset):
                sources_of: dict = {}
                for source_key, target_key in pairs:
                    sources_of.setdefault(target_key, []).append(source_key)
                related = queryset.filter(ids_in(far_key, sources_of))
                found = []
                for obj in related:
                    linked = sources_of.get(getattr(obj, far_key), ())
                    for position, source_key in enumerate(linked):
                        # One object per through row, as Django's JOIN gives.
                        item = obj if position == 0 else copy.copy(obj)
                        item._crossdb_prefetch_source = source_key
                        found.append(item)
                if sliced:
                    found = _slice_per_source(found, low, high)
                return found

            return (
                _PrefetchedRows(queryset, rows),
                lambda obj: (obj._crossdb_prefetch_source,),
                lambda instance: (getattr(instance, instance_key),),
                False,
                self.prefetch_cache_name,
                False,
            )

    return CrossDatabaseManyRelatedManager


def _slice_per_source(found, low, high):
    """Keep rows ``low:high`` of each source's related rows (in their order)."""
    seen: dict = {}
    kept = []
    for obj in found:
        position = seen.get(obj._crossdb_prefetch_source, 0)
        seen[obj._crossdb_prefetch_source] = position + 1
        if position >= low and (high is None or position < high):
            kept.append(obj)
    return kept
