"""Two-phase commit for a delete whose aliases are all PostgreSQL (opt-in).

With ``CROSSDB_DELETE_TWO_PHASE_COMMIT = True`` in the settings, a delete that
writes to two or more aliases, all PostgreSQL and none inside a caller's
atomic block, ends with ``PREPARE TRANSACTION`` on every alias (phase one) and
then ``COMMIT PREPARED`` on each (phase two), instead of one plain commit after
the other.  A failure before every alias has prepared rolls every alias back.

Each alias's transaction is named ``crossdb-<operation>-<i>of<n>``.  Parts are
prepared in order 1..n, rolled back in order n..1 and committed in order 1..n,
so a process that dies half way leaves prepared transactions whose fate
``recover()`` decides from which parts remain (``decide()``).

The server must allow prepared transactions (``max_prepared_transactions``
above 0, a setting that needs a server restart); the delete checks it on
every alias before the first write.

``recover()`` cannot race a live delete: the process that prepares an
operation holds a session advisory lock named after it on every alias until
its last ``COMMIT PREPARED`` (or ``ROLLBACK PREPARED``), and ``recover()``
touches only operations whose lock it can take.  A process that dies loses its
sessions and their locks, so its prepared transactions become recoverable.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

SETTING = "CROSSDB_DELETE_TWO_PHASE_COMMIT"
GID_PREFIX = "crossdb-"
_GID = re.compile(r"^crossdb-(?P<operation>[0-9a-f]{32})-(?P<part>\d+)of(?P<parts>\d+)$")


class TwoPhaseCommitError(DatabaseError):
    """Every alias prepared, but committing some of them failed.

    The transactions named in ``pending`` are still prepared on their servers;
    ``recover()`` commits them.
    """

    def __init__(self, message, pending):
        super().__init__(message)
        self.pending = pending


def enabled() -> bool:
    """Return True when the project opted in to two-phase commit."""
    return bool(getattr(settings, SETTING, False))


def applies(order) -> bool:
    """Return True when a delete committing the aliases of ``order`` uses two-phase commit."""
    return (
        enabled()
        and len(order) > 1
        and all(connections[alias].vendor == "postgresql" for alias in order)
    )


def _execute(alias, statement, params=None):
    with connections[alias].cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone() if cursor.description else None


def check_server(alias) -> None:
    """Raise ImproperlyConfigured unless ``alias``'s server allows prepared transactions."""
    (value,) = _execute(alias, "SHOW max_prepared_transactions")
    if int(value) < 1:
        raise ImproperlyConfigured(
            f"{SETTING} is set, but the PostgreSQL server of database {alias!r} has "
            f"max_prepared_transactions = {value}: set it above 0 in postgresql.conf "
            f"(a restart is needed) or leave {SETTING} unset."
        )


def gids(order) -> list[str]:
    """Return one transaction name per alias of ``order``, all of one operation."""
    operation = uuid.uuid4().hex
    return [f"{GID_PREFIX}{operation}-{i}of{len(order)}" for i in range(1, len(order) + 1)]


# The advisory lock an operation's owner holds on every alias while any of its
# parts is prepared: (a constant class, the operation's hash).
_LOCK_CLASS = 0x43524F53  # "CROS"


def _operation(gid) -> str:
    return _GID.match(gid)["operation"]


def _lock(alias, operation, *, wait) -> bool:
    function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    row = _execute(alias, f"SELECT {function}(%s, hashtext(%s))", [_LOCK_CLASS, operation])
    return wait or bool(row[0])


def _unlock(alias, operation) -> None:
    _execute(alias, "SELECT pg_advisory_unlock(%s, hashtext(%s))", [_LOCK_CLASS, operation])


def _usable(alias) -> None:
    # A connection that died during phase two is replaced, so the advice of
    # TwoPhaseCommitError (run recover()) works in the same process.
    connection = connections[alias]
    if (
        connection.connection is not None
        and not connection.in_atomic_block
        and not connection.is_usable()
    ):
        connection.close()


def finish(order, atomics) -> None:
    """End the open ``atomics`` of ``order`` with PREPARE, then COMMIT PREPARED on each.

    The process owns the operation (a session advisory lock on every alias)
    from before the first PREPARE to after the last COMMIT PREPARED, so a
    concurrent ``recover()`` leaves it alone.
    """
    names = gids(order)
    operation = _operation(names[0])
    for alias in order:
        _lock(alias, operation, wait=True)
    prepared = []
    try:
        try:
            for alias, gid in zip(order, names, strict=True):
                _execute(alias, f"PREPARE TRANSACTION '{gid}'")
                prepared.append((alias, gid))
        except BaseException:
            for alias in order:
                connections[alias].set_rollback(True)
                atomics[alias].__exit__(None, None, None)
            raise
        # After PREPARE the sessions have no open transaction: leaving the
        # atomic blocks commits nothing.
        for alias in order:
            atomics[alias].__exit__(None, None, None)
    except BaseException:
        for alias, gid in reversed(prepared):
            _execute(alias, f"ROLLBACK PREPARED '{gid}'")
        _release(order, operation)
        raise
    try:
        for index, (alias, gid) in enumerate(prepared):
            try:
                _execute(alias, f"COMMIT PREPARED '{gid}'")
            except DatabaseError as exc:
                pending = prepared[index:]
                raise TwoPhaseCommitError(
                    f"Every database prepared the delete, but COMMIT PREPARED failed on "
                    f"{alias!r}; still prepared: {pending}. Run "
                    f"crossdb.deletion_2pc.recover() to commit them.",
                    pending,
                ) from exc
    finally:
        _release(order, operation)


def _release(order, operation) -> None:
    for alias in order:
        try:
            _usable(alias)
            _unlock(alias, operation)
        except DatabaseError:
            # The session is gone, and its lock with it.
            connections[alias].close()


def decide(parts_present, parts) -> str:
    """Return ``"commit"`` or ``"rollback"`` for an operation's remaining prepared parts.

    Part 1 is prepared first, rolled back last and committed first: while it
    remains, the operation committed nothing, and it may commit only if every
    part prepared; once it is gone, committing has begun.
    """
    parts_present = set(parts_present)
    if 1 in parts_present:
        return "commit" if parts_present == set(range(1, parts + 1)) else "rollback"
    return "commit"


def prepared(aliases=None) -> dict[str, str]:
    """Return ``{gid: alias}`` for crossdb's prepared transactions on PostgreSQL aliases."""
    found = {}
    for alias in aliases or connections:
        if connections[alias].vendor != "postgresql":
            continue
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT gid FROM pg_prepared_xacts "
                "WHERE database = current_database() AND gid LIKE %s",
                [GID_PREFIX + "%"],
            )
            for (gid,) in cursor.fetchall():
                found.setdefault(gid, alias)
    return found


def recover(aliases=None) -> dict[str, str]:
    """Finish every operation left prepared by a process that is gone; return ``{gid: action}``.

    An operation whose owner still holds its advisory lock on any alias (a
    live delete between PREPARE and COMMIT PREPARED) is left alone.
    """
    aliases = [a for a in (aliases or connections) if connections[a].vendor == "postgresql"]
    for alias in aliases:
        _usable(alias)
    operations = {}
    for gid, alias in prepared(aliases).items():
        match = _GID.match(gid)
        if match:
            key = (match["operation"], int(match["parts"]))
            operations.setdefault(key, {})[int(match["part"])] = (gid, alias)
    actions = {}
    for (operation, parts), present in operations.items():
        holders = sorted({alias for _gid, alias in present.values()})
        locked = []
        try:
            for alias in holders:
                if not _lock(alias, operation, wait=False):
                    break
                locked.append(alias)
            else:
                # Owned now: read again what remains, the owner may have
                # finished between the listing and the lock.
                remaining = prepared(holders)
                present = {
                    part: (gid, alias) for part, (gid, alias) in present.items() if gid in remaining
                }
                action = decide(present, parts)
                for _part, (gid, alias) in sorted(present.items()):
                    _execute(alias, f"{action.upper()} PREPARED '{gid}'")
                    actions[gid] = action
        finally:
            for alias in locked:
                _unlock(alias, operation)
    return actions
