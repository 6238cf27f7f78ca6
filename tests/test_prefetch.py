"""Prefetching across databases: one query per alias per level, whatever the number of rows."""

import pytest
from django.contrib.auth.models import User
from django.db.models import Prefetch

from tests.blog.models import Comment, Post
from tests.shop.models import Badge, Mention, Profile
from tests.twin.models import TwinComment, TwinPost, TwinProfile

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def rows(stale_users):
    """Three users, posts (one without editor), comments, profiles; twins hold the same."""
    users = [User.objects.create(username=name) for name in ("ann", "bob", "cid")]
    for i, (author, editor) in enumerate([(0, 1), (0, None), (1, 2), (2, 2), (1, None)]):
        for model, comment_model in ((Post, Comment), (TwinPost, TwinComment)):
            post = model.objects.create(
                title=f"p{i}",
                score=i,
                author=users[author],
                editor=users[editor] if editor is not None else None,
            )
            for j in range(i % 3):
                comment_model.objects.create(post=post, text=f"c{i}.{j}", author=users[j])
    for user in users[:2]:
        Profile.objects.create(user=user, nickname=f"nick-{user.username}")
        TwinProfile.objects.create(user=user, nickname=f"nick-{user.username}")
    stale_users()
    return users


def _posts_view(posts):
    return [(p.title, p.author.username, p.editor.username if p.editor else None) for p in posts]


def test_prefetch_forward_is_one_query_per_alias_and_matches_the_twin(any_router, rows, queries):
    with queries() as q:
        posts = list(Post.objects.prefetch_related("author", "editor"))
        view = _posts_view(posts)
    assert q.counts() == {"default": 2, "blog_db": 1, "shop_db": 0}
    assert view == _posts_view(TwinPost.objects.prefetch_related("author", "editor"))


def test_prefetch_reverse_matches_the_twin(any_router, rows, queries):
    with queries() as q:
        users = list(User.objects.order_by("username").prefetch_related("blog_posts"))
        view = [(u.username, [p.title for p in u.blog_posts.all()]) for u in users]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    twin = [
        (u.username, [p.title for p in u.twin_posts.all()])
        for u in User.objects.order_by("username").prefetch_related("twin_posts")
    ]
    assert view == twin
    # The reverse prefetch fills the forward cache too.
    with queries() as q:
        assert all(p.author is u for u in users for p in u.blog_posts.all())
    assert sum(q.counts().values()) == 0


def test_prefetch_with_queryset_and_to_attr(any_router, rows, queries):
    with queries() as q:
        users = list(
            User.objects.order_by("username").prefetch_related(
                Prefetch(
                    "blog_posts",
                    queryset=Post.objects.filter(score__gte=2).order_by("-score"),
                    to_attr="best_posts",
                ),
                Prefetch("shop_profile"),
            )
        )
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 1}
    twin_users = User.objects.order_by("username").prefetch_related(
        Prefetch(
            "twin_posts",
            queryset=TwinPost.objects.filter(score__gte=2).order_by("-score"),
            to_attr="best_posts",
        )
    )
    assert [[p.title for p in u.best_posts] for u in users] == [
        [p.title for p in u.best_posts] for u in twin_users
    ]
    profiles = [getattr(u, "shop_profile", None) for u in users]
    assert [p.nickname if p else None for p in profiles] == ["nick-ann", "nick-bob", None]


def test_prefetch_forward_with_a_filtered_queryset(any_router, rows):
    posts = Post.objects.prefetch_related(
        Prefetch("author", queryset=User.objects.filter(username__in=["ann", "cid"]))
    )
    twins = TwinPost.objects.prefetch_related(
        Prefetch("author", queryset=User.objects.filter(username__in=["ann", "cid"]))
    )
    # A filtered-out author leaves nothing cached: both raise RelatedObjectDoesNotExist
    # (an AttributeError), so getattr() gives None for both.
    view = [getattr(getattr(p, "author", None), "username", None) for p in posts]
    assert view == [getattr(getattr(p, "author", None), "username", None) for p in twins]
    assert None in view and "ann" in view


def test_chains_through_same_database_relations(any_router, rows, queries):
    with queries() as q:
        users = list(User.objects.order_by("username").prefetch_related("blog_posts__comments"))
        view = [
            (
                u.username,
                [(p.title, [c.text for c in p.comments.all()]) for p in u.blog_posts.all()],
            )
            for u in users
        ]
    assert q.counts() == {"default": 1, "blog_db": 2, "shop_db": 0}
    twin = [
        (u.username, [(p.title, [c.text for c in p.comments.all()]) for p in u.twin_posts.all()])
        for u in User.objects.order_by("username").prefetch_related("twin_posts__comments")
    ]
    assert view == twin

    with queries() as q:
        comments = list(Comment.objects.prefetch_related("post__author", "author"))
        view = [(c.text, c.post.author.username, c.author.username) for c in comments]
    assert q.counts() == {"default": 2, "blog_db": 2, "shop_db": 0}
    twin = [
        (c.text, c.post.author.username, c.author.username)
        for c in TwinComment.objects.prefetch_related("post__author", "author")
    ]
    assert view == twin


def test_chains_across_three_aliases(any_router, rows, queries):
    for post in Post.objects.all():
        Mention.objects.create(post=post, text=f"m-{post.title}")
    with queries() as q:
        mentions = list(Mention.objects.prefetch_related("post__author__shop_profile"))
        view = [
            (m.text, m.post.author.username, getattr(m.post.author, "shop_profile", None))
            for m in mentions
        ]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 2}
    assert [(text, name) for text, name, _ in view] == [
        (f"m-{p.title}", p.author.username) for p in TwinPost.objects.all()
    ]


def test_prefetch_to_field_relation(any_router, rows, queries):
    for user in rows:
        Badge.objects.create(user=user, label=f"b-{user.username}")
    with queries() as q:
        view = [(b.label, b.user.pk) for b in Badge.objects.prefetch_related("user")]
        reverse = [
            [b.label for b in u.badges.all()]
            for u in User.objects.order_by("username").prefetch_related("badges")
        ]
    assert view == [(f"b-{u.username}", u.pk) for u in rows]
    assert reverse == [[f"b-{u.username}"] for u in rows]
    assert q.counts() == {"default": 2, "blog_db": 0, "shop_db": 2}


@pytest.mark.parametrize("count", [2500])
def test_prefetch_past_the_sqlite_expression_limit_is_still_one_query(count, queries):
    """Plain Django 5.2 fails here on SQLite ("Expression tree is too large")."""
    User.objects.bulk_create(User(username=f"u{i}") for i in range(count))
    names = dict(User.objects.values_list("pk", "username"))
    Post.objects.bulk_create(Post(title=f"t{pk}", author_id=pk) for pk in names)

    with queries() as q:
        posts = list(Post.objects.prefetch_related("author"))
        assert all(p.author.username == names[p.author_id] for p in posts)
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert len({p.author.pk for p in posts}) == count

    with queries() as q:
        users = list(User.objects.prefetch_related("blog_posts"))
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert sum(len(u.blog_posts.all()) for u in users) == count
