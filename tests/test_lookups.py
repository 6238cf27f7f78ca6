"""``crossdb.lookups``: an id set of any size is one query with one parameter."""

import pytest
from django.contrib.auth.models import User
from django.db import connections

from crossdb.lookups import ids_in
from tests.blog.models import Post
from tests.shop.models import Badge

pytestmark = pytest.mark.django_db(databases="__all__")

# SQLite refuses more than 32766 variables, and Django's default on SQLite is 999.
MANY = 100_000


def test_a_huge_id_set_is_one_query_on_every_backend(queries):
    User.objects.bulk_create(User(username=f"u{i}") for i in range(50))
    pks = list(User.objects.values_list("pk", flat=True))
    Post.objects.bulk_create(Post(title=str(pk), author_id=pk) for pk in pks)
    wanted = [*pks[:10], *range(10**9, 10**9 + MANY)]  # 10 real ids, 100k absent ones

    with queries("blog_db") as q:
        found = list(
            Post.objects.filter(ids_in("author_id", wanted)).values_list("title", flat=True)
        )
        related = Post.objects.filter(author__in=wanted).count()
    assert sorted(found) == sorted(str(pk) for pk in pks[:10])
    assert related == 10
    assert q.count("blog_db") == 2
    if connections["blog_db"].vendor in ("postgresql", "sqlite"):
        assert all(sql.count("%s") == 0 and len(sql) < 2_000_000 for sql in q.sql("blog_db"))


def test_empty_and_null_values_behave_like_in():
    user = User.objects.create(username="a")
    Post.objects.create(title="x", author=user)
    assert list(Post.objects.filter(ids_in("author_id", []))) == []
    assert list(Post.objects.filter(ids_in("author_id", [None]))) == []
    assert Post.objects.exclude(ids_in("author_id", [])).count() == 1
    assert Post.objects.filter(ids_in("author_id", [user.pk, None, user.pk])).count() == 1
    assert Post.objects.filter(author__in=[user, None]).count() == 1


def test_string_keys(queries):
    user = User.objects.create(username="o'brien")
    Badge.objects.create(user=user, label="x")
    assert Badge.objects.filter(ids_in("user_id", ["o'brien", "nobody"])).count() == 1
    assert Badge.objects.filter(user__in=[user]).count() == 1
    assert User.objects.filter(ids_in("username", ["o'brien"])).get() == user


def test_postgresql_sends_one_array_parameter():
    connection = connections["blog_db"]
    query = Post.objects.filter(ids_in("author_id", [1, 2, 3])).query
    sql, params = query.get_compiler(connection=connection).as_sql()
    if connection.vendor == "postgresql":
        assert "= ANY(%s::integer[])" in sql
        assert params == ([1, 2, 3],)
    elif connection.vendor == "sqlite":
        assert "IN (SELECT value FROM json_each(%s))" in sql
        assert params == ("[1, 2, 3]",)
    else:
        assert params == (1, 2, 3)
