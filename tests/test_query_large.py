"""Large id sets across databases: one query per alias, bounded memory, CROSSDB_MAX_IDS."""

import tracemalloc

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from crossdb import CrossDatabaseLimitError
from tests.blog.models import Post

pytestmark = pytest.mark.django_db(databases="__all__")

MANY = 100_000


@pytest.fixture
def many_users():
    # Raw executemany: the ORM's bulk_create builds 100k model instances first.
    connection = connections["default"]
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    columns = (
        "password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined"
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO auth_user ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [("", False, f"u{number:06d}", "", "", "", False, True, now) for number in range(MANY)],
        )
    authors = list(User.objects.order_by("pk").values_list("pk", flat=True)[:: MANY // 100])
    Post.objects.bulk_create(Post(title=str(pk), author_id=pk) for pk in authors)
    return authors


def test_a_far_side_of_100k_rows(many_users, queries):
    """One query per alias, bounded memory, and the CROSSDB_MAX_IDS cap (one set of rows)."""
    tracemalloc.start()
    try:
        with queries() as q:
            count = Post.objects.filter(author__username__startswith="u").count()
            titles = list(
                Post.objects.filter(
                    author__email="", title__in=["x", str(many_users[3])]
                ).values_list("title", flat=True)
            )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(many_users) == 100
    assert titles == [str(many_users[3])]
    assert q.counts() == {"default": 2, "blog_db": 2, "shop_db": 0}
    # The ids travel as one parameter (PostgreSQL, SQLite) or one literal
    # list (MySQL), and what crossdb holds in memory is the id list.
    assert peak < 80 * 1024 * 1024

    # The reverse direction: the local side is the large one.
    assert User.objects.filter(blog_posts__isnull=False).count() == 100
    assert User.objects.filter(blog_posts__isnull=True).count() == MANY - 100

    # CROSSDB_MAX_IDS caps what is carried between databases.
    with override_settings(CROSSDB_MAX_IDS=1000):
        with pytest.raises(CrossDatabaseLimitError) as error:
            Post.objects.filter(author__username__startswith="u").count()
        assert "CROSSDB_MAX_IDS=1000" in str(error.value)
        assert "blog.Post.author__username__startswith" in str(error.value)
        # Under the cap it works.
        assert Post.objects.filter(author__username="u000000").count() == 1
    with override_settings(CROSSDB_MAX_IDS=MANY):
        assert Post.objects.filter(author__username__startswith="u").count() == 100
