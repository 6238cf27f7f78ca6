"""What cannot be answered across databases raises a clear NotSupportedError."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import FieldError
from django.db import NotSupportedError
from django.db.models import Case, Count, Exists, F, Max, OuterRef, Q, Subquery, When

from crossdb import CrossDatabaseQueryError
from tests.blog.models import Comment, Post
from tests.query_helpers import TWIN_MODEL, build_world

pytestmark = pytest.mark.django_db(databases="__all__")

CASES = {
    "order_by": lambda: Post.objects.order_by("author__blog_comments__text"),
    "earliest": lambda: Post.objects.earliest("author__date_joined"),
    # order_by("-blog_posts__score") is answered (tests/test_query_per_row.py);
    # crossing again from the far model is not.
    "order_by_reverse": lambda: User.objects.order_by("-blog_posts__mentions__text"),
    "annotate_count": lambda: Post.objects.annotate(n=Count("author__blog_comments")),
    "annotate_f": lambda: Post.objects.annotate(name=F("author__username")),
    "filter_f": lambda: Comment.objects.filter(text=F("post__author__username")),
    # Max("author__last_login") is answered (tests/test_aggregates_forward.py); forward
    # then to many rows is not.
    "aggregate": lambda: Post.objects.aggregate(Max("author__blog_comments__text")),
    "update_f": lambda: Post.objects.update(title=F("author__username")),
    "exists": lambda: Post.objects.filter(
        Exists(User.objects.filter(username=OuterRef("title"), is_staff=True))
    ),
    "subquery": lambda: Post.objects.annotate(
        name=Subquery(User.objects.filter(pk=OuterRef("author_id")).values("username")[:1])
    ),
    "subquery_in": lambda: User.objects.filter(pk__in=Subquery(Post.objects.values("author_id"))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_raises_naming_the_model_the_path_and_the_alternative(name, stale_users):
    build_world()
    stale_users()
    with pytest.raises(CrossDatabaseQueryError) as error:
        result = CASES[name]()
        if hasattr(result, "query"):
            list(result)
    message = str(error.value)
    assert isinstance(error.value, NotSupportedError)
    assert any(label in message for label in ("blog.Post", "auth.User", "blog.Comment"))
    assert "database" in message
    assert any(hint in message for hint in ("prefetch_related", "lookup", "evaluate"))


def test_the_message_names_the_path():
    with pytest.raises(
        CrossDatabaseQueryError, match=r"'blog_posts__mentions__text'.*auth\.User\.blog_posts"
    ):
        User.objects.order_by("blog_posts__mentions__text")


def test_ordering_and_annotating_on_the_local_key_stay_allowed():
    build_world()
    assert Post.objects.order_by("author", "-id").first().title == "beta"
    assert Post.objects.order_by("author__id").first().author.username == "ann"
    counts = Post.objects.values("author").annotate(n=Count("id")).order_by("author")
    assert [row["n"] for row in counts] == [2, 2, 2]
    assert Post.objects.aggregate(n=Count("author", distinct=True)) == {"n": 3}


def test_same_database_subqueries_stay_allowed():
    build_world()
    titles = Post.objects.filter(title__startswith="alpha")
    assert Comment.objects.filter(post__in=titles).count() == 3
    latest = Post.objects.filter(pk=OuterRef("post_id")).values("title")[:1]
    assert Comment.objects.annotate(title=Subquery(latest)).first().title == "alpha"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Post.objects.aggregate(n=Count("id", filter=Q(mentions__text__startswith="m-"))),
        lambda: list(User.objects.annotate(top=Case(When(blog_posts__score=5, then=1), default=0))),
        lambda: list(User.objects.annotate(n=Count("pk", filter=Q(blog_posts__score__gte=0)))),
    ],
    ids=["count_filter", "case_when", "annotate_count_filter"],
)
def test_a_q_expression_across_a_multi_valued_relation_raises(build):
    build_world()
    with pytest.raises(CrossDatabaseQueryError, match="multi-valued relation"):
        build()


def test_a_q_expression_across_a_single_valued_relation_matches_the_twin():
    build_world()
    got = Post.objects.aggregate(n=Count("id", filter=Q(author__is_staff=True)))
    twin = TWIN_MODEL[Post].objects.aggregate(n=Count("id", filter=Q(author__is_staff=True)))
    assert got == twin
    assert got["n"]


def test_a_key_whose_target_pk_is_a_relation_stays_local():
    from django.db import models
    from django.test.utils import isolate_apps

    from crossdb import CrossDatabaseForeignKey

    with isolate_apps("tests.tooling"):

        class Place(models.Model):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "left"

        class Restaurant(models.Model):
            place = models.OneToOneField(Place, models.CASCADE, primary_key=True)

            class Meta:
                app_label = "left"

        class Reservation(models.Model):
            restaurant = CrossDatabaseForeignKey(Restaurant, models.CASCADE, related_name="+")

            class Meta:
                app_label = "right"

        for lookup in ("restaurant__place", "restaurant__place__id", "restaurant__pk"):
            sql = str(Reservation.objects.filter(**{lookup: 1}).query)
            assert "JOIN" not in sql
            assert "restaurant_id" in sql


def test_update_from_an_annotation_across_is_djangos_joined_reference_refusal():
    build_world()
    twin = TWIN_MODEL[Post]
    message = "Joined field references are not permitted in this query"
    with pytest.raises(FieldError, match=message):
        twin.objects.annotate(m=Max("author__username")).update(title=F("m"))
    with pytest.raises(FieldError, match=message):
        Post.objects.annotate(m=Max("author__username")).update(title=F("m"))
    with pytest.raises(FieldError, match=message):
        User.objects.annotate(n=Count("blog_posts")).update(first_name=F("n"))
    assert set(Post.objects.values_list("title", flat=True)) == set(
        twin.objects.values_list("title", flat=True)
    )
