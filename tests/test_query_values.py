"""values() / values_list() with fields across a single-valued crossdb relation."""

import pytest
from django.contrib.auth.models import User
from django.db.models import Count

from crossdb import CrossDatabaseQueryError
from tests.blog.models import Comment, Post
from tests.query_helpers import TWIN_MODEL, build_world
from tests.shop.models import Badge
from tests.twin.models import TwinComment, TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


def test_values_match_the_twin_with_one_query_per_alias(queries, stale_users):
    build_world()
    stale_users()
    fields = ("title", "author__username", "editor__email", "author__shop_profile__nickname")
    twin_fields = (*fields[:3], "author__twin_profile__nickname")
    with queries() as q:
        got = list(Post.objects.values(*fields))
    expected = list(TwinPost.objects.values(*twin_fields))
    assert [tuple(row.values()) for row in got] == [tuple(row.values()) for row in expected]
    assert list(got[0]) == list(fields)
    # Authors and editors together on default, then their profiles on shop_db.
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 1}
    assert "auth_user" not in " ".join(q.sql("blog_db"))


def test_values_list_shapes():
    build_world()
    flat = list(Post.objects.values_list("author__username", flat=True))
    assert flat == list(TwinPost.objects.values_list("author__username", flat=True))
    rows = list(Comment.objects.values_list("text", "post__author__username", "author__email"))
    twin = list(TwinComment.objects.values_list("text", "post__author__username", "author__email"))
    assert rows == twin
    named = Comment.objects.values_list("text", "author__username", named=True).first()
    assert (named.text, named.author__username) == ("nice", "bob")
    users = list(User.objects.order_by("pk").values_list("username", "shop_profile__nickname"))
    twin_users = User.objects.order_by("pk").values_list("username", "twin_profile__nickname")
    assert users == list(twin_users)
    assert Post.objects.values("author__username").count() == 6
    assert list(Post.objects.filter(author__username="cat").values_list("editor__username")) == [
        (None,),
        ("dan",),
    ]


def test_values_with_annotations_and_filters():
    build_world()
    rows = Post.objects.filter(editor__isnull=False).values("title", "author__username")
    assert [row["author__username"] for row in rows] == ["ann", "bob", "bob", "cat"]
    from django.db.models.functions import Upper

    upper = Post.objects.values("author__username", loud=Upper("title"))
    assert list(upper)[0] == {"author__username": "ann", "loud": "ALPHA"}


def test_iterator_reads_the_far_side_per_chunk(queries):
    build_world()
    with queries() as q:
        got = list(Post.objects.values_list("author__username", flat=True).iterator(chunk_size=4))
    assert got == ["ann", "ann", "bob", "cat", "bob", "cat"]
    assert q.count("default") == 2


def test_a_values_queryset_across_as_a_filter_value():
    build_world()
    usernames = Post.objects.filter(score=5).values_list("author__username", flat=True)
    assert [badge.label for badge in Badge.objects.filter(user__in=usernames)] == ["gold", "silver"]


def test_a_dangling_key_reads_as_none():
    build_world()
    Post.objects.filter(title="delta").update(author_id=10**6)
    row = Post.objects.values("title", "author__username").get(title="delta")
    assert row == {"title": "delta", "author__username": None}


@pytest.mark.parametrize(
    "make",
    [
        # values("blog_posts__title") is answered (tests/test_query_per_row.py);
        # crossing again from the far model is not.
        lambda: User.objects.values("blog_posts__mentions__text"),
        lambda: Post.objects.values("author__blog_comments__text"),
        lambda: Post.objects.values("author__username").distinct(),
        lambda: Post.objects.distinct().values("author__username"),
        # values("author__is_staff").annotate(...) groups by the far values
        # (tests/test_aggregates_forward.py); an annotate() before values() does not.
        lambda: Post.objects.annotate(n=Count("id")).values("author__is_staff"),
    ],
    ids=["reverse", "forward-then-reverse", "distinct-after", "distinct-before", "grouped-first"],
)
def test_what_would_change_the_answer_raises(make):
    build_world()
    with pytest.raises(CrossDatabaseQueryError) as error:
        list(make())
    assert "values(" in str(error.value)
    assert "prefetch_related" in str(error.value)


@pytest.mark.parametrize(
    "shape",
    [
        lambda qs: qs.values("title", "author__username"),
        lambda qs: qs.values_list("title", "author__username"),
        lambda qs: qs.values_list("author__username", flat=True),
        lambda qs: qs.values_list("title", "author__username", named=True),
    ],
    ids=["dict", "tuple", "flat", "named"],
)
def test_a_values_queryset_across_pickles_like_the_twin(shape):
    import pickle

    build_world()
    queryset = shape(Post.objects.order_by("id"))
    twin = shape(TWIN_MODEL[Post].objects.order_by("id"))
    assert list(pickle.loads(pickle.dumps(queryset))) == list(twin)
    unevaluated = pickle.loads(pickle.dumps(shape(Post.objects.order_by("id")).all()))
    assert list(unevaluated) == list(twin)
