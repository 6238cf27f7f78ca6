"""Many-to-many paths spelled through the through model.

``Post.objects.filter(tags__name="x")`` is, inside one database, a JOIN of
the through table and the tag table.  Across databases the same condition is
``<through rows of the post>__tag__name``: a local JOIN of the through table
(on the post's alias) followed by a ``CrossDatabaseForeignKey`` to the tag,
which ``crossdb.query_lookups`` answers with one query per alias, with
Django's semantics for multi-valued relations (the through JOIN is Django's
own).  The reverse path ``Tag.objects.filter(posts__title="x")`` becomes
``<through rows of the tag>__post__title``: across the reverse of the
crossdb key, then a local JOIN to the post.

``through_path(Post, "tags__name")`` returns the rewritten path, or None
when the path names no ``CrossDatabaseManyToManyField``.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.reverse_related import ForeignObjectRel

from crossdb.m2m.field import is_crossdb_many_to_many


def _field(opts, name):
    try:
        return opts.get_field(opts.pk.name if name == "pk" else name)
    except FieldDoesNotExist:
        return None


def through_steps(field) -> tuple[str, str]:
    """Return the two path steps through the through model for ``field`` (or its rel)."""
    forward = not isinstance(field, ForeignObjectRel)
    m2m = field if forward else field.field
    through = m2m.remote_field.through
    if isinstance(through, str):
        return None
    source = through._meta.get_field(m2m.m2m_field_name())
    target = through._meta.get_field(m2m.m2m_reverse_field_name())
    first, second = (source, target) if forward else (target, source)
    return first.related_query_name(), second.name


def through_path(model, lookup: str) -> str | None:
    """Return ``lookup`` with each crossdb many-to-many step spelled through its through model."""
    parts = lookup.split(LOOKUP_SEP)
    opts = model._meta
    rewritten: list[str] = []
    changed = False
    for position, name in enumerate(parts):
        field = _field(opts, name) if opts is not None else None
        if field is None:
            rewritten.extend(parts[position:])
            break
        steps = through_steps(field) if is_crossdb_many_to_many(field) else None
        if steps is not None:
            rewritten.extend(steps)
            changed = True
        else:
            rewritten.append(name)
        if not field.is_relation or field.related_model is None:
            rewritten.extend(parts[position + 1 :])
            break
        if getattr(field, "attname", None) == name != field.name:
            rewritten.extend(parts[position + 1 :])
            break
        opts = field.related_model._meta
    return LOOKUP_SEP.join(rewritten) if changed else None
