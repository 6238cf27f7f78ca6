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

from crossdb import routing
from crossdb.m2m.field import is_crossdb_many_to_many


def target_alias(field, using=None) -> str:
    """Return the alias natural keys of ``field``'s target are looked up on."""
    return routing.home_alias(field.remote_field.model, using, "db_for_read")


def _deserialize_m2m_values(original):
    def deserialize_m2m_values(field, field_value, using, handle_forward_references):
        if is_crossdb_many_to_many(field):
            using = target_alias(field, using)
        return original(field, field_value, using, handle_forward_references)

    deserialize_m2m_values.crossdb_original = original
    return deserialize_m2m_values


def _handle_m2m_field_node(original):
    def handle_m2m_field_node(self, node, field):
        if not is_crossdb_many_to_many(field):
            return original(self, node, field)
        # self.db is read there only to look the natural keys up.
        fixture_alias, self.db = self.db, target_alias(field, self.db)
        try:
            return original(self, node, field)
        finally:
            self.db = fixture_alias

    handle_m2m_field_node.crossdb_original = original
    return handle_m2m_field_node


def install() -> None:
    """Install the natural-key seam for many-to-many values (idempotent)."""
    if not hasattr(base.deserialize_m2m_values, "crossdb_original"):
        base.deserialize_m2m_values = _deserialize_m2m_values(base.deserialize_m2m_values)
    handler = xml_serializer.Deserializer._handle_m2m_field_node
    if not hasattr(handler, "crossdb_original"):
        xml_serializer.Deserializer._handle_m2m_field_node = _handle_m2m_field_node(handler)


def installed() -> bool:
    """Return True when ``install()`` has wrapped both deserializer paths."""
    return hasattr(base.deserialize_m2m_values, "crossdb_original") and hasattr(
        xml_serializer.Deserializer._handle_m2m_field_node, "crossdb_original"
    )
