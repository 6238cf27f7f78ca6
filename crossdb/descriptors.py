"""Descriptors of crossdb fields: ``post.author``, ``user.shop_profile``.

They extend Django's own descriptors.  Which alias each end is read from is
decided by the routers through ``crossdb.routing`` (installed on Django's
``ConnectionRouter``), so what is left here is what differs across databases:
prefetching by one id-set parameter, errors that name the alias, and the
router refusal message.  The reverse many-to-one manager (``user.blog_posts``)
is Django's own: it asks the routers with ``instance=user``, which crossdb's
routing answers with the source model's alias rather than the user's.
"""

from __future__ import annotations

from django.db import router
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ForwardOneToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.utils.functional import cached_property

from crossdb import routing
from crossdb.lookups import ids_in


def _alias_of(instance, hint) -> str:
    """Return the alias ``instance`` is, or would be, written to."""
    return instance._state.db or routing.db_for_write(type(instance), instance=hint)


class CrossDatabaseForwardDescriptorMixin:
    """Forward access across databases: ``post.author``."""

    def get_object(self, instance):
        try:
            return super().get_object(instance)
        except self.field.remote_field.model.DoesNotExist:
            target = self.field.remote_field.model
            value = getattr(instance, self.field.attname)
            alias = self.get_queryset(instance=instance).db
            raise self.RelatedObjectDoesNotExist(
                f"{self.field.model._meta.label}.{self.field.name} points at "
                f"{target._meta.object_name} {self.field.target_field.attname}={value!r}, "
                f"which does not exist on database {alias!r}."
            ) from None

    def get_prefetch_querysets(self, instances, querysets=None):
        if querysets and len(querysets) != 1:
            raise ValueError(
                "querysets argument of get_prefetch_querysets() should have a length of 1."
            )
        # The hint lets the routers (and crossdb's fallback) pick the target alias.
        # get_queryset(instance=) is what Django 5.2 (**hints) and 6.1 (keyword-only
        # instance, which also carries the instance's fetch mode) both accept.
        if querysets:
            queryset = querysets[0]
            queryset._add_hints(instance=instances[0])
        else:
            queryset = self.get_queryset(instance=instances[0])

        rel_obj_attr = self.field.get_foreign_related_value
        instance_attr = self.field.get_local_related_value
        instances_dict = {instance_attr(inst): inst for inst in instances}
        # One id-set parameter instead of Django's TupleIn, which SQLite
        # renders as "id = 1 OR id = 2 ..." and refuses past ~1000 ids.
        queryset = queryset.filter(
            ids_in(self.field.target_field.attname, (key[0] for key in instances_dict))
        )
        # There can be only one object per instance: ordering adds nothing.
        queryset.query.clear_ordering()

        remote_field = self.field.remote_field
        if not remote_field.multiple:
            for rel_obj in queryset:
                instance = instances_dict[rel_obj_attr(rel_obj)]
                remote_field.set_cached_value(rel_obj, instance)
        return (queryset, rel_obj_attr, instance_attr, True, self.field.cache_name, False)

    def __set__(self, instance, value):
        target = self.field.remote_field.model._meta.concrete_model
        if value is not None and isinstance(value, target):
            # Unsaved ends are placed first, as Django's __set__ does before it
            # asks allow_relation: routers may look at _state.db.
            if instance._state.db is None:
                instance._state.db = router.db_for_write(instance.__class__, instance=value)
            if value._state.db is None:
                value._state.db = router.db_for_write(value.__class__, instance=instance)
            answer = routing.relation_answer(value, instance)
            # Routers that abstain: allowed when each end is where the other
            # reads it (routing.reads_agree), as Django allows one alias.
            if answer is False or (answer is None and not routing.reads_agree(value, instance)):
                # Django's sentence whole, so code matching on it still matches.
                raise ValueError(
                    f'Cannot assign "{value!r}": the current database router prevents this '
                    f"relation. {self.field.model._meta.label}.{self.field.name}: "
                    f"{value._meta.label} on {_alias_of(value, instance)!r}, "
                    f"{instance._meta.label} on {_alias_of(instance, value)!r}."
                )
        super().__set__(instance, value)


class CrossDatabaseForwardManyToOneDescriptor(
    CrossDatabaseForwardDescriptorMixin, ForwardManyToOneDescriptor
):
    """``post.author`` for a ``CrossDatabaseForeignKey``."""


class CrossDatabaseForwardOneToOneDescriptor(
    CrossDatabaseForwardDescriptorMixin, ForwardOneToOneDescriptor
):
    """``profile.user`` for a ``CrossDatabaseOneToOneField``."""


class CrossDatabaseReverseOneToOneDescriptor(ReverseOneToOneDescriptor):
    """``user.shop_profile``: the reverse side of a ``CrossDatabaseOneToOneField``."""

    def __get__(self, instance, cls=None):
        if instance is not None and not instance._is_pk_set():
            raise self.UnsavedInstanceError(
                f"{instance.__class__.__name__!r} instance needs to have a primary key "
                f"value before {self.related.accessor_name!r} can be used."
            )
        return super().__get__(instance, cls)

    @cached_property
    def UnsavedInstanceError(self):
        # A ValueError, as the reverse manager raises, that existing
        # ``except RelatedObjectDoesNotExist`` clauses still catch.
        return type("UnsavedInstanceError", (self.RelatedObjectDoesNotExist, ValueError), {})
