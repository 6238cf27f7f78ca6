"""The async queryset API on querysets that cross databases."""

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from tests.blog.models import Comment, Post
from tests.query_helpers import build_world
from tests.shop.models import Mention

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def test_aget_afirst_acount_aexists_and_iteration(stale_users):
    build_world()
    stale_users()

    @async_to_sync
    async def run():
        across = Post.objects.filter(author__username="bob")
        post = await Post.objects.aget(author__username="cat", score=1)
        first = await across.afirst()
        count = await across.acount()
        exists = await User.objects.filter(blog_posts__title="delta").aexists()
        missing = await Post.objects.filter(author__username="stale-bob").aexists()
        titles = [p.title async for p in across]
        authors = [p.author.username async for p in Post.objects.select_related("author")]
        values = [row async for row in Comment.objects.values_list("text", "author__username")]
        chunks = [p.title async for p in across.aiterator(chunk_size=1)]
        return post, first, count, exists, missing, titles, authors, values, chunks

    post, first, count, exists, missing, titles, authors, values, chunks = run()
    assert post.title == "delta"
    assert first.title == "gamma"
    assert (count, exists, missing) == (2, True, False)
    assert titles == chunks == ["gamma", "epsilon"]
    assert authors == ["ann", "ann", "bob", "cat", "bob", "cat"]
    assert values[0] == ("nice", "bob")


def test_adelete_and_aupdate_across():
    build_world()

    @async_to_sync
    async def run():
        updated = await Post.objects.filter(editor__username="bob").aupdate(score=11)
        deleted = await Mention.objects.filter(post__author__username="bob").adelete()
        return updated, deleted

    updated, deleted = run()
    assert updated == 2
    assert deleted == (2, {"shop.Mention": 2})
    assert Post.objects.filter(score=11).count() == 2
