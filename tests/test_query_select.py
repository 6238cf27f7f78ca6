"""select_related() across crossdb relations: carried out as a prefetch, one query per alias."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import FieldError

from tests.blog.models import Comment, Post
from tests.query_helpers import TWIN_MODEL, build_world
from tests.shop.models import Mention, Profile
from tests.twin.models import TwinComment, TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


def _authors(posts):
    return [
        (post.title, post.author.username, getattr(post.editor, "username", None)) for post in posts
    ]


def test_select_related_matches_the_twin_with_one_query_per_alias(queries, stale_users):
    build_world()
    stale_users()
    with queries() as q:
        posts = list(Post.objects.select_related("author", "editor"))
        got = _authors(posts)
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert "auth_user" not in " ".join(q.sql("blog_db"))
    twins = list(TwinPost.objects.select_related("author", "editor"))
    assert got == _authors(twins)
    assert all(not username.startswith("stale-") for _title, username, _editor in got)


def test_through_a_same_database_relation(queries, stale_users):
    build_world()
    stale_users()
    with queries() as q:
        comments = list(Comment.objects.select_related("post__author"))
        got = [(c.text, c.post.title, c.post.author.username) for c in comments]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    twins = TwinComment.objects.select_related("post__author")
    assert got == [(c.text, c.post.title, c.post.author.username) for c in twins]


def test_mixed_with_same_database_relations_and_across_three_databases(queries):
    build_world()
    with queries() as q:
        mentions = list(Mention.objects.select_related("post__author__shop_profile", "post"))
        got = [
            (m.text, m.post.title, m.post.author.username, m.post.author.shop_profile.nickname)
            for m in mentions
            if hasattr(m.post.author, "shop_profile")
        ]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 2}
    assert got == [
        ("m1", "alpha", "ann", "annie"),
        ("m3", "gamma", "bob", "bobby"),
        ("m3b", "gamma", "bob", "bobby"),
    ]


def test_reverse_one_to_one(queries):
    build_world()
    with queries() as q:
        users = list(User.objects.select_related("shop_profile").order_by("pk"))
        got = [(u.username, getattr(u, "shop_profile", None)) for u in users]
    assert q.counts() == {"default": 1, "blog_db": 0, "shop_db": 1}
    assert [(name, p.nickname if p else None) for name, p in got] == [
        ("ann", "annie"),
        ("bob", "bobby"),
        ("cat", None),
        ("dan", None),
        ("eve", None),
    ]
    twin = User.objects.select_related("twin_profile").order_by("pk")
    assert [getattr(u, "twin_profile", None) is None for u in twin] == [p is None for _n, p in got]


def test_select_related_without_arguments_never_joins_across(queries):
    build_world()
    with queries() as q:
        posts = list(Post.objects.select_related())
        authors = [post.author.username for post in posts]
    # The non-null key is prefetched; the nullable editor is not followed, as in Django.
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert authors == [post.author.username for post in TwinPost.objects.select_related()]
    with queries() as q:
        comments = list(Comment.objects.select_related())
        pairs = [(c.post.title, c.post.author.username) for c in comments]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}
    assert pairs == [(c.post.title, c.post.author.username) for c in TwinComment.objects.all()]
    assert Profile.objects.select_related().count() == 2


def test_select_related_none_drops_the_emulation(queries):
    build_world()
    queryset = Post.objects.prefetch_related("mentions").select_related("author")
    cleared = queryset.select_related(None)
    assert cleared._prefetch_related_lookups == ("mentions",)
    with queries() as q:
        list(cleared)
    assert q.counts() == {"default": 0, "blog_db": 1, "shop_db": 1}
    with queries() as q:
        posts = list(queryset)
        [post.mentions.all() for post in posts]
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 1}


def test_chained_select_related_calls_accumulate(queries):
    build_world()
    queryset = Comment.objects.select_related("post__author").select_related("author")
    queryset = queryset.select_related("post__author__shop_profile")
    with queries() as q:
        rows = [
            (c.text, c.post.author.username, getattr(c.author, "username", None)) for c in queryset
        ]
        for comment in queryset:
            getattr(comment.post.author, "shop_profile", None)
    assert rows[0] == ("nice", "ann", "bob")
    # blog_db, default and shop_db once each; comment and post authors are
    # read together.
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 1}


def test_get_first_and_iterator(queries):
    build_world()
    queryset = Post.objects.select_related("author")
    assert queryset.get(title="beta").author.username == "ann"
    assert queryset.first().author.username == "ann"
    with queries() as q:
        got = [post.author.username for post in queryset.iterator()]
    assert got == ["ann", "ann", "bob", "cat", "bob", "cat"]
    assert q.counts()["default"] == 1
    with queries() as q:
        chunked = [post.author.username for post in queryset.iterator(chunk_size=4)]
    assert chunked == got
    # A batch per chunk keeps memory bounded: two chunks, two reads of authors.
    assert q.counts()["default"] == 2
    with pytest.raises(TypeError, match="after .values"):
        Post.objects.values("title").select_related("author")
    assert list(queryset.values_list("title", flat=True))[:1] == ["alpha"]


def test_a_missing_related_row_is_left_unloaded_and_reported():
    world = build_world()
    Post.objects.filter(title="delta").update(author_id=10**6)
    posts = {post.title: post for post in Post.objects.select_related("author")}
    assert posts["alpha"].author == world.users["ann"]
    with pytest.raises(Post.author.RelatedObjectDoesNotExist, match="does not exist on"):
        posts["delta"].author


def test_the_compiler_refuses_a_join_across_even_if_asked_directly():
    from crossdb import CrossDatabaseQueryError

    build_world()
    queryset = Post.objects.all()
    queryset.query.add_select_related(["author"])
    with pytest.raises(CrossDatabaseQueryError, match=r"select_related\('author'\)"):
        list(queryset)


def test_admin_changelist_reads_authors_once_however_many_rows(client, queries):
    world = build_world()
    admin = world.users["ann"]
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)

    def changelist():
        with queries() as q:
            response = client.get("/tests-admin/blog/post/")
        assert response.status_code == 200
        assert "auth_user" not in " ".join(q.sql("blog_db"))
        return q.counts(), response.content

    before, content = changelist()
    assert b"gamma" in content
    for number in range(5):
        author = User.objects.create(username=f"new{number}")
        Post.objects.create(title=f"new post {number}", author=author)
    after, content = changelist()
    assert b"new4" in content
    assert after == before


def test_only_and_defer_beyond_the_crossing_load_what_the_twin_loads(queries):
    build_world()
    twin_model = TWIN_MODEL[Profile]
    for shape in (
        lambda qs: qs.only("nickname", "user__username"),
        lambda qs: qs.defer("user__email"),
    ):
        got = [p.user.get_deferred_fields() for p in shape(Profile.objects.select_related("user"))]
        twin = [
            p.user.get_deferred_fields() for p in shape(twin_model.objects.select_related("user"))
        ]
        assert got == twin
        assert got and all(got)


@pytest.mark.parametrize(
    "shape",
    [lambda qs: qs.only("nickname"), lambda qs: qs.defer("user")],
    ids=["only", "defer"],
)
def test_a_deferred_and_traversed_crossing_raises_djangos_error_before_any_query(shape, queries):
    twin_model = TWIN_MODEL[Profile]
    with pytest.raises(FieldError) as twin:
        list(shape(twin_model.objects.select_related("user")))
    with queries() as q, pytest.raises(FieldError) as got:
        list(shape(Profile.objects.select_related("user")))
    assert str(got.value) == str(twin.value).replace("TwinProfile", "Profile")
    assert sum(q.counts().values()) == 0


def test_select_related_of_a_multi_valued_relation_raises_like_the_twin():
    with pytest.raises(FieldError, match="Invalid field name"):
        list(User.objects.select_related("twin_posts"))
    with pytest.raises(FieldError, match="Invalid field name"):
        list(User.objects.select_related("blog_posts"))


def test_an_invalid_name_beyond_the_crossing_raises_with_no_rows():
    with pytest.raises(FieldError):
        list(TWIN_MODEL[Post].objects.select_related("author__missing"))
    with pytest.raises(FieldError):
        list(Post.objects.select_related("author__missing"))


def test_select_related_without_arguments_and_a_deferred_crossing_answer_as_the_twin():
    """Django raises only for names asked for: select_related() leaves a deferred key alone."""
    build_world()
    twins = TwinPost.objects.defer("author").select_related().order_by("title")
    posts = Post.objects.defer("author").select_related().order_by("title")
    assert [(p.title, p.author.username) for p in posts] == [
        (p.title, p.author.username) for p in twins
    ]


def test_a_missing_reverse_one_to_one_before_a_crossing_is_nothing_to_follow():
    """select_related() caches a missing reverse one-to-one as None; crossdb follows nothing."""
    from crossdb.query_select import _holders

    User.objects.create(username="zed")
    users = list(User.objects.select_related("twin_profile").filter(username="zed"))
    assert len(users) == 1 and not hasattr(users[0], "twin_profile")
    assert _holders(users, ["twin_profile"]) == []


def test_the_related_rows_get_the_querysets_fetch_mode_like_the_twin():
    """Django 6.1: select_related() copies the fetch mode onto the instances it loads."""
    from crossdb import django_versions

    build_world()
    if not django_versions.FETCH_MODES:
        queryset = Post.objects.all()
        assert django_versions.same_fetch_mode(queryset, Post.objects.all()) is queryset
        return
    from django.db.models import FETCH_PEERS

    twin = TwinPost.objects.fetch_mode(FETCH_PEERS).select_related("author").first()
    post = Post.objects.fetch_mode(FETCH_PEERS).select_related("author").first()
    assert twin.author._state.fetch_mode is FETCH_PEERS
    assert post.author._state.fetch_mode is FETCH_PEERS
