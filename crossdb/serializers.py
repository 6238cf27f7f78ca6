"""Fixtures: natural foreign keys of crossdb fields resolved on the target's alias.

``loaddata --database blog_db`` deserializes a post's ``"author": ["ann"]`` by
asking ``User.objects.db_manager("blog_db").get_by_natural_key("ann")``:
Django looks the target up on the fixture's alias, which for a crossdb field
is the wrong database (an error, or a stale copy's id, silently).  The
``serializers`` seam (``crossdb.seams``) makes both of Django's code paths ask
the target's alias instead (``routing.home_alias``: the routers' answer, else
the fixture's alias when the target's table lives there, else ``default``):

- ``django.core.serializers.base.deserialize_fk_value`` (JSON, YAML, Python,
  and deferred forward references of every format);
- ``django.core.serializers.xml_serializer.Deserializer._handle_fk_field_node``
  (XML).

Dumping needs nothing: ``--natural-foreign`` reads ``post.author`` through the
descriptor, which already reads the target's alias.
"""

from __future__ import annotations

from django.core.serializers import base, xml_serializer

from crossdb import routing
from crossdb.fields import is_crossdb_field


def target_alias(field, using=None) -> str:
    """Return the alias natural keys of ``field``'s target are looked up on."""
    return routing.home_alias(field.remote_field.model, using, "db_for_read")


def looked_up_on_target(original, applies):
    """Wrap a ``deserialize_*_value(field, value, using, ...)`` function of Django's.

    For a field ``applies(field)`` accepts, the natural keys are looked up on
    the target's alias instead of the fixture's.
    """

    def deserialize(field, field_value, using, handle_forward_references):
        if applies(field):
            using = target_alias(field, using)
        return original(field, field_value, using, handle_forward_references)

    deserialize.crossdb_original = original
    return deserialize


def node_looked_up_on_target(original, applies):
    """Wrap an XML ``Deserializer._handle_*_field_node(self, node, field)`` method of Django's."""

    def handle(self, node, field):
        if not applies(field):
            return original(self, node, field)
        # self.db is read there only to look the natural keys up.
        fixture_alias, self.db = self.db, target_alias(field, self.db)
        try:
            return original(self, node, field)
        finally:
            self.db = fixture_alias

    handle.crossdb_original = original
    return handle


def install() -> None:
    """Install the natural-key seam on Django's deserializers (idempotent)."""
    if not hasattr(base.deserialize_fk_value, "crossdb_original"):
        base.deserialize_fk_value = looked_up_on_target(base.deserialize_fk_value, is_crossdb_field)
    handler = xml_serializer.Deserializer._handle_fk_field_node
    if not hasattr(handler, "crossdb_original"):
        xml_serializer.Deserializer._handle_fk_field_node = node_looked_up_on_target(
            handler, is_crossdb_field
        )


def installed() -> bool:
    """Return True when ``install()`` has wrapped both deserializer paths."""
    return hasattr(base.deserialize_fk_value, "crossdb_original") and hasattr(
        xml_serializer.Deserializer._handle_fk_field_node, "crossdb_original"
    )
