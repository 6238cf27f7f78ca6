"""Two-phase commit for a delete whose aliases are all PostgreSQL (opt-in).

With ``CROSSDB_DELETE_TWO_PHASE_COMMIT = True`` in the settings, a delete that
writes to two or more aliases, all PostgreSQL and none already inside an
atomic block, ends with ``PREPARE TRANSACTION`` on every alias (phase one) and
then ``COMMIT PREPARED`` on each (phase two), instead of one plain commit after
the other.  A failure before every alias has prepared rolls every alias back.

Each alias's transaction is named ``crossdb-<operation>-<i>of<n>``.  Parts are
prepared in order 1..n, rolled back in order n..1 and committed in order 1..n,
so a process that dies half way leaves prepared transactions whose fate
``recover()`` decides from which parts remain (``decide()``).

The server must allow prepared transactions (``max_prepared_transactions``
above 0, a setting that needs a server restart); ``two_phase()`` checks it on
every alias before the first write.
"""

from __future__ import annotations

import re
import uuid
from contextlib import ExitStack, contextmanager

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction

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
    """Return True when a delete on the aliases of ``order`` uses two-phase commit."""
    return (
        enabled()
        and len(order) > 1
        and all(connections[alias].vendor == "postgresql" for alias in order)
        # Inside an atomic block, the enclosing block commits, not crossdb.
        and not any(connections[alias].in_atomic_block for alias in order)
    )


def _execute(alias, statement) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(statement)


def check_server(alias) -> None:
    """Raise ImproperlyConfigured unless ``alias``'s server allows prepared transactions."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW max_prepared_transactions")
        (value,) = cursor.fetchone()
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


@contextmanager
def two_phase(order):
    """Run the block in one transaction per alias; commit them all or none."""
    for alias in order:
        check_server(alias)
    names = gids(order)
    prepared = []
    try:
        with ExitStack() as stack:
            for alias in reversed(order):
                stack.enter_context(transaction.atomic(using=alias, savepoint=False))
            yield
            for alias, gid in zip(order, names, strict=True):
                # After PREPARE the session has no open transaction: leaving
                # the atomic block then commits nothing.
                _execute(alias, f"PREPARE TRANSACTION '{gid}'")
                prepared.append((alias, gid))
    except BaseException:
        for alias, gid in reversed(prepared):
            _execute(alias, f"ROLLBACK PREPARED '{gid}'")
        raise
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
    """Finish every operation left prepared by a failed process; return ``{gid: action}``."""
    operations = {}
    for gid, alias in prepared(aliases).items():
        match = _GID.match(gid)
        if match:
            key = (match["operation"], int(match["parts"]))
            operations.setdefault(key, {})[int(match["part"])] = (gid, alias)
    actions = {}
    for (_operation, parts), present in operations.items():
        action = decide(present, parts)
        for _part, (gid, alias) in sorted(present.items()):
            _execute(alias, f"{action.upper()} PREPARED '{gid}'")
            actions[gid] = action
    return actions
