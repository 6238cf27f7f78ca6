"""A delete inside the caller's transaction is part of it, on every alias.

The rows committed for real (``transaction=True``): the caller's block on one
alias decides for every alias the delete writes to.
"""

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connections, transaction
from django.db.models import signals
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path, reverse

from crossdb import audit
from tests.ondelete.worlds import CROSS, TWIN, build, home_alias, snapshot
from tests.test_deletion_faults import Boom, failing_commit

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _delete_ann_and_raise(request, pk):
    User.objects.get(pk=pk).delete()
    raise Boom


def _delete_ann(request, pk):
    User.objects.get(pk=pk).delete()
    return HttpResponse("deleted")


urlpatterns = [
    path("raise/<int:pk>/", _delete_ann_and_raise),
    path("delete/<int:pk>/", _delete_ann),
]


def test_the_callers_rollback_undoes_every_alias():
    users = build(CROSS)
    before = snapshot(CROSS)
    with pytest.raises(Boom), transaction.atomic(using="default"):
        users["ann"].delete()
        raise Boom
    assert snapshot(CROSS) == before
    assert not any(connections[alias].in_atomic_block for alias in connections)


@pytest.mark.parametrize("alias", ["blog_db", "shop_db"])
def test_a_block_on_a_dependents_alias_is_joined_too(alias):
    users = build(CROSS)
    before = snapshot(CROSS)
    with pytest.raises(Boom), transaction.atomic(using=alias):
        users["ann"].delete()
        raise Boom
    assert snapshot(CROSS) == before


def test_a_rolled_back_savepoint_around_the_delete_undoes_every_alias():
    users = build(CROSS)
    before = snapshot(CROSS)
    with transaction.atomic(using="default"):
        with pytest.raises(Boom), transaction.atomic(using="default"):
            users["ann"].delete()
            raise Boom
    assert snapshot(CROSS) == before


def test_a_failing_commit_of_the_callers_block_undoes_every_alias():
    users = build(CROSS)
    before = snapshot(CROSS)
    with failing_commit("default"), pytest.raises(OperationalError):
        with transaction.atomic(using="default"):
            users["ann"].delete()
    assert snapshot(CROSS) == before


def test_a_committing_callers_block_leaves_the_rows_of_the_plain_foreign_keys():
    outcomes = []
    for world in (CROSS, TWIN):
        users = build(world)
        with transaction.atomic(using="default"):
            users["ann"].delete()
            # Until the caller commits, the other aliases' writes are pending.
            users["bob"].delete()
        outcomes.append(snapshot(world))
    assert outcomes[0] == outcomes[1]
    assert not any(connections[alias].in_atomic_block for alias in connections)


def test_the_other_aliases_commit_right_after_the_callers_block(monkeypatch):
    users = build(CROSS)
    with failing_commit(alias=None) as committed:
        with transaction.atomic(using="default"):
            users["ann"].delete()
            assert committed == []
    assert committed == ["default", "blog_db", "shop_db"]


def _raising_callback(sender, **kwargs):
    def explode():
        raise Boom

    transaction.on_commit(explode, using="default")


@pytest.mark.parametrize("caller_block", [False, True], ids=["own commit", "caller's block"])
def test_a_raising_on_commit_callback_leaves_no_dangling_rows(caller_block):
    outcomes = []
    for world in (CROSS, TWIN):
        users = build(world)
        signals.pre_delete.connect(_raising_callback, sender=User)
        try:
            with pytest.raises(Boom):
                if caller_block:
                    with transaction.atomic(using="default"):
                        transaction.on_commit(lambda: (_ for _ in ()).throw(Boom()))
                        users["ann"].delete()
                else:
                    users["ann"].delete()
        finally:
            signals.pre_delete.disconnect(_raising_callback, sender=User)
        outcomes.append(snapshot(world))
    # default committed, and so did every other alias: the plain-FK outcome.
    assert outcomes[0] == outcomes[1]


@override_settings(ROOT_URLCONF=__name__)
def test_atomic_requests_a_view_that_deletes_then_raises_changes_nothing(client, monkeypatch):
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)
    users = build(CROSS)
    before = snapshot(CROSS)
    with pytest.raises(Boom):
        client.get(f"/raise/{users['ann'].pk}/")
    assert snapshot(CROSS) == before


@override_settings(ROOT_URLCONF=__name__)
def test_atomic_requests_a_view_that_deletes_deletes_on_every_alias(client, monkeypatch):
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)
    users = build(CROSS)
    assert client.get(f"/delete/{users['ann'].pk}/").status_code == 200
    assert list(CROSS.Post.objects.values_list("title", flat=True)) == ["b1"]
    assert not CROSS.Reply.objects.exists()


def test_the_admin_delete_view_under_a_failing_outer_commit_loses_nothing(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    users = build(CROSS)
    before = snapshot(CROSS)
    url = reverse("admin:auth_user_delete", args=[users["ann"].pk])
    with failing_commit("default"), pytest.raises(OperationalError):
        client.post(url, {"post": "yes"})
    assert snapshot(CROSS) == before


def test_crossdb_audit_fix_inside_the_callers_block_rolls_back_with_it():
    users = build(CROSS)
    # A user removed behind Django's back: its posts and their mentions dangle.
    User.objects.filter(pk=users["ann"].pk)._raw_delete("default")
    CROSS.Track.objects.all().delete()  # its RESTRICT would block the fix
    before = snapshot(CROSS)
    with pytest.raises(Boom), transaction.atomic(using=home_alias(CROSS.Post)):
        reports = audit.audit([CROSS.Post], ["author"], fix=True)
        assert reports[0].fixed_rows == 2
        raise Boom
    assert snapshot(CROSS) == before
    audit.audit([CROSS.Post], ["author"], fix=True)
    assert [row[0] for row in snapshot(CROSS)["Post"]] == ["b1"]
