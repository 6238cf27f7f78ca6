"""The two replica routers of the multi-database guides, written by hand.

They know nothing of crossdb: crossdb must work with them unchanged.  In
front of them, ``tests.routers.BlogRouter`` and ``ShopRouter`` keep the blog
and the shop on their own aliases; these routers answer for the rest.
"""

import random

PRIMARY = "default"
REPLICA = "replica"


class PrimaryReplicaRouter:
    """Every read to ``replica``, every write to ``default``."""

    def db_for_read(self, model, **hints):
        return REPLICA

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        pool = {PRIMARY, REPLICA}
        if obj1._state.db in pool and obj2._state.db in pool:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return True


class ReadReplicaRouter(PrimaryReplicaRouter):
    """80% of the reads to ``replica`` at random, the rest and every write to ``default``."""

    share = 0.8

    def db_for_read(self, model, **hints):
        return REPLICA if random.random() < self.share else PRIMARY


SEED_CHAINS = {
    "primary_replica": [
        "tests.routers.BlogRouter",
        "tests.routers.ShopRouter",
        "tests.replica_routers.PrimaryReplicaRouter",
    ],
    "read_replica": [
        "tests.routers.BlogRouter",
        "tests.routers.ShopRouter",
        "tests.replica_routers.ReadReplicaRouter",
    ],
}
