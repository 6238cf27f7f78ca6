"""Benchmark rows of aggregates across databases: ``annotate(Count(...))`` against JOIN + GROUP BY.

Hooked into ``showcase.bench.operations`` (the 20k posts / 900 users table)
and, with ``bench --aggregate-users N``, run once more at N users with the
peak Python memory of each side (tracemalloc) printed.
"""

from __future__ import annotations

import time
import tracemalloc

from django.contrib.auth import get_user_model
from django.db.models import Count

User = get_user_model()
REVERSE = {"crossdb": "blog_posts", "plain": "twin_posts"}
TARGET = 2.0


def top_authors(side, _state=None, limit=50):
    """``User.objects.annotate(n=Count(<posts>)).filter(n__gt=0).order_by("-n")[:50]``."""
    queryset = User.objects.annotate(n=Count(REVERSE[side])).filter(n__gt=0).order_by("-n", "pk")
    return len([(user.pk, user.n) for user in queryset[:limit]])


def count_authors(side, _state=None):
    """The same filter, counted: ``count()`` keeps Django's meaning (a subquery)."""
    return User.objects.annotate(n=Count(REVERSE[side])).filter(n__gt=0).count()


def operations(operation_class):
    """Return the aggregate rows of the benchmark table."""
    return [
        operation_class("annotate(Count) top 50 by count", TARGET, top_authors),
        # Informational: the far GROUP BY alone costs about what the JOIN does here.
        operation_class("annotate(Count) filtered count()", None, count_authors),
    ]


def at_scale(users: int, posts: int, stdout, populate, wipe) -> None:
    """Write ``users`` users and ``posts`` posts a side; print time and peak memory of each side."""
    wipe()
    try:
        stdout.write(f"aggregates at scale: {users} users, {posts} posts on each side")
        populate(users, posts, stdout)
        # Times without tracemalloc (which slows every Python allocation, so
        # would weigh on crossdb's side only); the peak in a run of its own.
        times = {"crossdb": [], "plain": []}
        for side in ("crossdb", "plain", "plain", "crossdb", "crossdb", "plain"):
            start = time.perf_counter()
            size = top_authors(side)
            times[side].append(time.perf_counter() - start)
        results = {}
        for side in ("crossdb", "plain"):
            tracemalloc.start()
            size = top_authors(side)
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results[side] = (min(times[side]), peak, size)
        for side, (elapsed, peak, size) in results.items():
            stdout.write(
                f"  {side:8} top 50 by Count over {users} users: {elapsed * 1000:8.1f} ms, "
                f"peak Python memory {peak / 2**20:6.1f} MB, {size} rows"
            )
        ratio = results["crossdb"][0] / results["plain"][0]
        stdout.write(f"  ratio crossdb / plain: {ratio:.2f}x (target {TARGET:.1f}x)")
    finally:
        wipe()
