"""order_by() and values() across a multi-valued relation: a row per related row, as Django."""

from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db.models import Count, F, Q
from django.test import override_settings

from crossdb import CrossDatabaseLimitError
from tests.blog.models import Post
from tests.query_helpers import build_world
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


def twin_names(*names):
    return [name.replace("blog_posts", "twin_posts") for name in names]


def same_rows(make):
    """Compare ``make(relation)`` for blog_posts (crossdb) and twin_posts (plain ForeignKey)."""
    got = make("blog_posts")
    expected = make("twin_posts")
    rows = [
        {key.replace("twin_posts", "blog_posts"): value for key, value in row.items()}
        if isinstance(row, dict)
        else row
        for row in expected
    ]
    assert list(got) == rows
    return list(got)


ORDERINGS = {
    "ascending": lambda r: (f"{r}__score", "pk"),
    "descending": lambda r: (f"-{r}__score", "pk"),
    "a string": lambda r: (f"{r}__title", "pk"),
    "a date": lambda r: (f"-{r}__published", f"{r}__title", "pk"),
    "the related row": lambda r: (r, "pk"),
}


@pytest.mark.parametrize("name", sorted(ORDERINGS))
def test_order_by_gives_a_row_per_related_row(name):
    build_world()
    same_rows(lambda r: [u.username for u in User.objects.order_by(*ORDERINGS[name](r))])
    # Users without posts come once, where NULLs sort on this database.
    same_rows(lambda r: User.objects.order_by(*ORDERINGS[name](r)).values_list("username"))


def test_nulls_first_and_last_and_slices():
    build_world()
    same_rows(
        lambda r: [
            u.username for u in User.objects.order_by(F(f"{r}__score").desc(nulls_last=True), "pk")
        ]
    )
    same_rows(
        lambda r: [
            u.username
            for u in User.objects.order_by(F(f"{r}__score").asc(nulls_first=True), "pk")[1:5]
        ]
    )


VALUES = {
    "values": lambda r: User.objects.values("username", f"{r}__title").order_by(
        "pk", f"{r}__title"
    ),
    "values_list": lambda r: User.objects.values_list(f"{r}__score", "username").order_by(
        "pk", f"{r}__score"
    ),
    "flat": lambda r: User.objects.values_list(f"{r}__title", flat=True).order_by(
        f"{r}__title", "pk"
    ),
    "after a filter on the relation: its rows": lambda r: (
        User.objects.filter(**{f"{r}__score__gte": 3})
        .values("username", f"{r}__title")
        .order_by("pk", f"{r}__title")
    ),
    "after an ORed filter: every row": lambda r: (
        User.objects.filter(Q(**{f"{r}__score": 5}) | Q(username="cat"))
        .values_list("username", f"{r}__title")
        .order_by("pk", f"{r}__title")
    ),
    "after exclude(): every row": lambda r: (
        User.objects.exclude(**{f"{r}__score": 5})
        .values_list("username", f"{r}__title")
        .order_by("pk", f"{r}__title")
    ),
    "distinct": lambda r: (
        User.objects.values_list(f"{r}__published", flat=True)
        .distinct()
        .order_by(f"{r}__published")
    ),
    "grouped": lambda r: (
        User.objects.values(f"{r}__published").annotate(n=Count("id")).order_by(f"{r}__published")
    ),
    "with a local filter": lambda r: (
        User.objects.filter(username__in=["ann", "eve"])
        .values_list("username", f"{r}__title")
        .order_by("pk", f"{r}__title")
    ),
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_give_a_row_per_related_row(name):
    build_world()
    same_rows(VALUES[name])
    assert VALUES[name]("blog_posts").count() == VALUES[name]("twin_posts").count()


def test_the_related_rows_key():
    build_world()

    def rows(relation, model):
        titles = dict(model.objects.values_list("pk", "title"))
        queryset = User.objects.values_list("username", f"{relation}__id").order_by("pk", relation)
        return [(username, titles.get(pk)) for username, pk in queryset]

    assert rows("blog_posts", Post) == rows("twin_posts", TwinPost)


def test_strings_order_as_the_far_database_orders_and_keep_their_spelling():
    users = [User.objects.create(username=name) for name in ("u1", "u2", "u3")]
    titles = [(0, "b"), (0, "B"), (1, "a"), (1, "b "), (2, "Ab"), (2, "ab")]
    for index, title in titles:
        Post.objects.create(title=title, author=users[index])
    # Each row's own title, in the order the far database sorts titles
    # (its collation), whatever the local database's.
    got = list(
        User.objects.filter(pk__in=[u.pk for u in users])
        .order_by("blog_posts__title")
        .values_list("blog_posts__title", flat=True)
    )
    assert sorted(got) == sorted(title for _i, title in titles)

    def rank(titles_in_order):
        # As the far database compares: titles it holds equal share a rank.
        return [Post.objects.filter(title__lt=title).count() for title in titles_in_order]

    assert rank(got) == sorted(rank(got))


def test_one_far_query_reuses_the_filters_join(queries):
    build_world()
    with queries() as q:
        rows = list(
            User.objects.filter(blog_posts__score__gte=3)
            .order_by("blog_posts__score")
            .values_list("username", "blog_posts__title")
        )
    assert rows == [("ann", "alpha"), ("ann", "beta"), ("bob", "gamma"), ("cat", "alpha2")]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert "auth_user" not in q.sql("blog_db")[0]
    with queries() as q:
        list(User.objects.order_by("blog_posts__title"))
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}


def test_the_far_rows_are_bounded_by_max_ids():
    build_world()
    with override_settings(CROSSDB_MAX_IDS=3):
        with pytest.raises(CrossDatabaseLimitError, match="CROSSDB_MAX_IDS=3"):
            list(User.objects.order_by("blog_posts__title"))
        # Only the far rows of the local query's keys are read.
        assert list(
            User.objects.filter(username="ann")
            .order_by("blog_posts__title")
            .values_list("blog_posts__title", flat=True)
        ) == ["alpha", "beta"]


def test_ordering_by_the_relation_follows_the_related_models_meta_ordering():
    build_world()
    ordering = ["-score", "title"]
    with (
        mock.patch.object(Post._meta, "ordering", ordering),
        mock.patch.object(TwinPost._meta, "ordering", ordering),
    ):
        same_rows(lambda r: [u.username for u in User.objects.order_by(r, "pk")])
        same_rows(lambda r: [u.username for u in User.objects.order_by(f"-{r}", "pk")])
