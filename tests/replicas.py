"""What the replica tests share: the guides' two replica routers, and related reads.

The two routers are written by hand, as in the multi-database guides.

They know nothing of crossdb: crossdb must work with them unchanged.  In
front of them, ``tests.routers.BlogRouter`` and ``ShopRouter`` keep the blog
and the shop on their own aliases; these routers answer for the rest.
"""

import random

from django.contrib.auth.models import User
from django.db.models import Prefetch

from crossdb.pinning import pin_to_primaries
from tests.blog.models import Comment, Post

PRIMARY = "default"
REPLICA = "replica"


class PrimaryReplicaRouter:
    """Every read to ``replica``, every write to ``default``."""

    def db_for_read(self, model, **hints):
        return REPLICA

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        pool = {PRIMARY, REPLICA}
        if obj1._state.db in pool and obj2._state.db in pool:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return True


class ReadReplicaRouter(PrimaryReplicaRouter):
    """80% of the reads to ``replica`` at random, the rest and every write to ``default``."""

    share = 0.8

    def db_for_read(self, model, **hints):
        return REPLICA if random.random() < self.share else PRIMARY


SEED_CHAINS = {
    "primary_replica": [
        "tests.routers.BlogRouter",
        "tests.routers.ShopRouter",
        "tests.replicas.PrimaryReplicaRouter",
    ],
    "read_replica": [
        "tests.routers.BlogRouter",
        "tests.routers.ShopRouter",
        "tests.replicas.ReadReplicaRouter",
    ],
}


def related_reads():
    """Return the answers of every kind of related read, in a comparable form."""
    return {
        "forward": sorted((p.title, p.author.username) for p in Post.objects.all()),
        "reverse": sorted(
            (u.username, sorted(p.title for p in u.blog_posts.all())) for u in User.objects.all()
        ),
        "prefetch": sorted(
            (p.title, p.author.username, p.editor.username if p.editor else None)
            for p in Post.objects.prefetch_related("author", "editor")
        ),
        "prefetch_reverse": sorted(
            (u.username, sorted(p.title for p in u.blog_posts.all()))
            for u in User.objects.prefetch_related(Prefetch("blog_posts"))
        ),
        "select_related": sorted(
            (p.title, p.author.username) for p in Post.objects.select_related("author")
        ),
        "lookup": sorted(
            Post.objects.filter(author__username="ann").values_list("title", flat=True)
        ),
        "lookup_reverse": sorted(
            User.objects.filter(blog_posts__title="b1").values_list("username", flat=True)
        ),
        "order_by": list(
            Post.objects.order_by("author__username", "title").values_list("title", flat=True)
        ),
        "values": sorted(
            (row["title"], row["author__username"])
            for row in Post.objects.values("title", "author__username")
        ),
        "comments": sorted(
            (c.text, c.post.title, c.author.username) for c in Comment.objects.all()
        ),
    }


def write_blog():
    """Write two authors with posts and comments to the primaries; return the authors."""
    ann = User.objects.create(username="ann", email="ann@example.com")
    bob = User.objects.create(username="bob", email="bob@example.com")
    for title, author in (("a1", ann), ("a2", ann), ("b1", bob)):
        post = Post.objects.create(title=title, author=author, editor=bob)
        Comment.objects.create(post=post, author=bob, text=f"on {title}")
    return ann, bob


def read_through_replicas_and_primaries(queries):
    """Return ``related_reads()`` unpinned and pinned, checking where each read went."""
    with queries() as q:
        on_replicas = related_reads()
    assert q.count("default") == q.count("blog_db") == 0
    assert q.count("replica") > 0 and q.count("blog_replica") > 0
    with queries() as q, pin_to_primaries():
        on_primaries = related_reads()
    assert q.count("replica") == q.count("blog_replica") == 0
    return on_replicas, on_primaries
