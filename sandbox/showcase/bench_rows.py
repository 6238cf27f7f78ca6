"""Benchmark rows of a row per related row across databases, against Django's JOIN.

``User.objects.filter(blog_posts__published=True)`` repeats a user once per
matching post, and ``order_by("-blog_posts__published")`` once per post, as the
single-database JOIN does (``crossdb.query_rows``, ``crossdb.query_per_row``):
the far keys (and values) are read on blog_db and joined as a derived table.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

User = get_user_model()
REVERSE = {"crossdb": "blog_posts", "plain": "twin_posts"}


def operations(data, operation_class):
    """Return the rows-per-related-row rows of the benchmark table."""

    def filtered_count(side, _state=None):
        # Two posts in three of the benchmark are published: they match.
        lookup = {f"{REVERSE[side]}__published": True}
        return data.users_qs().filter(**lookup).count()

    def ordered_page(side, _state=None):
        ordering = (f"-{REVERSE[side]}__published", f"{REVERSE[side]}__title", "pk")
        return len(list(data.users_qs().order_by(*ordering).values_list("pk")[:50]))

    return [
        # The lookup target: two posts in three match, so 13,333 far keys travel
        # where Django's JOIN reads them in place (docs/performance.rst).
        operation_class("filter across, a row per post: count()", 1.6, filtered_count),
        # Informational: every far row of the page's users is read, ranked and
        # joined before the local database sorts and slices.
        operation_class("order_by across, a row per post [:50]", None, ordered_page),
    ]
