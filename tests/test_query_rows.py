"""A filter across a multi-valued relation: a row per matching related row, as Django's JOIN."""

import pickle
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db.models import Avg, Count, Max, Q, Sum
from django.test import override_settings

from crossdb import CrossDatabaseLimitError
from tests.blog.models import Post
from tests.query_helpers import build_world
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


def names(queryset):
    return [user.username for user in queryset]


# Each pair: the crossdb relation's queryset and the twin's (plain ForeignKey, one database).
PAIRS = {
    "matching rows": lambda: (
        User.objects.filter(blog_posts__score__gte=1),
        User.objects.filter(twin_posts__score__gte=1),
    ),
    "one call, one row": lambda: (
        User.objects.filter(blog_posts__published=True, blog_posts__score__gte=3),
        User.objects.filter(twin_posts__published=True, twin_posts__score__gte=3),
    ),
    "chained calls multiply": lambda: (
        User.objects.filter(blog_posts__published=True).filter(blog_posts__score__gte=1),
        User.objects.filter(twin_posts__published=True).filter(twin_posts__score__gte=1),
    ),
    "ORed with a local column": lambda: (
        User.objects.filter(Q(blog_posts__score=5) | Q(username="cat")),
        User.objects.filter(Q(twin_posts__score=5) | Q(username="cat")),
    ),
    "ORed, shared join": lambda: (
        User.objects.filter(
            Q(blog_posts__title__startswith="a")
            | Q(username="bob", blog_posts__title__startswith="g")
        ),
        User.objects.filter(
            Q(twin_posts__title__startswith="a")
            | Q(username="bob", twin_posts__title__startswith="g")
        ),
    ),
    "ORed, no related row": lambda: (
        User.objects.filter(Q(blog_posts__isnull=True) | Q(blog_posts__score=5)),
        User.objects.filter(Q(twin_posts__isnull=True) | Q(twin_posts__score=5)),
    ),
    "no related row": lambda: (
        User.objects.filter(blog_posts__title__isnull=True),
        User.objects.filter(twin_posts__title__isnull=True),
    ),
    "isnull=False": lambda: (
        User.objects.filter(blog_posts__isnull=False),
        User.objects.filter(twin_posts__isnull=False),
    ),
    "negated: a subquery, no rows multiplied": lambda: (
        User.objects.exclude(blog_posts__score=5),
        User.objects.exclude(twin_posts__score=5),
    ),
    "combined with |": lambda: (
        User.objects.filter(blog_posts__score=5) | User.objects.filter(username="cat"),
        User.objects.filter(twin_posts__score=5) | User.objects.filter(username="cat"),
    ),
    "combined with |, no related row": lambda: (
        User.objects.filter(blog_posts__title__isnull=True) | User.objects.filter(is_staff=True),
        User.objects.filter(twin_posts__title__isnull=True) | User.objects.filter(is_staff=True),
    ),
    "combined with &": lambda: (
        User.objects.filter(blog_posts__score__gte=1) & User.objects.filter(blog_posts__score=5),
        User.objects.filter(twin_posts__score__gte=1) & User.objects.filter(twin_posts__score=5),
    ),
    "two relations": lambda: (
        User.objects.filter(blog_posts__score__gte=0, edited_posts__score__gte=0),
        User.objects.filter(twin_posts__score__gte=0, twin_edited_posts__score__gte=0),
    ),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_rows_count_and_distinct_match_the_twin(name):
    build_world()
    crossdb, twin = PAIRS[name]()
    assert names(crossdb.order_by("pk")) == names(twin.order_by("pk"))
    assert crossdb.count() == twin.count()
    assert crossdb.exists() == twin.exists()
    assert names(crossdb.distinct().order_by("pk")) == names(twin.distinct().order_by("pk"))
    assert crossdb.distinct().count() == twin.distinct().count()
    assert list(crossdb.order_by("pk").values_list("username", flat=True)[1:4]) == list(
        twin.order_by("pk").values_list("username", flat=True)[1:4]
    )


def test_the_rows_are_multiplied_and_distinct_collapses_them():
    build_world()
    # ann wrote alpha (3) and beta (5), bob gamma (5), cat delta (1) and alpha2 (7).
    users = User.objects.filter(blog_posts__score__gte=1).order_by("pk")
    assert names(users) == ["ann", "ann", "bob", "cat", "cat"]
    assert users.count() == 5
    assert names(users.distinct()) == ["ann", "bob", "cat"]


def test_one_far_query_per_filter_call(queries):
    build_world()
    with queries() as q:
        rows = list(User.objects.filter(blog_posts__score__gte=1, blog_posts__published=True))
    assert sorted(user.username for user in rows) == ["ann", "bob", "cat", "cat"]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert "auth_user" not in q.sql("blog_db")[0]
    assert "blog_post" not in q.sql("default")[0]
    with queries() as q:
        rows = list(User.objects.filter(blog_posts__published=True).filter(blog_posts__score=5))
    assert q.counts() == {"default": 1, "blog_db": 2, "shop_db": 0}
    with queries() as q:
        # One join for both conditions of the call: one far query.
        rows = list(User.objects.filter(Q(blog_posts__score=5) | Q(blog_posts__title="delta")))
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}


def test_update_and_delete_touch_each_row_once():
    world = build_world()
    twin_count = User.objects.filter(twin_posts__score__gte=1).update(first_name="X")
    assert User.objects.filter(blog_posts__score__gte=1).update(first_name="Y") == twin_count
    assert sorted(User.objects.filter(first_name="Y").values_list("username", flat=True)) == [
        "ann",
        "bob",
        "cat",
    ]
    deleted, _ = Post.objects.filter(mentions__text__startswith="m").delete()
    twin_deleted, _ = TwinPost.objects.filter(mentions__text__startswith="m").delete()
    assert deleted == twin_deleted
    assert not Post.objects.filter(pk__in=[world.posts["alpha"].pk, world.posts["gamma"].pk])
    assert Post.objects.count() == 4


def test_many_far_rows_go_through_an_indexed_table():
    # Past a few hundred rows SQLite and MySQL/MariaDB read the keys from a
    # temporary table; a key repeats there once per far row.
    users = [User.objects.create(username=f"u{i}") for i in range(3)]
    for i in range(700):
        author = users[i % 3]
        Post.objects.create(title=f"p{i}", score=i % 7, author=author)
        TwinPost.objects.create(title=f"p{i}", score=i % 7, author=author)
    crossdb = User.objects.filter(blog_posts__score__gte=2)
    twin = User.objects.filter(twin_posts__score__gte=2)
    assert crossdb.count() == twin.count() == 500
    assert names(crossdb.order_by("pk")) == names(twin.order_by("pk"))
    ored = User.objects.filter(Q(blog_posts__score=6) | Q(username="u0"))
    twin_ored = User.objects.filter(Q(twin_posts__score=6) | Q(username="u0"))
    assert ored.count() == twin_ored.count()


def test_the_far_rows_are_bounded_by_max_ids():
    build_world()
    with override_settings(CROSSDB_MAX_IDS=3):
        with pytest.raises(CrossDatabaseLimitError, match="CROSSDB_MAX_IDS=3"):
            list(User.objects.filter(blog_posts__score__gte=0))
        with pytest.raises(CrossDatabaseLimitError, match="CROSSDB_MAX_IDS=3"):
            list(User.objects.filter(Q(blog_posts__score=5) | Q(username="eve")))
        assert names(User.objects.filter(blog_posts__score=5).order_by("pk")) == ["ann", "bob"]


def test_a_pickled_query_reads_the_far_rows_where_it_runs():
    build_world()
    for queryset in (
        User.objects.filter(blog_posts__score__gte=1),
        User.objects.filter(Q(blog_posts__score=5) | Q(username="cat")),
    ):
        expected = names(queryset.order_by("pk"))
        restored = User.objects.all()
        restored.query = pickle.loads(pickle.dumps(queryset.order_by("pk").query))
        assert names(restored) == expected


def test_the_query_text_and_lazy_querysets():
    build_world()
    queryset = User.objects.filter(blog_posts__score__gte=1)
    assert "crossdb_far" in str(queryset.query)
    Post.objects.create(title="new", score=9, author=User.objects.get(username="eve"))
    # Read when evaluated, not when built.
    assert names(queryset.order_by("pk")).count("eve") == 1


def test_joined_rows_meet_grouping_and_aggregates_across():
    build_world()
    mentioned = Post.objects.filter(mentions__text__startswith="m")
    twin_mentioned = TwinPost.objects.filter(mentions__text__startswith="m")
    by_author = mentioned.values("author__username").annotate(n=Count("id"))
    twin_by_author = twin_mentioned.values("author__username").annotate(n=Count("id"))
    assert list(by_author.order_by("author__username")) == list(
        twin_by_author.order_by("author__username")
    )
    summary = {"last": Max("author__username"), "rows": Count("id")}
    assert mentioned.aggregate(**summary) == twin_mentioned.aggregate(**summary)
    # A join of far rows beside an aggregate across another relation.
    users = User.objects.filter(blog_posts__score__gte=1).annotate(n=Count("shop_profile"))
    twin = User.objects.filter(twin_posts__score__gte=1).annotate(n=Count("shop_profile"))
    assert list(users.order_by("pk").values_list("username", "n")) == list(
        twin.order_by("pk").values_list("username", "n")
    )


AGGREGATED = {
    "filter then Count": lambda r: User.objects.filter(**{f"{r}__score__gte": 3}).annotate(
        n=Count(r)
    ),
    "filter then Sum and Avg": lambda r: User.objects.filter(**{f"{r}__published": True}).annotate(
        total=Sum(f"{r}__score"), mean=Avg(f"{r}__score"), top=Max(f"{r}__score")
    ),
    "filter then Count distinct": lambda r: User.objects.filter(**{f"{r}__score__gte": 0}).annotate(
        n=Count(r, distinct=True)
    ),
    "ORed filter then Count": lambda r: User.objects.filter(
        Q(**{f"{r}__score": 5}) | Q(username="cat")
    ).annotate(n=Count(r)),
    "annotate then filter: multiplied": lambda r: User.objects.annotate(n=Count(r)).filter(
        **{f"{r}__published": True}
    ),
    "filter then Count, HAVING and order": lambda r: (
        User.objects.filter(**{f"{r}__score__gte": 1})
        .annotate(n=Count(r))
        .filter(n__gt=1)
        .order_by("-n", "pk")
    ),
}


@pytest.mark.parametrize("name", sorted(AGGREGATED))
def test_aggregates_beside_a_filter_across_the_same_relation_match_the_twin(name):
    build_world()

    def rows(relation):
        queryset = AGGREGATED[name](relation).order_by("pk")
        annotations = sorted(queryset.query.annotations)
        return [
            (user.username, *(_rounded(getattr(user, a)) for a in annotations)) for user in queryset
        ]

    assert rows("blog_posts") == rows("twin_posts")


def test_aggregate_over_the_rows_a_filter_joined():
    build_world()
    crossdb = User.objects.filter(blog_posts__published=True).aggregate(n=Count("blog_posts"))
    twin = User.objects.filter(twin_posts__published=True).aggregate(n=Count("twin_posts"))
    assert crossdb == twin


def _rounded(value):
    return round(float(value), 3) if isinstance(value, float | Decimal) else value
