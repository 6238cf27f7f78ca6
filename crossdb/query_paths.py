"""Where a lookup path crosses a crossdb relation.

``find_crossing(Post, "author__username")`` says that the path leaves
``Post`` through the crossdb field ``author`` and continues as ``username``
on ``auth.User``; ``author``, ``author__id`` or ``author_id`` only read the
local key and do not cross.  ``crossdb.query_lookups``, ``query_values`` and
``query_order`` build on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.reverse_related import ForeignObjectRel

from crossdb import routing, transport
from crossdb.fields import is_crossdb_field
from crossdb.m2m import paths as m2m_paths


@dataclass(frozen=True)
class Crossing:
    """Where a lookup path crosses a crossdb field."""

    prefix: tuple[str, ...]  # same-database path before the crossing
    field: object  # the crossdb field (forward) or its ForeignObjectRel (reverse)
    rest: str  # the path on the far model ("" = the related object itself)
    multi_valued: bool  # several far rows may match one local row

    @property
    def key(self):
        return (self.prefix, self.field)

    @property
    def reverse(self) -> bool:
        return isinstance(self.field, ForeignObjectRel)


def field_of(opts, name):
    """Return the field ``name`` names on ``opts`` (``pk`` included), or None."""
    if opts is None:
        return None
    try:
        return opts.get_field(opts.pk.name if name == "pk" else name)
    except FieldDoesNotExist:
        return None


def _stays_on_key(field, rest: list[str]) -> bool:
    """Return True when ``field__<rest>`` only reads the local key (Django trims the join)."""
    target = field.target_field
    far = field_of(field.related_model._meta, rest[0])
    if far is None:
        return True  # a lookup or transform on the key itself: author__in, author__isnull
    if far != target:
        return False
    # On a MySQL/MariaDB column the key's own lookups compare by collation:
    # key__code="ann" crosses, so the target's exact equality decides.
    if transport.narrows(field, connections[routing.db_for_read(field.model)]):
        return False
    if len(rest) == 1 or not far.is_relation or far.related_model is None:
        return True
    # The target's key is itself a relation (restaurant__place__id, a parent
    # link): still the local column while each step stays on the key.
    return _stays_on_key(far, rest[1:])


def _multi_valued(model, parts: list[str]) -> bool:
    """Return True when following ``parts`` from ``model`` meets a to-many relation."""
    opts = model._meta
    for name in parts:
        field = field_of(opts, name)
        if field is None or not field.is_relation or field.related_model is None:
            return False
        if field.one_to_many or field.many_to_many:
            return True
        opts = field.related_model._meta
    return False


def find_crossing(model, lookup: str) -> Crossing | None:
    """Return where ``lookup`` crosses a crossdb field, or None if it stays local."""
    # A crossdb many-to-many step is a path through its through model.
    lookup = m2m_paths.through_path(model, lookup) or lookup
    parts = lookup.split(LOOKUP_SEP)
    opts = model._meta
    prefix: list[str] = []
    for position, name in enumerate(parts):
        field = field_of(opts, name)
        if field is None or not field.is_relation or field.related_model is None:
            return None
        if getattr(field, "attname", None) == name != field.name:
            return None  # author_id: the local column
        rest = parts[position + 1 :]
        if is_crossdb_field(field):
            reverse = isinstance(field, ForeignObjectRel)
            if not reverse and (not rest or _stays_on_key(field, rest)):
                return None
            multi = (reverse and field.one_to_many) or _multi_valued(field.related_model, rest)
            return Crossing(tuple(prefix), field, LOOKUP_SEP.join(rest), multi)
        prefix.append(name)
        opts = field.related_model._meta
    return None


def splits_at_crossing(model, crossing: Crossing) -> bool:
    """Return True when the crossing is the first to-many step of its path."""
    if not (crossing.reverse and crossing.field.one_to_many):
        return False
    return not _multi_valued(model, list(crossing.prefix))


def final_field(model, lookup: str):
    """Return the last field ``lookup`` names from ``model`` (None if none)."""
    opts, field = model._meta, None
    for name in lookup.split(LOOKUP_SEP):
        found = field_of(opts, name)
        if found is None:
            break
        field = found
        if not found.is_relation or found.related_model is None:
            break
        if getattr(found, "attname", None) == name != found.name:
            break
        opts = found.related_model._meta
    return field


def ends_on_field(model, parts) -> bool:
    """Return True when the last of ``parts`` names a field (no lookup given)."""
    opts = model._meta
    for name in parts:
        field = field_of(opts, name)
        if field is None:
            return False
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
        else:
            opts = None
    return True


def ordering_path(item):
    """Return ``(path, descending, nulls_first, nulls_last)`` of an order_by() argument, or None.

    ``"-author__username"``, ``F("author__username")`` and
    ``F(...).asc(nulls_last=True)`` name a path; anything else (``"?"``,
    other expressions) does not.
    """
    from django.db.models import F
    from django.db.models.expressions import OrderBy

    if isinstance(item, OrderBy) and type(item.expression) is F:
        return item.expression.name, item.descending, item.nulls_first, item.nulls_last
    if isinstance(item, F) and type(item) is F:
        return item.name, False, False, False
    if isinstance(item, str) and item != "?":
        return item.lstrip("-+"), item.startswith("-"), False, False
    return None
