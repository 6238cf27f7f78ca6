"""Exists() and ~Exists() correlated through a crossdb key, against the plain-ForeignKey twin."""

import pytest
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q

from crossdb import CrossDatabaseQueryError
from tests.blog.models import Post
from tests.query_helpers import build_world, natural
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


def _users(post_model, negated, **conditions):
    exists = Exists(post_model.objects.filter(author=OuterRef("pk"), **conditions))
    return ~exists if negated else exists


REVERSE = {
    "any": {},
    "published": {"published": True},
    "score": {"score__gte": 5},
    "none": {"title": "no such title"},
}


@pytest.mark.parametrize("negated", [False, True], ids=["exists", "not_exists"])
@pytest.mark.parametrize("name", sorted(REVERSE))
def test_reverse_exists_matches_the_twin(name, negated, stale_users):
    build_world()
    stale_users()
    conditions = REVERSE[name]
    got = User.objects.filter(_users(Post, negated, **conditions)).order_by("username")
    twin = User.objects.filter(_users(TwinPost, negated, **conditions)).order_by("username")
    assert natural(got) == natural(twin)
    excluded = User.objects.exclude(_users(Post, negated, **conditions)).order_by("username")
    assert natural(excluded) == natural(
        User.objects.exclude(_users(TwinPost, negated, **conditions)).order_by("username")
    )
    annotated = User.objects.annotate(has=_users(Post, negated, **conditions)).order_by("username")
    twin_annotated = User.objects.annotate(has=_users(TwinPost, negated, **conditions))
    assert [(u.username, bool(u.has)) for u in annotated] == [
        (u.username, bool(u.has)) for u in twin_annotated.order_by("username")
    ]


@pytest.mark.parametrize("negated", [False, True], ids=["exists", "not_exists"])
@pytest.mark.parametrize("column", ["author_id", "editor_id", "editor"])
def test_forward_exists_matches_the_twin(column, negated, stale_users):
    build_world()
    stale_users()

    def build(model):
        exists = Exists(User.objects.filter(pk=OuterRef(column), is_staff=False))
        return model.objects.filter(~exists if negated else exists).order_by("title")

    assert natural(build(Post)) == natural(build(TwinPost))
    assert natural(build(Post))


def test_one_far_query_and_the_subquery_stays_lazy(queries):
    build_world()
    queryset = User.objects.filter(Exists(Post.objects.filter(author=OuterRef("pk"))))
    with queries() as q:
        assert queryset.count() == 3
    assert q.counts()["blog_db"] == 1
    assert q.counts()["default"] == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: User.objects.filter(Exists(Post.objects.filter(score__gt=OuterRef("id")))),
        lambda: User.objects.filter(
            Exists(Post.objects.filter(author=OuterRef("pk"), editor=OuterRef("pk")))
        ),
        lambda: User.objects.filter(
            Exists(Post.objects.filter(Q(author=OuterRef("pk")) | Q(score=1)))
        ),
    ],
    ids=["not_an_equality", "two_outer_refs", "under_or"],
)
def test_other_correlations_keep_raising(build):
    build_world()
    with pytest.raises(CrossDatabaseQueryError, match="subquery"):
        list(build())
