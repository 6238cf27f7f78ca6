"""Fixtures: ``dumpdata`` / ``loaddata --database`` round-trips of crossdb fields.

Natural foreign keys are resolved on the target's alias (the ``serializers``
seam).  The stale ``auth_user`` copy in blog_db holds a user named like a
real one under another id: looking the key up on the fixture's alias would
pick it silently.
"""

import inspect
import json
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import Group, User
from django.core import serializers
from django.core.management import call_command
from django.core.serializers import base, xml_serializer
from django.core.serializers.base import DeserializationError
from django.db import IntegrityError

from crossdb import routing, seams
from crossdb import serializers as crossdb_serializers
from tests.blog.models import Post
from tests.shop.models import Badge
from tests.tooling.models import FALLBACK_GROUP_ID, Ticket
from tests.twin.models import TwinPost

pytestmark = pytest.mark.django_db(databases="__all__")

STALE_ANN_ID = 7777


@pytest.fixture
def on_purpose(request):
    """Excuse the suite's JOIN detector for SQL sent to the wrong alias on purpose."""
    detector = (
        request.getfixturevalue("_crossdb_join_detector")
        if "_crossdb_join_detector" in request.fixturenames
        else None
    )

    @contextmanager
    def excused():
        if detector is None:
            yield
            return
        allow, detector.allow = detector.allow, lambda violation: True
        try:
            yield
        finally:
            detector.allow = allow

    return excused


@pytest.fixture
def data(on_purpose):
    ann = User.objects.create(username="ann")
    bob = User.objects.create(username="bob")
    # A stale "ann" in blog_db's copy of auth_user, under another id.
    with on_purpose():
        User.objects.using("blog_db").create(pk=STALE_ANN_ID, username="ann")
    Post.objects.create(title="by ann", author=ann, editor=bob)
    Post.objects.create(title="by bob", author=bob)
    return ann, bob


def dump(tmp_path, label, alias, fmt="json", **options):
    path = tmp_path / f"{label.replace('.', '_')}.{fmt}"
    call_command(
        "dumpdata", label, database=alias, format=fmt, output=str(path), verbosity=0, **options
    )
    return path


def load(path, alias):
    call_command("loaddata", str(path), database=alias, verbosity=0)


def post_rows():
    return list(Post.objects.order_by("title").values_list("title", "author_id", "editor_id"))


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("natural", [False, True])
def test_posts_round_trip_through_blog_db(data, tmp_path, fmt, natural):
    ann, bob = data
    before = post_rows()
    path = dump(tmp_path, "blog.Post", "blog_db", fmt, natural_foreign=natural)
    text = path.read_text()
    if natural and fmt == "json":
        fields = {row["fields"]["title"]: row["fields"] for row in json.loads(text)}
        assert fields["by ann"]["author"] == ["ann"] and fields["by ann"]["editor"] == ["bob"]
        assert fields["by bob"]["editor"] is None
    if natural and fmt == "xml":
        assert "<natural>ann</natural>" in text
    Post.objects.all().delete()
    load(path, "blog_db")
    assert post_rows() == before == [("by ann", ann.pk, bob.pk), ("by bob", bob.pk, None)]
    assert [post.author.username for post in Post.objects.order_by("title")] == ["ann", "bob"]


def test_a_natural_key_missing_on_the_target_alias_is_an_error_not_the_stale_row(data, tmp_path):
    ann, _bob = data
    path = dump(tmp_path, "blog.Post", "blog_db", natural_foreign=True)
    Post.objects.all().delete()
    # ann leaves default; blog_db's stale "ann" must not stand in for her.
    User.objects.filter(pk=ann.pk).update(username="ann-renamed")
    # Django defers a key it cannot find, then saves the row without it: the
    # NOT NULL author fails the load, as it does inside one database.
    with pytest.raises((IntegrityError, DeserializationError)):
        load(path, "blog_db")
    assert not Post.objects.exists()


def test_to_field_and_group_natural_keys_round_trip(data, tmp_path):
    ann, _bob = data
    live = Group.objects.create(name="live")
    Group.objects.create(pk=FALLBACK_GROUP_ID, name="fallback")
    Badge.objects.create(user=ann, label="gold")
    Ticket.objects.create(title="t", owner=live, queue=live, reviewer=live)
    badge_alias, ticket_alias = routing.db_for_write(Badge), routing.db_for_write(Ticket)
    badge_path = dump(tmp_path, "shop.Badge", badge_alias, natural_foreign=True)
    ticket_path = dump(tmp_path, "tooling.Ticket", ticket_alias, natural_foreign=True)
    [ticket] = json.loads(ticket_path.read_text())
    assert ticket["fields"]["owner"] == ["live"] and ticket["fields"]["watcher"] is None
    badges_before = list(Badge.objects.values_list("label", "user_id"))
    tickets_before = list(Ticket.objects.values_list("owner_id", "queue_id", "reviewer_id"))
    Badge.objects.all().delete()
    Ticket.objects.all().delete()
    load(badge_path, badge_alias)
    load(ticket_path, ticket_alias)
    assert list(Badge.objects.values_list("label", "user_id")) == badges_before == [("gold", "ann")]
    assert list(Ticket.objects.values_list("owner_id", "queue_id", "reviewer_id")) == (
        tickets_before
    )


def test_users_and_posts_restore_into_their_own_databases(data, tmp_path):
    ann, bob = data
    users = dump(tmp_path, "auth.User", "default", natural_primary=False)
    posts = dump(tmp_path, "blog.Post", "blog_db", natural_foreign=True)
    before = post_rows()
    Post.objects.all().delete()
    User.objects.filter(username__in=["ann", "bob"]).delete()
    load(users, "default")
    load(posts, "blog_db")
    assert post_rows() == before


def test_forward_references_resolve_on_the_target_alias_too(data):
    """Django defers a natural key it cannot resolve yet, then resolves it again at the end."""
    ann, _bob = data
    objects = serializers.deserialize(
        "json",
        json.dumps([{"model": "blog.post", "fields": {"title": "fwd", "author": ["ann"]}}]),
        using="blog_db",
        handle_forward_references=True,
    )
    [obj] = list(objects)
    assert obj.deferred_fields == {}  # found at once, on default
    assert obj.object.author_id == ann.pk


# The seam ------------------------------------------------------------------------


def test_the_serializers_seam_is_installed_once():
    assert seams.installed()["serializers"] is True
    wrapped = base.deserialize_fk_value
    crossdb_serializers.install()
    assert base.deserialize_fk_value is wrapped


def test_django_still_looks_natural_keys_up_on_the_fixture_alias(data, on_purpose):
    """What the seam corrects: without it, blog_db's stale "ann" would be chosen."""
    ann, _bob = data
    field = Post._meta.get_field("author")
    original = base.deserialize_fk_value.crossdb_original
    assert list(inspect.signature(original).parameters) == [
        "field",
        "field_value",
        "using",
        "handle_forward_references",
    ]
    with on_purpose():
        assert original(field, ["ann"], "blog_db", False) == STALE_ANN_ID
    assert base.deserialize_fk_value(field, ["ann"], "blog_db", False) == ann.pk


def test_django_xml_deserializer_still_reads_self_db_for_natural_keys():
    handler = xml_serializer.Deserializer._handle_fk_field_node.crossdb_original
    assert list(inspect.signature(handler).parameters) == ["self", "node", "field"]
    assert "db_manager(\n                            self.db\n" in inspect.getsource(handler)
    assert "deserialize_fk_value(" in inspect.getsource(base.DeserializedObject)


def test_plain_foreign_keys_still_resolve_on_the_fixture_alias(data, on_purpose):
    """TwinPost.author is a plain ForeignKey to User: the seam leaves Django's behaviour."""
    field = TwinPost._meta.get_field("author")
    with on_purpose():
        assert base.deserialize_fk_value(field, ["ann"], "blog_db", False) == STALE_ANN_ID
    assert base.deserialize_fk_value(field, ["ann"], "default", False) == data[0].pk
