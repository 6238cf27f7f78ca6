"""crossdb on a real streaming standby (the ``replica`` profile).

default, blog_db and shop_db live on a PostgreSQL primary of the run's own;
``replica`` and ``blog_replica`` are its hot standby's copies of default and
blog_db (``tests/pg_standby.py``).  ``AppLabelRouter`` sends reads to them
(``DATABASE_REPLICAS`` of ``tests/settings.py``).  A standby only sees what
the primary has committed, so every test here is transactional, and lag is
made by pausing the standby's replay: inside ``lag()``, nothing written
reaches the replicas.
"""

import json
import random
import signal
import socket
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections, transaction
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.urls import reverse

from crossdb.management.commands.migrate_all import ordered_aliases
from crossdb.pinning import PinnedReadsRouter, PinningMiddleware, pin_to_primaries
from tests import pg_standby
from tests import settings as test_settings
from tests.blog.models import Comment, Post
from tests.forms import PostForm
from tests.replicas import (
    SEED_CHAINS,
    read_through_replicas_and_primaries,
    related_reads,
    write_blog,
)
from tests.shop.models import Badge, Mention, Profile

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

PRIMARIES = ("default", "blog_db", "shop_db")
REPLICAS = ("replica", "blog_replica")


def replayed():
    """Wait until the standby has everything the primary committed."""
    pg_standby.wait_for_replay(connections["default"], connections["replica"])


@pytest.fixture(autouse=True)
def standby():
    # The previous test's flush must have reached the standby before this
    # one reads it; a failed test must not leave the standby paused.
    replayed()
    yield
    pg_standby.resume_replay(connections["replica"])


@pytest.fixture
def lag():
    """Return a context manager inside which the replicas see no new commit."""
    return lambda: pg_standby.paused_replay(connections["default"], connections["replica"])


@pytest.fixture
def blog():
    """Two authors with posts and comments, already on the replicas."""
    authors = write_blog()
    replayed()
    return authors


def test_the_replicas_are_the_standby_and_refuse_writes():
    for alias, primary in (("replica", "default"), ("blog_replica", "blog_db")):
        settings = connections[alias].settings_dict
        assert settings["PORT"] == str(test_settings.STANDBY.standby_port)
        assert settings["NAME"] == connections[primary].settings_dict["NAME"]
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone() == (True,)
    with pytest.raises(DatabaseError, match="read-only"):
        User.objects.using("replica").create(username="nope")


def test_reads_go_to_the_replicas_and_writes_to_the_primaries(blog, queries):
    ann, _bob = blog
    with queries() as q:
        post = Post.objects.get(title="a1")
        assert post.author.username == "ann"
        assert post._state.db == "blog_replica"
    assert q.counts() == {
        "default": 0,
        "blog_db": 0,
        "shop_db": 0,
        "replica": 1,
        "blog_replica": 1,
    }
    with queries() as q:
        Post.objects.create(title="new", author=ann)
    assert q.count("replica") == q.count("blog_replica") == 0
    assert q.count("blog_db") >= 1


def test_every_related_read_on_the_replicas_equals_the_primaries(blog, queries):
    on_replicas, on_primaries = read_through_replicas_and_primaries(queries)
    assert on_replicas == on_primaries
    assert on_primaries["lookup"] == ["a1", "a2"]
    assert on_primaries["order_by"] == ["a1", "a2", "b1"]


def test_an_unpinned_post_author_under_lag_does_not_see_new_rows_a_pinned_one_does(lag):
    with lag():
        carl = User.objects.create(username="carl")
        Post.objects.create(title="fresh", author=carl)
        post = Post.objects.using("blog_db").get(title="fresh")
        with pytest.raises(
            Post.author.RelatedObjectDoesNotExist,
            match=rf"blog.Post.author points at User id={carl.pk}, which does not exist "
            r"on database 'replica'",
        ):
            post.author
        assert not Post.objects.filter(title="fresh").exists()
        assert list(carl.blog_posts.all()) == []
        with pin_to_primaries():
            post = Post.objects.get(title="fresh")
            assert post.author == carl
            assert [p.title for p in carl.blog_posts.all()] == ["fresh"]
            assert related_reads()["forward"] == [("fresh", "carl")]
    replayed()
    assert Post.objects.get(title="fresh").author == carl


def test_a_cascade_under_lag_deletes_every_dependent_created_just_before_it(blog, lag):
    ann, bob = blog
    with lag():
        # Dependents the replicas have never seen, on every alias.
        fresh = [Post.objects.create(title=f"late{i}", author=ann) for i in range(3)]
        Comment.objects.create(post=fresh[0], author=ann, text="late")
        Comment.objects.create(post=Post.objects.using("blog_db").get(title="b1"), author=ann)
        Mention.objects.create(post=fresh[1], text="late")
        Badge.objects.create(user=ann, label="late")
        Profile.objects.create(user=ann, nickname="late")
        # Loaded from the replica, as an unpinned view would load it.
        target = User.objects.get(username="ann")
        assert target._state.db == "replica"
        deleted, by_model = target.delete()
        assert Post.objects.using("blog_db").filter(author_id=ann.pk).count() == 0
        assert Comment.objects.using("blog_db").filter(author_id=ann.pk).count() == 0
        assert Mention.objects.using("shop_db").count() == 0
        assert Badge.objects.using("shop_db").filter(user_id=ann.pk).count() == 0
        assert Profile.objects.using("shop_db").filter(user_id=ann.pk).count() == 0
        assert not User.objects.using("default").filter(pk=ann.pk).exists()
    assert by_model["blog.Post"] == 5
    # bob's on a1 and a2, ann's on late0 and on bob's b1.
    assert by_model["blog.Comment"] == 4
    assert by_model["shop.Mention"] == 1
    assert by_model["shop.Badge"] == by_model["shop.Profile"] == by_model["auth.User"] == 1
    replayed()
    assert [p.title for p in Post.objects.all()] == ["b1"]


def audit(*args):
    out = StringIO()
    try:
        call_command("crossdb_audit", "--json", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, json.loads(out.getvalue())
    return 0, json.loads(out.getvalue())


def dangling(report):
    return {
        f"{entry['model']}.{entry['field']}": entry["samples"]
        for entry in report["fields"]
        if entry["dangling_values"]
    }


def test_crossdb_audit_under_lag_reports_nothing_dangling_that_is_not(blog, lag):
    ann, bob = blog
    with lag():
        carl = User.objects.create(username="carl")
        post = Post.objects.create(title="c1", author=carl, editor=ann)
        Comment.objects.create(post=post, author=carl)
        Badge.objects.create(user=carl, label="new")
        status, report = audit()
        assert (status, dangling(report)) == (0, {})
        # A reference that does dangle, on the primaries only.
        dave = User.objects.create(username="dave")
        Post.objects.create(title="d1", author=dave)
        with connections["default"].cursor() as cursor:
            cursor.execute("DELETE FROM auth_user WHERE id = %s", [dave.pk])
        status, report = audit()
        assert (status, dangling(report)) == (1, {"blog.Post.author": [dave.pk]})
        status, report = audit("--fix")
        assert not Post.objects.using("blog_db").filter(title="d1").exists()
        assert Post.objects.using("blog_db").filter(title="c1").exists()
    status, report = audit()
    assert (status, dangling(report)) == (0, {})


def test_validation_of_a_just_created_target_passes_under_pinning(lag):
    with lag():
        carl = User.objects.create(username="carl")
        with pin_to_primaries():
            Post(title="x", author=carl, editor=carl).full_clean()
            form = PostForm(data={"title": "x", "author": carl.pk, "editor": carl.pk})
            assert form.is_valid(), form.errors
            post = form.save()
        assert Post.objects.using("blog_db").get(pk=post.pk).author_id == carl.pk


def test_validation_unpinned_under_lag_reads_the_replica(lag):
    # The documented lag case: validation reads where db_for_read says.
    with lag():
        carl = User.objects.create(username="carl")
        with pytest.raises(ValidationError) as error:
            Post(title="x", author=carl).full_clean()
        assert "author" in error.value.message_dict
        assert not PostForm(data={"title": "x", "author": carl.pk}).is_valid()


def test_a_write_pointing_at_a_target_created_just_before_commits_under_lag(lag):
    with lag():
        carl = User.objects.create(username="carl")
        with transaction.atomic(using="blog_db"):
            post = Post.objects.create(title="x", author_id=carl.pk)
            Post.objects.bulk_create([Post(title="y", author_id=carl.pk)])
        carl.blog_posts.create(title="z")
    assert Post.objects.using("blog_db").filter(author_id=carl.pk).count() == 3
    assert Post.objects.using("blog_db").get(pk=post.pk).author_id == carl.pk


@pytest.mark.parametrize("chain", sorted(SEED_CHAINS))
def test_with_the_seed_routers_every_related_read_is_still_right(blog, chain, queries):
    random.seed(80)
    with pin_to_primaries():
        expected = related_reads()
    with override_settings(DATABASE_ROUTERS=SEED_CHAINS[chain]):
        with queries() as q:
            for _ in range(10):
                assert related_reads() == expected
    assert q.count("replica") > 0
    # The 80%-random router reads default too; the primary-replica one never.
    assert (q.count("default") > 0) is (chain == "read_replica")


@pytest.mark.parametrize("chain", sorted(SEED_CHAINS))
def test_seed_routers_under_lag_are_right_when_pinned(chain, lag):
    routers = [PinnedReadsRouter(), *SEED_CHAINS[chain]]
    with override_settings(DATABASE_ROUTERS=routers), lag():
        carl = User.objects.create(username="carl")
        Post.objects.create(title="fresh", author=carl)
        with pin_to_primaries():
            for _ in range(10):
                assert related_reads()["forward"] == [("fresh", "carl")]
                assert related_reads()["select_related"] == [("fresh", "carl")]
        if chain == "primary_replica":
            post = Post.objects.get(title="fresh")
            with pytest.raises(Post.author.RelatedObjectDoesNotExist, match="'replica'"):
                post.author


def test_the_middleware_gives_a_client_its_own_writes_under_lag(lag):
    def write(request):
        user = User.objects.create(username=request.GET["name"])
        Post.objects.create(title="hello", author=user)
        # Pinned after the write: read back from the primaries.
        post = Post.objects.get(title="hello")
        return HttpResponse(post.author.username)

    def read(request):
        post = Post.objects.filter(title="hello").first()
        return HttpResponse(post.author.username if post else "-")

    factory = RequestFactory()
    with lag():
        response = PinningMiddleware(write)(factory.post("/?name=carl"))
        assert response.content == b"carl"
        cookie = response.cookies["crossdb_pinned"]
        assert PinningMiddleware(read)(factory.get("/")).content == b"-"
        again = factory.get("/")
        again.COOKIES[cookie.key] = cookie.value
        assert PinningMiddleware(read)(again).content == b"carl"


def test_migrate_all_leaves_the_standby_alone():
    assert ordered_aliases() == list(PRIMARIES)
    out = StringIO()
    call_command("migrate_all", "--check", stdout=out, stderr=StringIO())
    assert "replica" not in out.getvalue()
    with pytest.raises(CommandError, match=r"replica \(of default\)"):
        call_command("migrate_all", "--database", "replica", stdout=StringIO())


STARTS_AND_FAILS = """
import os, sys, time
from tests import pg_standby
clusters = pg_standby.start()
print(clusters.root, clusters.primary_port, clusters.standby_port, flush=True)
if sys.argv[1] == "raise":
    raise RuntimeError("a failing test run")
time.sleep(60)
"""


def listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("ending", ["raise", "sigterm"])
def test_both_servers_are_stopped_and_removed_however_the_run_ends(ending):
    process = subprocess.Popen(
        [sys.executable, "-c", STARTS_AND_FAILS, ending],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    root, *ports = process.stdout.readline().split()
    assert Path(root).is_dir() and all(listening(int(port)) for port in ports)
    if ending == "sigterm":
        process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert not Path(root).exists()
    assert not any(listening(int(port)) for port in ports)


def test_the_admin_delete_confirmation_under_lag_lists_dependents_created_just_before(
    blog, lag, client
):
    ann, _bob = blog
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    replayed()  # the session and the admin user, as the replica serves them
    with lag():
        Post.objects.create(title="late post", author=ann)
        page = client.get(reverse("admin:auth_user_delete", args=[ann.pk])).content.decode()
    assert "Post: late post" in page and "Post: a1" in page
    assert "<li>Posts: 3</li>" in page


def test_the_system_checks_accept_the_replicas():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_unpinned_related_reads_under_lag_behave_as_documented(blog, lag):
    # docs/replicas.rst, "What reads where": a target the replica lacks is a
    # key without a row there, never another row.
    ann, _bob = blog
    with lag():
        carl = User.objects.create(username="carl")
        Post.objects.create(title="fresh", author=carl)
        Post.objects.create(title="late", author=ann)
        on_primary = Post.objects.using("blog_db").filter(title="fresh")
        for loaded in (on_primary.prefetch_related("author"), on_primary.select_related("author")):
            (post,) = loaded
            with pytest.raises(Post.author.RelatedObjectDoesNotExist):
                post.author
        assert list(on_primary.filter(author__username="carl")) == []
        assert list(on_primary.values_list("title", "author__username")) == [("fresh", None)]
        assert [p.title for p in ann.blog_posts.all()] == ["a1", "a2"]
        (user,) = User.objects.filter(username="ann").prefetch_related("blog_posts")
        assert [p.title for p in user.blog_posts.all()] == ["a1", "a2"]
        with pin_to_primaries():
            assert [p.title for p in ann.blog_posts.all()] == ["a1", "a2", "late"]
            assert list(on_primary.values_list("title", "author__username")) == [("fresh", "carl")]
