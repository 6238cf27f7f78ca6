"""The measured cases of keys compared differently across engines, as regression tests.

Each runs on every profile; where an engine cannot hold a value (NUL on
PostgreSQL, a 21-character key in a varchar(20) column outside SQLite) the
case checks that the value matches nothing, which is what Django's own
lookup on that column answers.
"""

import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from crossdb.lookups import ids_in
from crossdb.testing import capture_queries
from tests.blog.models import KeyRef, Post
from tests.keys.models import Key, RefToShopKey, Token
from tests.shop.models import Badge, KeyNote, ShopKey, TokenUse
from tests.test_key_comparison import create_refs, create_targets

pytestmark = pytest.mark.django_db(databases="__all__")

TWINS = ["ann", "ANN", "ann ", "Ánn"]


def audit(*labels, fix=False):
    out = StringIO()
    try:
        call_command("crossdb_audit", model=list(labels), fix=fix, stdout=out)
    except CommandError:
        return 1, out.getvalue()
    return 0, out.getvalue()


def test_collation_twins_are_distinct_keys_for_delete_reverse_manager_and_audit():
    made = create_targets(Key, TWINS)
    create_refs(KeyRef, "key", made)
    ann = Key.objects.get(code="ann")
    assert list(ann.blog_refs.values_list("key_id", flat=True)) == ["ann"]
    assert KeyRef.objects.filter(key="ann").count() == 1
    assert KeyRef.objects.filter(key__code="ann").count() == 1
    ann.delete()
    assert sorted(KeyRef.objects.values_list("key_id", flat=True)) == sorted(made[1:])
    # Each twin is checked on its own; a dangling one is found and only it is fixed.
    if len(made) > 1:
        Key.objects.filter(code=made[1])._raw_delete(Key.objects.db)
        status, output = audit("blog.KeyRef")
        assert status == 1 and f"{len(made) - 1} ids" not in output.split("KeyRef.key")[0]
        assert audit("blog.KeyRef", fix=True)[0] == 0
        assert sorted(KeyRef.objects.values_list("key_id", flat=True)) == sorted(made[2:])


def test_a_nul_byte_does_not_cut_a_key():
    user = User.objects.create(username="target")
    Badge.objects.create(user=user, label="b")
    assert list(Badge.objects.filter(user__in=["target\x00' OR 1=1 --"])) == []
    made = create_targets(ShopKey, ["a", "a\x00b"])
    Key.objects.create(code="k")
    refs = create_refs(KeyRef, "shop_key", made, key_id="k")
    if "a\x00b" in made:
        ShopKey.objects.get(code="a\x00b").delete()
        assert list(KeyRef.objects.values_list("shop_key_id", flat=True)) == [
            v for v in refs if v == "a"
        ]
    else:  # the column cannot hold NUL: the key matches nothing, deletes nothing
        assert list(KeyRef.objects.filter(shop_key__in=["a\x00b"])) == []


def test_a_longer_key_is_never_truncated_into_a_shorter_one():
    made = create_targets(ShopKey, ["x" * 20, "x" * 21])
    create_refs(RefToShopKey, "key", ["x" * 20])
    assert list(RefToShopKey.objects.filter(key__in=["x" * 20 + "-and-more"])) == []
    assert RefToShopKey.objects.filter(key__in=["x" * 20]).count() == 1
    if "x" * 21 in made:
        ShopKey.objects.get(code="x" * 21).delete()
    assert RefToShopKey.objects.filter(key="x" * 20).count() == 1


def test_integers_beyond_the_column_match_nothing():
    user = User.objects.create(username="u")
    Post.objects.create(author=user, title="t")
    huge = [2**63, 2**64, 10**30, -(2**63) - 1]
    assert list(Post.objects.filter(author__in=huge)) == []
    assert list(User.objects.filter(ids_in("pk", huge))) == []
    assert Post.objects.filter(author__in=[*huge, user.pk]).count() == 1


def test_a_nul_key_in_a_source_column_does_not_abort_the_audit():
    made = create_targets(Key, ["a"])
    held = create_refs(KeyNote, "key", ["a", "a\x00b"])
    status, output = audit("shop.KeyNote")
    if "a\x00b" not in held:  # PostgreSQL: the source column cannot hold it either
        assert status == 0, output
        return
    assert status == 1, output
    assert "a\\x00b" in output and "OK" in output  # key: dangling; maybe: clean
    assert audit("shop.KeyNote", fix=True)[0] == 0
    assert list(KeyNote.objects.values_list("key_id", flat=True)) == made
    # A target row referenced through a key its own database holds deletes.
    nul = create_targets(ShopKey, ["n\x00ul"])
    for row in ShopKey.objects.filter(code__in=nul):
        row.delete()


def test_a_set_larger_than_the_server_packet_is_one_answer():
    keys = [f"{i:020d}" for i in range(120_000)]
    made = create_targets(Key, ["00000000000000000007", "ANN"])
    create_refs(KeyRef, "key", made)
    with capture_queries() as queries:
        assert KeyRef.objects.filter(key__in=keys).count() == 1
        assert Key.objects.filter(ids_in("code", keys)).count() == 1
    assert queries.count(KeyRef.objects.db) >= 1


def test_uuid_keys_order_values_select_prefetch_lookups_and_delete():
    tokens = [Token.objects.create(id=uuid.uuid4(), name=name) for name in ("b", "a", "c")]
    for token in tokens:
        TokenUse.objects.create(token=token, note=token.name)
    assert [u.note for u in TokenUse.objects.order_by("token__name")] == ["a", "b", "c"]
    assert [u.note for u in TokenUse.objects.order_by("-token__name")[:2]] == ["c", "b"]
    assert list(TokenUse.objects.order_by("note").values_list("token__name", flat=True)) == [
        "a",
        "b",
        "c",
    ]
    assert [u.token.name for u in TokenUse.objects.select_related("token").order_by("note")] == [
        "a",
        "b",
        "c",
    ]
    assert [u.token.name for u in TokenUse.objects.prefetch_related("token")] == ["b", "a", "c"]
    assert TokenUse.objects.filter(token__name="a").get().note == "a"
    assert TokenUse.objects.filter(token__in=tokens[:2]).count() == 2
    assert [t.name for t in Token.objects.filter(uses__note="c")] == ["c"]
    assert [len(t.uses.all()) for t in Token.objects.prefetch_related("uses")] == [1, 1, 1]
    tokens[0].delete()
    assert sorted(TokenUse.objects.values_list("note", flat=True)) == ["a", "c"]


def test_the_check_names_fields_whose_ends_compare_keys_differently(monkeypatch):
    from crossdb import checks

    assert checks.check_key_comparison() == []  # a database check: only with databases
    databases = ["default", "blog_db", "shop_db"]
    mixed = {"default": "postgresql", "blog_db": "mysql", "shop_db": "sqlite"}
    monkeypatch.setattr(checks, "_engine_vendor", mixed.get)
    found = sorted(
        (message.id, str(message.obj), "narrows" in message.msg)
        for message in checks.check_key_comparison(databases=databases)
    )
    assert ("crossdb.W003", "blog.KeyRef.key", True) in found
    assert ("crossdb.W003", "blog.KeyRef.shop_key", True) in found
    assert not any(label.startswith(("shop.KeyNote", "keys.")) for _id, label, _n in found)
    inverse = {**mixed, "default": "mysql"}
    monkeypatch.setattr(checks, "_engine_vendor", inverse.get)
    found = {
        (str(message.obj), "narrows" in message.msg)
        for message in checks.check_key_comparison(databases=databases)
    }
    assert ("shop.KeyNote.key", False) in found  # target _ci, references exact
    assert ("blog.KeyRef.key", True) not in found  # both on MariaDB


def test_zero_for_an_auto_key_is_a_value_like_any_other_as_in_djangos_lookups():
    # Django's lookups convert with prepared=True: MySQL refuses 0 for an
    # AutoField in an INSERT, not in a lookup.  Same answer as the twin.
    from tests.twin.models import TwinPost

    ann = User.objects.create(username="ann")
    Post.objects.create(title="p", author=ann)
    TwinPost.objects.create(title="p", author=ann)
    for model in (Post, TwinPost):
        assert list(model.objects.filter(author_id__in=[0]).values_list("title", flat=True)) == []
        assert list(model.objects.exclude(author_id__in=[0]).values_list("title", flat=True)) == [
            "p"
        ]
