"""The relation fields: ``CrossDatabaseForeignKey`` and ``CrossDatabaseOneToOneField``.

Each is the Django field it extends with four differences: no database
constraint (the target table is in another database), crossdb's integrity
check on write in its place (``crossdb.integrity``; ``check_integrity=False``
opts a field out), descriptors that read each end from the alias the routers
choose, and an ``in`` lookup that carries ids as one parameter.  Queries and
deletes that cross the relation are handled by ``crossdb.query`` and
``crossdb.deletion``.
"""

from __future__ import annotations

from django.db import models

from crossdb import routing
from crossdb.descriptors import (
    CrossDatabaseForwardManyToOneDescriptor,
    CrossDatabaseForwardOneToOneDescriptor,
    CrossDatabaseReverseOneToOneDescriptor,
)
from crossdb.lookups import CrossDatabaseRelatedExact, CrossDatabaseRelatedIn


class CrossDatabaseFieldMixin:
    """What both crossdb relation fields share."""

    # The public import path, kept stable in migrations.
    crossdb_path: str
    # True: crossdb.query and crossdb.deletion treat the field as crossing
    # databases even when both ends route to the same alias.
    crossdb = True

    def __init__(self, *args, db_constraint=False, check_integrity=True, **kwargs):
        # A constraint cannot reference a table in another database; what the
        # caller asked for is kept so that the system check can report it.
        self.crossdb_db_constraint_requested = db_constraint
        # False: writes are not checked against the target (crossdb.integrity).
        self.check_integrity = check_integrity
        super().__init__(*args, db_constraint=False, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        # Forced to False: writing it into migrations would only be noise.
        kwargs.pop("db_constraint", None)
        if self.crossdb_db_constraint_requested:
            kwargs["db_constraint"] = True
        if not self.check_integrity:
            kwargs["check_integrity"] = False
        return name, self.crossdb_path, args, kwargs

    def contribute_to_related_class(self, cls, related):
        super().contribute_to_related_class(cls, related)
        routing.register_pair(self.model, cls)


class CrossDatabaseForeignKey(CrossDatabaseFieldMixin, models.ForeignKey):
    """A many-to-one relation to a model that may live in another database."""

    crossdb_path = "crossdb.CrossDatabaseForeignKey"
    description = "Foreign key to a model in any database (no constraint)"
    forward_related_accessor_class = CrossDatabaseForwardManyToOneDescriptor


class CrossDatabaseOneToOneField(CrossDatabaseFieldMixin, models.OneToOneField):
    """A one-to-one relation to a model that may live in another database."""

    crossdb_path = "crossdb.CrossDatabaseOneToOneField"
    description = "One-to-one relation to a model in any database (no constraint)"
    forward_related_accessor_class = CrossDatabaseForwardOneToOneDescriptor
    related_accessor_class = CrossDatabaseReverseOneToOneDescriptor


CrossDatabaseForeignKey.register_lookup(CrossDatabaseRelatedIn, lookup_name="in")
CrossDatabaseOneToOneField.register_lookup(CrossDatabaseRelatedIn, lookup_name="in")
CrossDatabaseForeignKey.register_lookup(CrossDatabaseRelatedExact, lookup_name="exact")
CrossDatabaseOneToOneField.register_lookup(CrossDatabaseRelatedExact, lookup_name="exact")


def is_crossdb_field(field) -> bool:
    """Return True for a crossdb relation field (or its reverse relation)."""
    return getattr(getattr(field, "field", field), "crossdb", False) is True
