"""Fixtures: natural keys of a ``CrossDatabaseManyToManyField``'s targets, on the target's alias.

``loaddata --database blog_db`` deserializes an article's ``"tags": [["red"]]``
by asking ``Tag.objects.db_manager("blog_db").get_by_natural_key("red")``:
the fixture's alias, where the tags are not.  The ``m2m_fixtures`` seam
(``crossdb.seams``) makes Django's two code paths ask the target's alias
instead, as ``crossdb.serializers`` does for crossdb foreign keys:

- ``django.core.serializers.base.deserialize_m2m_values`` (JSON, YAML, Python,
  and the deferred forward references of every format);
- ``django.core.serializers.xml_serializer.Deserializer._handle_m2m_field_node``.

The links are then written by the field's manager (``set()``), on the
through model's alias.  Dumping needs nothing: ``dumpdata`` reads
``article.tags`` through the manager.
"""

from __future__ import annotations

from django.core.serializers import base, xml_serializer

from crossdb.m2m.field import is_crossdb_many_to_many
from crossdb.serializers import looked_up_on_target, node_looked_up_on_target


def install() -> None:
    """Install the natural-key seam for many-to-many values (idempotent)."""
    if not hasattr(base.deserialize_m2m_values, "crossdb_original"):
        base.deserialize_m2m_values = looked_up_on_target(
            base.deserialize_m2m_values, is_crossdb_many_to_many
        )
    handler = xml_serializer.Deserializer._handle_m2m_field_node
    if not hasattr(handler, "crossdb_original"):
        xml_serializer.Deserializer._handle_m2m_field_node = node_looked_up_on_target(
            handler, is_crossdb_many_to_many
        )


def installed() -> bool:
    """Return True when ``install()`` has wrapped both deserializer paths."""
    return hasattr(base.deserialize_m2m_values, "crossdb_original") and hasattr(
        xml_serializer.Deserializer._handle_m2m_field_node, "crossdb_original"
    )
