"""``AppLabelRouter``: route each app to the alias ``DATABASE_ROUTING_RULES`` names.

Read replicas come from ``DATABASE_REPLICAS`` (``{primary: [replica, ...]}``):
reads of a primary's models go to one of its replicas, picked at random for
each query, writes to the primary.  Inside ``crossdb.pinning.pin_to_primaries()``
(or after a write under ``PinningMiddleware``) reads go to the primary too.
Replicas are never migrated: the primary's migrations reach them by
replication.
"""

from __future__ import annotations

import random

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from crossdb import pinning


def routing_rules() -> dict[str, str]:
    """Return ``settings.DATABASE_ROUTING_RULES`` (``{app_label: alias}``)."""
    return getattr(settings, "DATABASE_ROUTING_RULES", None) or {}


def replica_rules() -> dict[str, list[str]]:
    """Return ``settings.DATABASE_REPLICAS`` (``{primary alias: [replica aliases]}``)."""
    rules = getattr(settings, "DATABASE_REPLICAS", None) or {}
    return {primary: list(replicas) for primary, replicas in rules.items() if replicas}


def replica_aliases() -> set[str]:
    """Return every alias ``DATABASE_REPLICAS`` names as a replica."""
    return {alias for replicas in replica_rules().values() for alias in replicas}


def primary_of(alias: str) -> str:
    """Return the primary ``alias`` replicates (``alias`` itself for a primary)."""
    for primary, replicas in replica_rules().items():
        if alias in replicas:
            return primary
    return alias


class AppLabelRouter:
    """Send each app's models to the alias of its rule; apps without one to default.

    ``DATABASE_ROUTING_RULES = {"blog": "blog_db", "shop": "shop_db"}``
    ``DATABASE_REPLICAS = {"default": ["replica"], "blog_db": ["blog_replica"]}``
    """

    def alias_for_app(self, app_label: str) -> str:
        """Return the alias that holds ``app_label``'s tables."""
        return routing_rules().get(app_label, DEFAULT_DB_ALIAS)

    def db_for_read(self, model, **hints):
        primary = self.alias_for_app(model._meta.app_label)
        replicas = replica_rules().get(primary)
        if not replicas or pinning.is_pinned():
            return primary
        # Uniform per query, as Django's multi-database guide does: replicas
        # of one primary are interchangeable copies.
        return random.choice(replicas)

    def db_for_write(self, model, **hints):
        return self.alias_for_app(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        # Relations between the configured aliases (and their replicas, which
        # hold the same rows) are the point of the rules; anything else (an
        # alias used by hand) is left to the next router.
        configured = {DEFAULT_DB_ALIAS, *routing_rules().values()}
        if primary_of(obj1._state.db) in configured and primary_of(obj2._state.db) in configured:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db in replica_aliases():
            return False
        return db == self.alias_for_app(app_label)
