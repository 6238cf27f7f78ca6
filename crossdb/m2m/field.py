"""``CrossDatabaseManyToManyField``: a many-to-many relation to a model in any database.

Django's ``ManyToManyField`` keeps its rows in a through table and JOINs it
with the target in one query.  Across databases the through table lives with
the *source* model (on the source's alias), with an ordinary ``ForeignKey``
to the source and a ``CrossDatabaseForeignKey`` to the target; every
many-to-many path is then a path through the through model
(``crossdb.m2m.paths``), which crossdb's foreign key rewriting, deletion,
integrity checks and audit already answer.  The managers
(``crossdb.m2m.managers``) run each query on the alias of the table it reads.
"""

from __future__ import annotations

from django.db import models
from django.db.models.fields.related import lazy_related_operation, resolve_relation
from django.db.models.fields.related_descriptors import ManyToManyDescriptor
from django.db.models.utils import make_model_tuple
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crossdb import routing
from crossdb.fields import CrossDatabaseForeignKey
from crossdb.m2m.managers import create_crossdb_many_to_many_manager


class CrossDatabaseManyToManyDescriptor(ManyToManyDescriptor):
    """``post.tags`` and ``tag.posts``: Django's descriptor with crossdb's manager."""

    @cached_property
    def related_manager_cls(self):
        related_model = self.rel.related_model if self.reverse else self.rel.model
        return create_crossdb_many_to_many_manager(
            related_model._default_manager.__class__, self.rel, reverse=self.reverse
        )


def through_query_name(field, end: str) -> str:
    """Return the query name of the auto-created through model's key to ``end``."""
    return f"crossdb_{field.model._meta.model_name}_{field.name}_{end}"


def create_through_model(field, klass):
    """Return the auto-created through model of ``field``, in ``klass``'s app.

    Django's ``create_many_to_many_intermediary_model()`` with two
    differences: the key to the target is a ``CrossDatabaseForeignKey`` (no
    constraint, checked on write), and both keys have a query name, so that
    ``crossdb.m2m.paths`` can spell each many-to-many path through them.
    """

    def set_managed(model, related, through):
        through._meta.managed = model._meta.managed or related._meta.managed

    to_model = resolve_relation(klass, field.remote_field.model)
    name = f"{klass._meta.object_name}_{field.name}"
    lazy_related_operation(set_managed, klass, to_model, name)

    to = make_model_tuple(to_model)[1]
    from_ = klass._meta.model_name
    if to == from_:
        to, from_ = f"to_{to}", f"from_{from_}"
    # Django names the table after the field while no through model is set.
    named, field.remote_field.through = field.remote_field.through, None
    try:
        db_table = field._get_m2m_db_table(klass._meta)
    finally:
        field.remote_field.through = named
    meta = type(
        "Meta",
        (),
        {
            "db_table": db_table,
            "auto_created": klass,
            "app_label": klass._meta.app_label,
            "db_tablespace": klass._meta.db_tablespace,
            "unique_together": (from_, to),
            "verbose_name": _("%(from)s-%(to)s relationship") % {"from": from_, "to": to},
            "verbose_name_plural": _("%(from)s-%(to)s relationships") % {"from": from_, "to": to},
            "apps": field.model._meta.apps,
        },
    )
    return type(
        name,
        (models.Model,),
        {
            "Meta": meta,
            "__module__": klass.__module__,
            # Same database as the source: a real constraint.
            from_: models.ForeignKey(
                klass,
                related_name=f"{name}+",
                related_query_name=through_query_name(field, "source"),
                db_tablespace=field.db_tablespace,
                on_delete=models.CASCADE,
            ),
            to: CrossDatabaseForeignKey(
                to_model,
                related_name=f"{name}+",
                related_query_name=through_query_name(field, "target"),
                db_tablespace=field.db_tablespace,
                on_delete=models.CASCADE,
                check_integrity=field.check_integrity,
            ),
        },
    )


class CrossDatabaseManyToManyField(models.ManyToManyField):
    """A many-to-many relation to a model that may live in another database."""

    crossdb_path = "crossdb.CrossDatabaseManyToManyField"
    description = "Many-to-many relation to a model in any database"
    # Marks the field for crossdb.m2m.paths; not ``crossdb = True``: the field
    # itself is no key, its through model's keys are.
    crossdb_many_to_many = True

    def __init__(self, to, *args, db_constraint=False, check_integrity=True, **kwargs):
        # Kept for the system check (crossdb.E001), as crossdb's foreign keys do.
        self.crossdb_db_constraint_requested = db_constraint
        self.check_integrity = check_integrity
        # db_constraint is the auto-created through's; an explicit through
        # model declares its own keys (and Django refuses the argument).
        if kwargs.get("through") is None:
            kwargs["db_constraint"] = False
        super().__init__(to, *args, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("db_constraint", None)
        if self.crossdb_db_constraint_requested:
            kwargs["db_constraint"] = True
        if not self.check_integrity:
            kwargs["check_integrity"] = False
        return name, self.crossdb_path, args, kwargs

    def contribute_to_class(self, cls, name, **kwargs):
        auto = not self.remote_field.through and not cls._meta.abstract and not cls._meta.swapped
        if auto:
            # Django resolves a named through model lazily: name ours, so that
            # Django does not build its own, then build it.
            self.remote_field.through = f"{cls._meta.app_label}.{cls._meta.object_name}_{name}"
        super().contribute_to_class(cls, name, **kwargs)
        if auto:
            create_through_model(self, cls)
        setattr(cls, self.name, CrossDatabaseManyToManyDescriptor(self.remote_field, reverse=False))

    def contribute_to_related_class(self, cls, related):
        super().contribute_to_related_class(cls, related)
        if not self.remote_field.hidden and not related.related_model._meta.swapped:
            setattr(
                cls,
                related.accessor_name,
                CrossDatabaseManyToManyDescriptor(self.remote_field, reverse=True),
            )
        # The managers place each end on its own alias (crossdb.routing).
        routing.register_pair(self.model, cls)


def is_crossdb_many_to_many(field) -> bool:
    """Return True for a ``CrossDatabaseManyToManyField`` or its reverse relation."""
    return getattr(getattr(field, "field", field), "crossdb_many_to_many", False) is True
