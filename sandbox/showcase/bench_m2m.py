"""The many-to-many rows of the benchmark: ``blog.Post.tags`` against ``twin.TwinPost.tags``.

Both sides point at the same tags in default (``twin.Tag``), as both point
at the same users: the crossdb side from blog_db through its through table
there, the plain side with Django's ManyToManyField inside default.  Each
benchmark post gets the same ``TAGS_PER_POST`` tags on both sides.
"""

from __future__ import annotations

from io import StringIO

from blog.models import Post
from twin.models import Tag, TwinPost

TAG_PREFIX = "bench-tag-"
TAG_COUNT = 200
TAGS_PER_POST = 3
POSTS = {"crossdb": Post, "plain": TwinPost}
REVERSE = {"crossdb": "posts", "plain": "twin_posts"}


def wipe() -> None:
    """Remove the benchmark's tags and links (before its posts: the links reference them)."""
    for model in POSTS.values():
        through = model.tags.through
        links = through.objects.filter(tag__name__startswith=TAG_PREFIX)
        links._raw_delete(links.db)
    tags = Tag.objects.filter(name__startswith=TAG_PREFIX)
    tags._raw_delete(tags.db)


def populate(data, stdout) -> list[int]:
    """Write the tags and each side's links; return the tag ids."""
    Tag.objects.bulk_create([Tag(name=f"{TAG_PREFIX}{i:03d}") for i in range(TAG_COUNT)])
    tag_ids = list(
        Tag.objects.filter(name__startswith=TAG_PREFIX).order_by("pk").values_list("pk", flat=True)
    )
    for side, model in POSTS.items():
        through = model.tags.through
        post_ids = data.posts_of(side).order_by("pk").values_list("pk", flat=True)
        source = f"{model._meta.model_name}_id"
        through.objects.bulk_create(
            [
                through(**{source: post_id, "tag_id": tag_ids[(n * 7 + k * 13) % TAG_COUNT]})
                for n, post_id in enumerate(post_ids)
                for k in range(TAGS_PER_POST)
            ],
            batch_size=1000,
        )
    stdout.write(f"  linked each side's posts to {TAGS_PER_POST} of {TAG_COUNT} tags")
    return tag_ids


def operations(data, stdout, operation) -> list:
    """Return the many-to-many rows of the table (``operation`` is ``bench.Operation``)."""
    populate(data, stdout or StringIO())
    name = f"{TAG_PREFIX}007"

    def prefetch(side, _):
        posts = data.posts_of(side).prefetch_related("tags")
        return sum(len(post.tags.all()) for post in posts)

    def lookup(side, _):
        return len(list(POSTS[side].objects.filter(tags__name=name)))

    def lookup_reverse(side, _):
        lookup = {f"{REVERSE[side]}__title__endswith": "00"}
        return len(list(Tag.objects.filter(**lookup).distinct()))

    def prefetch_reverse(side, _):
        tags = Tag.objects.filter(name__startswith=TAG_PREFIX).prefetch_related(REVERSE[side])
        return sum(len(getattr(tag, REVERSE[side]).all()) for tag in tags)

    return [
        operation(f'prefetch_related("tags") ({data.post_count} posts)', 1.15, prefetch),
        operation(f"filter(tags__name=...) ({data.post_count} posts)", 1.6, lookup),
        operation("lookup reverse (posts__title)", 1.6, lookup_reverse),
        operation(f'prefetch_related("posts") ({TAG_COUNT} tags)', 1.15, prefetch_reverse),
    ]
