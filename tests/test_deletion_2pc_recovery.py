"""Two-phase recovery cannot race a live delete.

One process deletes with two-phase commit while another runs
``deletion_2pc.recover()`` in a loop; the delete's advisory lock keeps the
recovering process away from operations a live process owns, so no round
loses a row.  A ``TwoPhaseCommitError`` leaves connections usable, so the
advised ``recover()`` works in the same process.
"""

import multiprocessing
import time

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connections

from crossdb import deletion_2pc
from tests.blog.models import Post
from tests.shop.models import Badge
from tests.test_deletion_faults import _two_phase_path

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

ROUNDS = 50
ALIASES = ["default", "blog_db", "shop_db"]


def _recover_loop(stop, actions):
    connections.close_all()
    try:
        while not stop.is_set():
            actions.value += len(deletion_2pc.recover(ALIASES))
    finally:
        connections.close_all()


def _slow_commit_prepared(execute, sql, params, many, context):
    if sql.startswith(("COMMIT PREPARED", "PREPARE TRANSACTION")):
        # Widen the window between the phases, where the old recover() struck.
        time.sleep(0.01)
    return execute(sql, params, many, context)


def test_recover_in_a_loop_beside_live_deletes_loses_no_row(settings):
    path = _two_phase_path(settings)
    if path != "2pc":
        # Not every alias on a PostgreSQL server allowing prepared
        # transactions: deletes commit one alias after the other.
        assert path in ("ordered commits", "refused")
        return
    connections.close_all()
    context = multiprocessing.get_context("fork")
    stop, actions = context.Event(), context.Value("i", 0)
    recoverer = context.Process(target=_recover_loop, args=(stop, actions))
    recoverer.start()
    started = time.monotonic()
    try:
        for round_ in range(ROUNDS):
            user = User.objects.create(username=f"r{round_}")
            Post.objects.create(title=f"p{round_}", author=user)
            Badge.objects.create(user=user, label=f"b{round_}")
            with connections["default"].execute_wrapper(_slow_commit_prepared):
                user.delete()
            assert not User.objects.filter(username=f"r{round_}").exists()
            assert not Post.objects.filter(title=f"p{round_}").exists()
            assert not Badge.objects.filter(label=f"b{round_}").exists()
            assert time.monotonic() - started < 60
    finally:
        stop.set()
        recoverer.join(20)
    assert recoverer.exitcode == 0
    # No live operation was touched, and none was left behind.
    assert actions.value == 0
    assert deletion_2pc.prepared(ALIASES) == {}


def test_after_a_failed_commit_prepared_recover_works_in_the_same_process(settings):
    path = _two_phase_path(settings)
    if path != "2pc":
        assert path in ("ordered commits", "refused")
        return
    user = User.objects.create(username="lost")
    Post.objects.create(title="lost post", author=user)

    def lose_the_connection(execute, sql, params, many, context):
        if sql.startswith("COMMIT PREPARED"):
            # The server goes away: the session is gone with it.
            connections["blog_db"].connection.close()
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connections["blog_db"].execute_wrapper(lose_the_connection):
        with pytest.raises(deletion_2pc.TwoPhaseCommitError) as raised:
            user.delete()
    assert raised.value.pending
    actions = deletion_2pc.recover(ALIASES)
    assert set(actions.values()) == {"commit"}
    assert not User.objects.filter(username="lost").exists()
    assert not Post.objects.filter(title="lost post").exists()
    assert deletion_2pc.prepared(ALIASES) == {}
