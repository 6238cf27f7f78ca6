"""Forward access across databases: ``post.author``, ``profile.user``, ``badge.user``."""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from tests.blog.models import Post
from tests.shop.models import Badge, Mention, Profile
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def john():
    return User.objects.create(username="john", email="john@example.com")


def test_forward_access_is_one_query_on_the_target_alias_then_cached(
    any_router, john, stale_users, queries
):
    Post.objects.create(title="hi", author=john)
    stale_users()
    post = Post.objects.get()
    assert post._state.db == "blog_db"

    with queries() as q:
        author = post.author
        assert post.author is author
    assert author.username == "john"
    assert author._state.db == "default"
    assert q.counts() == {"default": 1, "blog_db": 0, "shop_db": 0}


def test_forward_access_matches_the_plain_foreign_key_twin(any_router, john, stale_users):
    ann = User.objects.create(username="ann")
    for title, author in (("a", john), ("b", ann), ("c", john)):
        Post.objects.create(title=title, author=author, editor=ann if title == "b" else None)
        TwinPost.objects.create(title=title, author=author, editor=ann if title == "b" else None)
    stale_users()

    def seen(model):
        return [
            (post.title, post.author.username, post.editor and post.editor.username)
            for post in model.objects.order_by("title")
        ]

    assert seen(Post) == seen(TwinPost)


def test_raw_id_is_the_column_value(john):
    post = Post.objects.create(title="hi", author=john)
    assert Post.objects.get().author_id == john.pk == post.author_id


def test_one_to_one_and_chained_relations_read_each_alias(any_router, john, stale_users, queries):
    Profile.objects.create(user=john, nickname="jj")
    post = Post.objects.create(title="hi", author=john)
    Mention.objects.create(post=post, text="see")
    stale_users()

    profile = Profile.objects.get()
    mention = Mention.objects.get()
    with queries() as q:
        assert profile.user.username == "john"
        assert mention.post.author.username == "john"
    assert q.counts() == {"default": 2, "blog_db": 1, "shop_db": 0}
    # The reverse one-to-one cache is filled by the forward access.
    with queries() as q:
        assert profile.user.shop_profile is profile
    assert sum(q.counts().values()) == 0


def test_to_field_relation_stores_and_follows_the_target_field(any_router, john, queries):
    Badge.objects.create(user=john, label="gold")
    badge = Badge.objects.get()
    assert badge.user_id == "john"
    with queries() as q:
        assert badge.user == john
    assert q.counts()["default"] == 1


def test_assigning_something_else_than_the_target_model_is_a_value_error(john):
    post = Post(title="x")
    with pytest.raises(ValueError, match='"Post.author" must be a "User" instance'):
        post.author = Post(title="not a user")
    with pytest.raises(ValueError):
        post.author = john.pk


def test_saving_with_an_unsaved_target_raises_and_writes_nothing():
    post = Post(title="x", author=User(username="ghost"))
    with pytest.raises(ValueError, match="unsaved related object 'author'"):
        post.save()
    assert not Post.objects.exists()
    assert not User.objects.filter(username="ghost").exists()


def test_unsaved_ends_take_their_routed_alias(any_router, john):
    post = Post(title="x")
    post.author = john
    assert post._state.db == "blog_db"
    profile = Profile(nickname="n")
    user = User(username="new")
    profile.user = user
    assert user._state.db == "default"
    assert profile._state.db == "shop_db"


def test_a_router_refusing_the_relation_is_an_error_naming_both_aliases(john):
    routers = ["tests.routers.RefusingRouter", "crossdb.routers.AppLabelRouter"]
    post = Post.objects.create(title="x", author=john)
    with override_settings(DATABASE_ROUTERS=routers):
        with pytest.raises(ValueError) as excinfo:
            post.author = john
    message = str(excinfo.value)
    # Django's own wording (multiple_database.tests.RelationAssignmentTests), then both aliases.
    assert message.startswith(f'Cannot assign "{john!r}": the current database router prevents')
    assert "blog.Post.author" in message
    assert "auth.User on 'default'" in message
    assert "blog.Post on 'blog_db'" in message


def test_dangling_id_raises_related_object_does_not_exist_naming_alias_and_id(john):
    post = Post.objects.create(title="x", author=john)
    Post.objects.filter(pk=post.pk).update(author_id=987654)
    post = Post.objects.get()
    with pytest.raises(Post.author.RelatedObjectDoesNotExist) as excinfo:
        post.author
    assert isinstance(excinfo.value, User.DoesNotExist)
    message = str(excinfo.value)
    assert "blog.Post.author" in message
    assert "id=987654" in message
    assert "'default'" in message


def test_null_relation_reads_nothing(queries, john):
    Post.objects.create(title="x", author=john)
    post = Post.objects.get()
    with queries() as q:
        assert post.editor is None
    assert sum(q.counts().values()) == 0


def test_refresh_from_db_clears_and_reloads_the_relation(any_router, john, queries):
    ann = User.objects.create(username="ann")
    post = Post.objects.create(title="x", author=john)
    assert post.author == john
    Post.objects.filter(pk=post.pk).update(author_id=ann.pk)
    post.refresh_from_db()
    with queries() as q:
        assert post.author == ann
    assert q.counts() == {"default": 1, "blog_db": 0, "shop_db": 0}
    post.refresh_from_db(fields=["author"])
    assert post.author == ann


def test_deferred_foreign_key_loads_from_the_source_then_the_target(any_router, john, queries):
    Post.objects.create(title="x", author=john)
    post = Post.objects.only("title").get()
    with queries() as q:
        assert post.author == john
    assert q.counts() == {"default": 1, "blog_db": 1, "shop_db": 0}


def test_routers_abstaining_for_the_target_mean_default_not_the_source_alias(john, stale_users):
    # RulesOrNoneRouter answers nothing for auth: Django would read auth_user
    # from the post's alias (blog_db), where the stale copy lives.
    Post.objects.create(title="x", author=john)
    stale_users()
    with override_settings(DATABASE_ROUTERS=["tests.routers.RulesOrNoneRouter"]):
        post = Post.objects.get()
        assert post.author.username == "john"
        assert post.author._state.db == "default"


class PlacedEndsRouter:
    """Allow a relation only between rows already placed on an alias (as Django's test routers)."""

    def allow_relation(self, obj1, obj2, **hints):
        return obj1._state.db is not None and obj2._state.db is not None


def test_unsaved_ends_are_placed_before_the_routers_are_asked():
    routers = [PlacedEndsRouter(), "crossdb.routers.AppLabelRouter"]
    with override_settings(DATABASE_ROUTERS=routers):
        post = Post(title="x")
        user = User(username="new")
        post.author = user
    assert (post._state.db, user._state.db) == ("blog_db", "default")
    assert post.author is user
