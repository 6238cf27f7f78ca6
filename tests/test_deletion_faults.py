"""Faults during a delete across databases: what each alias holds afterwards.

These tests commit for real (``transaction=True``): a failure before the
commits must leave every alias as it was; a failure between commits may only
leave references to deleted rows (which ``crossdb.audit`` reports), never a
dependent deleted while the row it pointed at stayed.
"""

import contextlib
import os
from contextlib import ExitStack, contextmanager

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, OperationalError, connections
from django.db.models import signals
from django.db.models.deletion import Collector

from crossdb import audit, deletion, deletion_2pc
from crossdb.testing import capture_queries
from tests.ondelete.worlds import CROSS, build, home_alias, snapshot

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


class Boom(Exception):
    pass


@contextmanager
def failing_statement(alias, verb, error):
    """Make the first ``verb`` statement (DELETE, UPDATE) sent to ``alias`` raise ``error``."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(verb):
            raise error
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(wrapper):
        yield


@contextmanager
def failing_commit(alias):
    """Make committing ``alias`` fail, as a lost connection or a server error would.

    Yield the list of aliases committed, in order.
    """
    committed = []
    with pytest.MonkeyPatch.context() as patch:
        for name in connections:
            real = connections[name].commit

            def commit(real=real, name=name):
                if name == alias:
                    raise OperationalError(f"commit on {name} failed (injected)")
                real()
                committed.append(name)

            patch.setattr(connections[name], "commit", commit)
        yield committed


def _is_on(alias, name):
    return home_alias(getattr(CROSS, name, User)) == alias


def test_a_raising_signal_receiver_leaves_every_alias_as_it_was():
    users = build(CROSS)
    before = snapshot(CROSS)

    def explode(sender, **kwargs):
        raise Boom

    # post_delete of notes fires after the fast deletes and updates on every alias.
    signals.post_delete.connect(explode, sender=CROSS.Note)
    try:
        with pytest.raises(Boom):
            users["ann"].delete()
    finally:
        signals.post_delete.disconnect(explode, sender=CROSS.Note)
    assert snapshot(CROSS) == before


@pytest.mark.parametrize("alias", ["default", "blog_db", "shop_db"])
@pytest.mark.parametrize(
    "verb, error",
    [
        ("DELETE", DatabaseError("injected")),
        ("UPDATE", DatabaseError("injected")),
        ("DELETE", OperationalError("server closed the connection unexpectedly")),
    ],
    ids=["error on delete", "error on update", "lost connection"],
)
def test_a_database_error_on_any_alias_leaves_every_alias_as_it_was(alias, verb, error):
    users = build(CROSS)
    before = snapshot(CROSS)
    if verb == "UPDATE" and alias != home_alias(CROSS.Ref):
        # Only the refs' alias gets updates (SET_*): fail its deletes instead.
        verb = "DELETE"
    with failing_statement(alias, verb, error):
        with pytest.raises(DatabaseError):
            users["ann"].delete()
    assert snapshot(CROSS) == before


def test_commit_order_puts_referenced_rows_first():
    users = build(CROSS)
    collector = Collector(using="default")
    collector.collect([users["ann"]])
    aliases = deletion.involved_aliases(collector)
    assert aliases == {
        home_alias(model) for model in (User, CROSS.Post, CROSS.Quote, CROSS.Mention)
    }
    order = deletion.commit_order(collector, aliases)
    assert order.index("default") < order.index(home_alias(CROSS.Post))
    assert order.index(home_alias(CROSS.Post)) < order.index(home_alias(CROSS.Mention))


def test_commits_happen_in_that_order():
    users = build(CROSS)
    with failing_commit(alias=None) as committed:
        users["ann"].delete()
    assert committed == ["default", "blog_db", "shop_db"]


def test_failed_first_commit_leaves_every_alias_as_it_was():
    users = build(CROSS)
    before = snapshot(CROSS)
    with failing_commit("default"), pytest.raises(OperationalError):
        users["ann"].delete()
    assert snapshot(CROSS) == before


@pytest.mark.parametrize("alias", ["blog_db", "shop_db"])
def test_failed_later_commit_only_leaves_dangling_references(alias):
    users = build(CROSS)
    before = snapshot(CROSS)
    with failing_commit(alias) as committed, pytest.raises(OperationalError):
        users["ann"].delete()
    assert "default" in committed and alias not in committed
    after = snapshot(CROSS)
    assert after["User"] == [name for name in before["User"] if name != "ann"]
    for name in before:
        labels_before = [row[0] for row in before[name]]
        labels_after = [row[0] for row in after[name]]
        if name == "User":
            continue
        if name in ("Ref", "Guard"):
            continue  # rows kept by their rule (SET_*, DO_NOTHING) or untouched
        if any(_is_on(done, name) for done in committed):
            # Committed: the whole delete happened there.
            assert not any("ann" in str(label) for label in labels_after), name
        else:
            # Not committed: every row is still there, some now dangling.
            assert labels_after == labels_before, name
    if "blog_db" in committed:
        assert [row[0] for row in after["Post"]] == ["b1"]
        assert [row[0] for row in after["Comment"]] == ["bob on b1"]
    # The audit finds exactly the references left pointing at committed deletes.
    found = {report.label: report.dangling_rows for report in audit.audit()}
    left = {
        "blog.Post.author": (CROSS.Post, User, 2),
        "shop.Mention.post": (CROSS.Mention, CROSS.Post, 1),
        "ondelete.Quote.post": (CROSS.Quote, CROSS.Post, 1),
        "ondelete.Note.user": (CROSS.Note, User, 1),
    }
    for label, (model, target, rows) in left.items():
        dangling = home_alias(target) in committed and home_alias(model) not in committed
        assert found[label] == (rows if dangling else 0), label
    assert sum(found.values()) >= 2


def _two_phase_path(settings):
    """Opt in; return "2pc" when the delete will use it, else what it does instead."""
    settings.CROSSDB_DELETE_TWO_PHASE_COMMIT = True
    order = ["default", "blog_db", "shop_db"]
    if not deletion_2pc.applies(order):
        assert any(connections[alias].vendor != "postgresql" for alias in order)
        return "ordered commits"
    for alias in order:
        with connections[alias].cursor() as cursor:
            cursor.execute("SHOW max_prepared_transactions")
            if int(cursor.fetchone()[0]) < 1:
                # CI enables prepared transactions: there the real path must run.
                assert not os.environ.get("CROSSDB_REQUIRE_2PC"), (
                    f"CROSSDB_REQUIRE_2PC is set but {alias!r}'s server has "
                    "max_prepared_transactions = 0"
                )
                return "refused"
    return "2pc"


@contextmanager
def server_without_prepared_transactions(order):
    """Make every alias's server answer max_prepared_transactions = 0."""

    def wrapper(execute, sql, params, many, context):
        if sql.strip().upper() == "SHOW MAX_PREPARED_TRANSACTIONS":
            sql = "SELECT '0'"
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for alias in order:
            stack.enter_context(connections[alias].execute_wrapper(wrapper))
        yield


def test_two_phase_commit_is_refused_before_any_write_without_prepared_transactions(settings):
    users = build(CROSS)
    before = snapshot(CROSS)
    settings.CROSSDB_DELETE_TWO_PHASE_COMMIT = True
    order = ["default", "blog_db", "shop_db"]
    if not deletion_2pc.applies(order):
        # Not every alias is PostgreSQL: the ordered commits run instead.
        users["ann"].delete()
        assert not User.objects.filter(username="ann").exists()
        return
    with server_without_prepared_transactions(order):
        with pytest.raises(ImproperlyConfigured, match="max_prepared_transactions = 0"):
            users["ann"].delete()
    assert snapshot(CROSS) == before


def test_two_phase_commit_opt_in(settings):
    """All PostgreSQL: prepared on every alias, then committed; else ordered commits.

    A server with max_prepared_transactions = 0 (PostgreSQL's default) makes
    the opted-in delete fail before any write, naming the setting.
    """
    users = build(CROSS)
    before = snapshot(CROSS)
    path = _two_phase_path(settings)
    if path == "refused":
        with pytest.raises(ImproperlyConfigured, match="max_prepared_transactions"):
            users["ann"].delete()
        assert snapshot(CROSS) == before
        return
    with capture_queries() as queries:
        users["ann"].delete()
    assert not User.objects.filter(username="ann").exists()
    assert list(CROSS.Post.objects.values_list("title", flat=True)) == ["b1"]
    assert not CROSS.Note.objects.filter(label="note ann").exists()
    statements = [sql.split("'")[0] for alias in connections for sql in queries.sql(alias)]
    if path == "2pc":
        assert statements.count("PREPARE TRANSACTION ") == 3
        assert statements.count("COMMIT PREPARED ") == 3
        assert deletion_2pc.prepared() == {}
    else:
        assert "PREPARE TRANSACTION " not in statements


@pytest.mark.parametrize("failing", ["PREPARE TRANSACTION", "COMMIT PREPARED"])
def test_two_phase_commit_faults(settings, failing):
    """A failed prepare rolls every alias back; a failed commit is finished by recover()."""
    users = build(CROSS)
    before = snapshot(CROSS)
    if _two_phase_path(settings) != "2pc":
        # Without two-phase commit no such statement is ever sent.
        with failing_statement("shop_db", failing, OperationalError("injected")):
            with contextlib.suppress(ImproperlyConfigured):
                users["ann"].delete()
        return
    with failing_statement("shop_db", failing, OperationalError("injected")):
        if failing == "PREPARE TRANSACTION":
            with pytest.raises(OperationalError):
                users["ann"].delete()
        else:
            with pytest.raises(deletion_2pc.TwoPhaseCommitError) as error:
                users["ann"].delete()
    if failing == "PREPARE TRANSACTION":
        assert snapshot(CROSS) == before
        assert deletion_2pc.prepared() == {}
        return
    assert [alias for alias, _gid in error.value.pending] == ["shop_db"]
    assert list(deletion_2pc.prepared().values()) == ["shop_db"]
    assert CROSS.Note.objects.filter(label="note ann").exists()  # not committed yet
    assert list(deletion_2pc.recover().values()) == ["commit"]
    assert not CROSS.Note.objects.filter(label="note ann").exists()
    assert deletion_2pc.prepared() == {}


def _simulate(parts, crash_after, prepare_fails_at=None):
    """Replay two_phase()'s steps for ``parts`` aliases; stop after ``crash_after`` steps.

    Return (parts still prepared, whether the operation had begun committing).
    """
    steps = []
    prepared_now = []
    for part in range(1, parts + 1):
        if part == prepare_fails_at:
            for done in reversed(prepared_now):
                steps.append(("rollback", done))
            break
        steps.append(("prepare", part))
        prepared_now.append(part)
    else:
        steps += [("commit", part) for part in range(1, parts + 1)]
    present, committing = set(), False
    for action, part in steps[:crash_after]:
        if action == "prepare":
            present.add(part)
        else:
            present.discard(part)
            committing = committing or action == "commit"
    return present, committing, all(action != "rollback" for action, _ in steps)


@pytest.mark.django_db(transaction=False, databases=[])
@pytest.mark.parametrize("parts", [2, 3, 4])
def test_recovery_rule_finishes_every_interrupted_operation_consistently(parts):
    """Whatever step a process dies after, ``decide()`` completes it one way for all parts."""
    for prepare_fails_at in (None, *range(1, parts + 1)):
        for crash_after in range(0, 3 * parts):
            present, committing, could_commit = _simulate(parts, crash_after, prepare_fails_at)
            if not present:
                continue
            action = deletion_2pc.decide(present, parts)
            if committing:
                assert action == "commit"
            elif present != set(range(1, parts + 1)) or not could_commit:
                assert action == "rollback", (parts, prepare_fails_at, crash_after, present)
