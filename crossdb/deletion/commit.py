"""The transactions of a delete across databases, and the order they commit in.

A delete writes inside one transaction per alias.  Where the caller already
runs inside ``transaction.atomic()`` on an alias (its own block,
``ATOMIC_REQUESTS``, a test case), the writes on that alias are part of the
caller's transaction ("joined").  The other aliases get a transaction opened
here ("free"), at the first row lock (``open_for_delete``) or before the first
write, and:

- with no joined alias, the free aliases commit one after the other in
  ``commit_order()`` (referenced rows' alias first); a failed commit rolls
  back every alias not committed yet;
- with joined aliases, the free aliases stay open and commit right after the
  caller's transactions on every joined alias have committed (a callback run
  first among the joined connection's ``on_commit`` callbacks); if a joined
  transaction rolls back instead (its block raised, its commit failed, or a
  savepoint around the delete rolled back), the free aliases roll back too;
- with ``CROSSDB_DELETE_TWO_PHASE_COMMIT``, free PostgreSQL aliases prepare
  then commit (``crossdb.deletion_2pc``).

A ``transaction.on_commit`` callback that raises after an alias committed
does not stop the others from committing: the error is raised once they
have.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from functools import partial

from django.db import connections, transaction

from crossdb import deletion_2pc


class Transactions:
    """The outermost atomic blocks one delete opened, by alias."""

    def __init__(self):
        self.atomics = {}
        self.committed = set()


def _transactions(collector, state) -> Transactions:
    if state.transactions is None:
        state.transactions = Transactions()
        # A collector dropped without delete() (a caller that only collects)
        # leaves nothing open.
        weakref.finalize(collector, _rollback_all, state.transactions)
    return state.transactions


def _enter(tx: Transactions, alias: str) -> None:
    atomic = transaction.atomic(using=alias, savepoint=False)
    atomic.__enter__()
    tx.atomics[alias] = atomic
    # First among this transaction's callbacks: tells a failed commit from a
    # callback that raised after the commit.
    transaction.on_commit(partial(tx.committed.add, alias), using=alias, robust=True)


def open_for_delete(collector, state, alias: str) -> None:
    """Make sure the delete's writes and locks on ``alias`` run inside a transaction."""
    if connections[alias].in_atomic_block:
        return  # the caller's transaction, or one opened here already
    _enter(_transactions(collector, state), alias)


def _rollback(alias: str, atomic) -> None:
    connection = connections[alias]
    if connection.in_atomic_block:
        connection.set_rollback(True)
        atomic.__exit__(None, None, None)


def _rollback_all(tx: Transactions) -> None:
    atomics, tx.atomics = tx.atomics, {}
    for alias, atomic in atomics.items():
        _rollback(alias, atomic)


def rollback_opened(state) -> None:
    """Roll back every transaction the delete opened."""
    if state.transactions is not None:
        _rollback_all(state.transactions)


def commit_in_order(order, atomics, tx: Transactions) -> None:
    """Commit ``atomics`` in ``order``; after a failed commit, roll back the rest."""
    callback_error = None
    for index, alias in enumerate(order):
        try:
            atomics[alias].__exit__(None, None, None)
        except Exception as error:
            if alias not in tx.committed:
                for rest in order[index + 1 :]:
                    _rollback(rest, atomics[rest])
                raise
            callback_error = callback_error or error
    if callback_error is not None:
        raise callback_error


class _HandOff:
    """Commit the free aliases once every joined alias committed; else roll them back."""

    def __init__(self, joined, free, atomics, tx):
        self.waiting = set(joined)
        self.free, self.atomics, self.tx = free, atomics, tx
        self.done = False

    def committed(self, alias) -> None:
        self.waiting.discard(alias)
        if not self.waiting and not self.done:
            self.done = True
            commit_in_order(self.free, self.atomics, self.tx)

    def abandoned(self, alias) -> None:
        if alias in self.waiting and not self.done:
            self.done = True
            for free_alias in self.free:
                _rollback(free_alias, self.atomics[free_alias])


class _OnCommit:
    def __init__(self, hand_off, alias):
        self.hand_off, self.alias = hand_off, alias

    def __call__(self):
        self.hand_off.committed(self.alias)


def hand_off(joined, free, atomics, tx) -> None:
    """Tie the free aliases' transactions to the caller's on the ``joined`` aliases."""
    shared = _HandOff(joined, free, atomics, tx)
    for alias in joined:
        callback = _OnCommit(shared, alias)
        transaction.on_commit(callback, using=alias)
        # Run before the caller's own callbacks: one of them raising must not
        # keep the free aliases from committing.
        hooks = connections[alias].run_on_commit
        hooks.insert(0, hooks.pop())
        # Django drops the callback when the transaction (or the savepoint
        # around the delete) rolls back or the connection closes.
        weakref.finalize(callback, shared.abandoned, alias)


@contextmanager
def for_delete(collector, state, order):
    """Run the block's writes in the delete's transactions; commit as the module says."""
    tx = _transactions(collector, state)
    joined = [a for a in order if a not in tx.atomics and connections[a].in_atomic_block]
    free = [a for a in order if a not in joined]
    two_phase = not joined and deletion_2pc.applies(free)
    try:
        if two_phase:
            for alias in free:
                deletion_2pc.check_server(alias)
        for alias in free:
            if alias not in tx.atomics:
                _enter(tx, alias)
        yield
    except BaseException:
        _rollback_all(tx)
        raise
    atomics = {alias: tx.atomics.pop(alias) for alias in free}
    if two_phase:
        deletion_2pc.finish(free, atomics)
    elif joined:
        if free:
            hand_off(joined, free, atomics, tx)
    else:
        commit_in_order(free, atomics, tx)
