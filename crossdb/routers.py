"""``AppLabelRouter``: route each app to the alias ``DATABASE_ROUTING_RULES`` names."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS


def routing_rules() -> dict[str, str]:
    """Return ``settings.DATABASE_ROUTING_RULES`` (``{app_label: alias}``)."""
    return getattr(settings, "DATABASE_ROUTING_RULES", None) or {}


class AppLabelRouter:
    """Send each app's models to the alias of its rule; apps without one to default.

    ``DATABASE_ROUTING_RULES = {"blog": "blog_db", "shop": "shop_db"}``
    """

    def alias_for_app(self, app_label: str) -> str:
        """Return the alias that holds ``app_label``'s tables."""
        return routing_rules().get(app_label, DEFAULT_DB_ALIAS)

    def db_for_read(self, model, **hints):
        return self.alias_for_app(model._meta.app_label)

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        # Relations between the configured aliases are the point of the
        # rules; anything else (a replica, an alias used by hand) is left to
        # the next router.
        configured = {DEFAULT_DB_ALIAS, *routing_rules().values()}
        if obj1._state.db in configured and obj2._state.db in configured:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == self.alias_for_app(app_label)
