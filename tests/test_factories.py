"""factory-boy with crossdb: ``crossdb.factories.RoutedModelFactory``."""

import factory
import pytest
from django.contrib.auth.models import User

from crossdb import routing
from crossdb.factories import RoutedModelFactory
from tests.blog.models import Comment, Post
from tests.shop.models import Mention

pytestmark = pytest.mark.django_db(databases="__all__")


class UserFactory(RoutedModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"person{n}")


class PostFactory(RoutedModelFactory):
    class Meta:
        model = Post

    title = factory.Sequence(lambda n: f"post {n}")
    author = factory.SubFactory(UserFactory)


class CommentFactory(RoutedModelFactory):
    class Meta:
        model = Comment

    post = factory.SubFactory(PostFactory)
    author = factory.SubFactory(UserFactory)
    text = "comment"


class MentionFactory(RoutedModelFactory):
    class Meta:
        model = Mention

    post = factory.SubFactory(PostFactory)
    text = "mention"


class AuthorWithPostsFactory(UserFactory):
    class Meta:
        skip_postgeneration_save = True

    posts = factory.RelatedFactoryList(PostFactory, factory_related_name="author", size=2)


def inserts(q):
    """Return ``{alias: [tables inserted into]}`` from captured queries."""
    found = {}
    for alias in q.aliases:
        for sql in q.sql(alias):
            if sql.startswith("INSERT INTO"):
                found.setdefault(alias, []).append(sql.split()[2].strip('"`'))
    return found


def test_each_model_is_written_on_its_routed_alias(any_router, queries):
    with queries() as q:
        mention = MentionFactory()
    user_alias = routing.db_for_write(User)
    post_alias = routing.db_for_write(Post)
    mention_alias = routing.db_for_write(Mention)
    assert (user_alias, post_alias, mention_alias) == ("default", "blog_db", "shop_db")
    assert inserts(q) == {
        "default": ["auth_user"],
        "blog_db": ["blog_post"],
        "shop_db": ["shop_mention"],
    }
    assert mention._state.db == "shop_db" and mention.post._state.db == "blog_db"
    assert Mention.objects.get().post.author == mention.post.author


def test_same_database_and_cross_database_subfactories_together(queries):
    with queries() as q:
        comment = CommentFactory()
    assert inserts(q) == {
        "default": ["auth_user", "auth_user"],
        "blog_db": ["blog_post", "blog_comment"],
    }
    assert comment.post.author != comment.author
    assert Comment.objects.get().post == comment.post


def test_get_or_create_reads_the_routed_alias(stale_users, queries):
    ann = User.objects.create(username="ann")
    stale_users()
    with queries() as q:
        again = UserFactory(username="ann")
    assert again.pk == ann.pk and again.username == "ann"
    assert set(alias for alias, count in q.counts().items() if count) == {"default"}


def test_related_factory_builds_the_reverse_side_on_its_alias():
    author = AuthorWithPostsFactory()
    assert author._state.db == "default"
    assert sorted(Post.objects.filter(author_id=author.pk).values_list("title", flat=True)) == [
        post.title for post in author.blog_posts.order_by("title")
    ]
    assert author.blog_posts.count() == 2


def test_build_writes_nothing(queries):
    with queries() as q:
        post = PostFactory.build()
    assert sum(q.counts().values()) == 0
    assert post.pk is None and post.author.pk is None


def test_a_meta_database_that_disagrees_with_the_routers_is_refused():
    class MisplacedPostFactory(PostFactory):
        class Meta:
            database = "shop_db"

    with pytest.raises(ValueError, match="routers write blog.Post to 'blog_db'"):
        MisplacedPostFactory()

    class SpelledOutPostFactory(PostFactory):
        class Meta:
            database = "blog_db"

    assert SpelledOutPostFactory()._state.db == "blog_db"


def test_plain_factory_boy_would_write_a_pinned_default_factory_elsewhere():
    """Why the helper pins: DjangoModelFactory's manager left to the routers works, but a
    factory copied with a stale Meta.database writes rows where the app never reads."""

    class StalePostFactory(factory.django.DjangoModelFactory):
        class Meta:
            model = Post
            database = "shop_db"

        title = "stale"
        author = factory.SubFactory(UserFactory)

    assert StalePostFactory._get_manager(Post).db == "shop_db"
