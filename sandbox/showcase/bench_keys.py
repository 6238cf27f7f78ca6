"""``bench --keys N``: long string keys through every path that carries ids across.

``shop.Subscription.subscriber`` references ``auth.User`` by its *username*
(``to_field``), so each path below carries up to N strings of ``--key-length``
characters from one alias to another through crossdb's id transport
(``crossdb/transport.py``):

- ``filter(subscriber__in=keys)`` on shop_db;
- ``prefetch_related("subscriber")``: the usernames read on shop_db, looked up
  on default;
- ``prefetch_related("shop_subscriptions")``: the usernames read on default,
  looked up on shop_db;
- a CASCADE delete of the N users: the collector finds their subscriptions on
  shop_db by those usernames, then deletes on both aliases.

Each prints its seconds, the peak Python memory (tracemalloc, which also slows
the run: the seconds are an upper bound) and the statements sent per alias.
On MySQL/MariaDB a key set above half of ``max_allowed_packet`` travels through
a temporary table (docs/querying.rst, "Any size").  Crossdb's side only: the
plain-ForeignKey twin of these paths is a JOIN, which the main table measures.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from contextlib import ExitStack, contextmanager

from django.contrib.auth import get_user_model
from django.db import connections
from shop.models import Subscription

from crossdb import integrity

User = get_user_model()
TOPIC = "bench-keys"


def usernames(count: int, length: int) -> list[str]:
    """``count`` distinct usernames of exactly ``length`` characters (150 at most)."""
    prefix = "bk-"
    return [f"{prefix}{i:0{length - len(prefix)}d}" for i in range(count)]


@contextmanager
def counted_statements():
    """Count the statements each alias runs (a counter: a query log would hold the SQL)."""
    counts: Counter = Counter()

    def wrapper_for(alias):
        def counted(execute, sql, params, many, context):
            counts[alias] += 1
            return execute(sql, params, many, context)

        return counted

    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(wrapper_for(alias)))
        yield counts


def measure(run) -> dict:
    """Run ``run()`` once; return its result, seconds, peak memory and statements."""
    with counted_statements() as counts:
        tracemalloc.start()
        start = time.perf_counter()
        try:
            result = run()
        finally:
            seconds = time.perf_counter() - start
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    return {
        "result": result,
        "seconds": seconds,
        "peak_mb": peak / 2**20,
        "statements": dict(counts),
    }


def wipe(keys) -> None:
    Subscription.objects.filter(topic=TOPIC)._raw_delete(Subscription.objects.db)
    prefix = keys[0][:3] if keys else "bk-"
    User.objects.filter(username__startswith=prefix)._raw_delete(User.objects.db)


def populate(keys) -> None:
    User.objects.bulk_create([User(username=key) for key in keys], batch_size=2000)
    # Unchecked: the benchmark measures the paths that read, not the write check.
    with integrity.unchecked():
        Subscription.objects.bulk_create(
            [Subscription(subscriber_id=key, topic=TOPIC) for key in keys], batch_size=2000
        )


def run_paths(count: int, length: int) -> list[tuple[str, dict]]:
    """Measure each path with ``count`` keys of ``length`` characters; remove the rows."""
    keys = usernames(count, length)
    wipe(keys)
    populate(keys)
    subscriptions = Subscription.objects.filter(topic=TOPIC)
    users = User.objects.filter(username__startswith=keys[0][:3])
    results = []
    try:
        results.append(
            (
                f"filter(subscriber__in=<{count} keys>).count() on shop_db",
                measure(lambda: Subscription.objects.filter(subscriber__in=keys).count()),
            )
        )
        results.append(
            (
                f"prefetch_related('subscriber') of {count} subscriptions",
                measure(
                    lambda: sum(
                        1 for s in subscriptions.prefetch_related("subscriber") if s.subscriber
                    )
                ),
            )
        )
        results.append(
            (
                f"prefetch_related('shop_subscriptions') of {count} users",
                measure(
                    lambda: sum(
                        len(u.shop_subscriptions.all())
                        for u in users.prefetch_related("shop_subscriptions")
                    )
                ),
            )
        )

        def cascade():
            users.delete()
            # What the cascade left behind on shop_db (0 when it held).
            return subscriptions.count()

        results.append((f"CASCADE delete of {count} users", measure(cascade)))
    finally:
        wipe(keys)
    return results


def vendors() -> str:
    return ", ".join(
        f"{alias}={connections[alias].vendor}" for alias in ("default", Subscription.objects.db)
    )
