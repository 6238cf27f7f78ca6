"""Replicas as TEST MIRRORs (the ``replica_mirror`` profile, SQLite only).

``replica`` and ``blog_replica`` are Django test mirrors of default and
blog_db: other connections to the same databases, so there is no lag.  What
this checks on a machine without PostgreSQL: which alias each read and write
goes to, that the answers read through the replicas are right, and that
pinning, cascades, the audit and ``migrate_all`` keep to the primaries.  Lag
itself is tested on the real standby (``test_replica_standby.py``).
"""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.http import HttpResponse

from crossdb.management.commands.migrate_all import ordered_aliases
from crossdb.pinning import PinningMiddleware
from tests.blog.models import Post
from tests.replicas import read_through_replicas_and_primaries, write_blog
from tests.shop.models import Mention

# Committed rows: the mirrors are other connections to the same databases.
pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


@pytest.fixture
def blog():
    return write_blog()


def test_the_replicas_are_mirrors_of_their_primaries():
    for replica, primary in (("replica", "default"), ("blog_replica", "blog_db")):
        assert connections[replica].settings_dict["TEST"]["MIRROR"] == primary
        assert (
            connections[replica].settings_dict["NAME"] == connections[primary].settings_dict["NAME"]
        )


def test_related_reads_go_to_the_replicas_and_are_right(blog, queries):
    on_replicas, on_primaries = read_through_replicas_and_primaries(queries)
    assert on_replicas == on_primaries
    assert on_primaries["forward"] == [("a1", "ann"), ("a2", "ann"), ("b1", "bob")]


def test_forward_access_is_one_query_on_the_replica(blog, queries):
    post = Post.objects.get(title="a1")
    assert post._state.db == "blog_replica"
    with queries() as q:
        assert post.author.username == "ann"
    assert q.counts() == {
        "default": 0,
        "blog_db": 0,
        "shop_db": 0,
        "replica": 1,
        "blog_replica": 0,
    }


def test_writes_and_cascades_go_to_the_primaries(blog, queries):
    ann, _bob = blog
    Mention.objects.create(post=Post.objects.get(title="a1"), text="m")
    user = User.objects.get(username="ann")
    assert user._state.db == "replica"
    with queries() as q:
        deleted, by_model = user.delete()
    assert q.count("replica") == q.count("blog_replica") == 0
    assert {label: n for label, n in by_model.items() if n} == {
        "auth.User": 1,
        "blog.Post": 2,
        "blog.Comment": 2,
        "shop.Mention": 1,
    }
    assert sorted(Post.objects.values_list("title", flat=True)) == ["b1"]


def test_crossdb_audit_reads_the_primaries(blog, queries):
    with queries() as q:
        call_command("crossdb_audit", stdout=StringIO(), stderr=StringIO())
    assert q.count("replica") == q.count("blog_replica") == 0
    assert q.count("default") > 0 and q.count("blog_db") > 0


def test_the_middleware_pins_reads_after_a_write(blog, rf, queries):
    counts = {}

    def view(request):
        Post.objects.create(title="new", author=User.objects.get(username="bob"))
        with queries() as q:
            assert Post.objects.get(title="new").author.username == "bob"
        counts.update(q.counts())
        return HttpResponse("ok")

    PinningMiddleware(view)(rf.get("/"))
    assert counts["blog_db"] == counts["default"] == 1
    assert counts["replica"] == counts["blog_replica"] == 0


def test_migrate_all_skips_the_mirrors():
    assert ordered_aliases() == ["default", "blog_db", "shop_db"]
    out = StringIO()
    call_command("migrate_all", "--check", stdout=out, stderr=StringIO())
    assert "replica" not in out.getvalue()


def test_the_system_checks_accept_the_replicas():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()
