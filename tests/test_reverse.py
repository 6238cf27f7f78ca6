"""The reverse side: ``user.blog_posts`` and ``user.shop_profile``, differential against twins."""

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from tests.blog.models import Post
from tests.shop.models import Profile
from tests.twin.models import TwinPost, TwinProfile

pytestmark = pytest.mark.django_db(databases="__all__")

# (model, reverse accessor, reverse accessor of the nullable "editor" field)
SIDES = {
    "crossdb": (Post, "blog_posts", "edited_posts"),
    "twin": (TwinPost, "twin_posts", "twin_edited_posts"),
}


@pytest.fixture
def people():
    return User.objects.create(username="john"), User.objects.create(username="ann")


def _titles(manager):
    return sorted(manager.values_list("title", flat=True))


def _exercise(side, john, ann):
    """Run the same reverse-manager script on one side and return what it saw."""
    model, posts_name, edited_name = SIDES[side]
    posts, edited = getattr(john, posts_name), getattr(ann, edited_name)
    seen = []
    posts.create(title="a", score=1)
    posts.create(title="b", score=2, published=False)
    post, created = posts.get_or_create(title="c", defaults={"score": 3})
    seen.append(created)
    seen.append(posts.get_or_create(title="c")[1])
    post, created = posts.update_or_create(title="c", defaults={"score": 30})
    seen += [created, post.score]
    seen.append(_titles(posts.all()))
    seen.append(_titles(posts.filter(score__gt=1)))
    seen.append(_titles(posts.exclude(score__gt=1)))
    seen += [posts.count(), posts.exists(), getattr(ann, posts_name).exists()]
    seen.append(_titles(posts.published()))  # custom queryset method
    seen.append(_titles(posts.titled("a")))  # custom manager method

    # Nullable relation: add / remove / clear / set.
    a, b, c = (model.objects.get(title=t) for t in "abc")
    edited.add(a, b)
    seen.append(_titles(edited.all()))
    edited.remove(a)
    seen.append(_titles(edited.all()))
    edited.set([a, c])
    seen.append(_titles(edited.all()))
    edited.add(b, bulk=False)
    edited.clear()
    seen.append(_titles(edited.all()))
    seen.append(model.objects.filter(editor__isnull=True).count())
    # Non-nullable: add() moves rows from another parent.
    getattr(ann, posts_name).add(a)
    seen.append((_titles(getattr(john, posts_name).all()), _titles(getattr(ann, posts_name).all())))
    getattr(ann, posts_name).set([b])
    seen.append(_titles(getattr(ann, posts_name).all()))
    return seen


def test_reverse_manager_matches_the_plain_foreign_key_twin(any_router, people):
    john, ann = people
    assert _exercise("crossdb", john, ann) == _exercise("twin", john, ann)


def test_reverse_manager_reads_and_writes_the_source_alias(any_router, people, queries):
    john, _ = people
    with queries() as q:
        post = john.blog_posts.create(title="a")
    assert post._state.db == "blog_db"
    assert q.counts() == {"default": 0, "blog_db": 1, "shop_db": 0}
    with queries() as q:
        assert list(john.blog_posts.all()) == [post]
        assert john.blog_posts.count() == 1
    assert q.counts() == {"default": 0, "blog_db": 2, "shop_db": 0}


def test_reverse_manager_caches_the_instance_on_loaded_rows(people, queries):
    john, _ = people
    john.blog_posts.create(title="a")
    with queries() as q:
        post = john.blog_posts.get()
        assert post.author is john
    assert q.counts()["default"] == 0


def test_reverse_manager_on_an_unsaved_instance_is_a_value_error():
    user = User(username="new")
    with pytest.raises(ValueError):
        list(user.blog_posts.all())
    with pytest.raises(ValueError):
        user.blog_posts.create(title="x")
    with pytest.raises(ValueError):
        user.shop_profile


def test_async_twins_of_the_manager_methods(people):
    john, ann = people

    async def script():
        post = await john.blog_posts.acreate(title="a")
        other = await john.blog_posts.aget_or_create(title="b")
        updated = await john.blog_posts.aupdate_or_create(title="b", defaults={"score": 5})
        titles = [p.title async for p in john.blog_posts.all()]
        await ann.edited_posts.aadd(post)
        await ann.edited_posts.aremove(post)
        await ann.edited_posts.aset([post])
        await ann.edited_posts.aclear()
        return other[1], updated[0].score, titles, await john.blog_posts.acount()

    assert async_to_sync(script)() == (True, 5, ["a", "b"], 2)
    assert Post.objects.filter(editor__isnull=True).count() == 2


def test_reverse_one_to_one_matches_the_twin(any_router, people, queries):
    john, ann = people
    Profile.objects.create(user=john, nickname="jj")
    TwinProfile.objects.create(user=john, nickname="jj")
    john = User.objects.get(pk=john.pk)
    with queries() as q:
        assert john.shop_profile.nickname == john.twin_profile.nickname == "jj"
    assert q.counts() == {"default": 1, "blog_db": 0, "shop_db": 1}
    assert john.shop_profile.user is john
    with pytest.raises(User.shop_profile.RelatedObjectDoesNotExist):
        ann.shop_profile
    with pytest.raises(User.twin_profile.RelatedObjectDoesNotExist):
        ann.twin_profile
    assert not hasattr(ann, "shop_profile")


def test_reverse_one_to_one_assignment(any_router, people):
    john, _ = people
    profile = Profile(nickname="p")
    john.shop_profile = profile
    assert profile.user_id == john.pk
    assert profile._state.db == "shop_db"
    profile.save()
    assert Profile.objects.using("shop_db").get().user_id == john.pk


def test_reverse_one_to_one_on_an_unsaved_instance_is_a_value_error_and_does_not_exist():
    user = User(username="new")
    with pytest.raises(ValueError):
        user.shop_profile
    with pytest.raises(User.shop_profile.RelatedObjectDoesNotExist):
        user.shop_profile
