"""Raw SQL that names a table across a crossdb relation raises, instead of a database error."""

import pytest
from django.db.models.expressions import RawSQL

from crossdb import CrossDatabaseQueryError
from tests.blog.models import Post
from tests.query_helpers import TWIN_MODEL, build_world

pytestmark = pytest.mark.django_db(databases="__all__")

NAMES = "names the table 'auth_user', reached across the crossdb relation blog.Post.author"


def test_raw_order_by_naming_the_target_table_raises_naming_the_relation():
    build_world()
    twin = (
        TWIN_MODEL[Post]
        .objects.values("author__username")
        .order_by(RawSQL("auth_user.username", ()), "id")
    )
    assert list(twin)  # inside one database Django's JOIN brings auth_user
    crossing = Post.objects.values("author__username").order_by(
        RawSQL("auth_user.username", ()), "id"
    )
    with pytest.raises(CrossDatabaseQueryError, match=NAMES):
        list(crossing)


def test_extra_where_and_select_naming_the_target_table_raise():
    build_world()
    where = Post.objects.filter(author__username="ann").extra(where=["auth_user.is_staff = 1"])
    with pytest.raises(CrossDatabaseQueryError, match=NAMES):
        list(where)
    select = Post.objects.filter(author__username="ann").extra(select={"n": '"auth_user"."id"'})
    with pytest.raises(CrossDatabaseQueryError, match=NAMES):
        list(select)


def test_raw_sql_on_the_queries_own_tables_runs_as_written():
    build_world()
    titles = Post.objects.order_by(RawSQL("blog_post.title", ())).values_list("title", flat=True)
    assert list(titles) == sorted(Post.objects.values_list("title", flat=True))
    # A subquery selecting FROM the table is left to the alias it runs on.
    counted = Post.objects.extra(
        select={"n": "SELECT COUNT(*) FROM blog_post WHERE blog_post.id > 0"}
    )
    assert {p.n for p in counted} == {Post.objects.count()}
