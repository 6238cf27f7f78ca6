"""Deletes that cascade across databases, through Django's own ``Collector``.

Django's ``Collector(using=alias)`` looks for dependents, updates and deletes
them on one alias.  Every entry point (``instance.delete()``,
``QuerySet.delete()``, ``adelete()``, the admin's delete views and their
confirmation page, ``crossdb_audit --fix``) goes through it, so crossdb
extends the Collector through its overridable methods, each calling Django's
own:

- collecting (``crossdb.deletion.collector``): every row is read on its write
  alias, a crossdb relation's dependents on their own alias, after the rows
  they depend on are locked (``crossdb.deletion.locks``);
- deleting (``delete()`` below): a collection on one alias is Django's
  ``delete()`` unchanged; across aliases it is split into one share per alias
  (``crossdb.deletion.split``), each deleted by Django's ``delete()``, inside
  the transactions of ``crossdb.deletion.commit`` (joined to the caller's,
  committed in ``commit_order()``).

Nothing is written before everything is collected, so a ``ProtectedError`` or
``RestrictedError`` raised anywhere leaves every alias untouched.

``install()`` is the ``deletion`` seam of ``crossdb.seams``.
"""

from __future__ import annotations

from django.db.models.deletion import Collector

from crossdb.deletion import commit, split
from crossdb.deletion.collector import (
    DJANGO,
    ID_BATCH_SIZE,
    alias_of,
    crossdb_related_objects,
    installed_methods,
    state_of,
)
from crossdb.deletion.locks import lock_rows_for_delete

__all__ = [
    "ID_BATCH_SIZE",
    "alias_of",
    "commit_order",
    "crossdb_related_objects",
    "delete",
    "install",
    "installed",
    "involved_aliases",
    "lock_rows_for_delete",
]


def involved_aliases(collector) -> set[str]:
    """Return every alias ``collector.delete()`` would write to."""
    return set(split.split(collector))


def commit_order(collector, aliases) -> list[str]:
    """Return ``aliases`` in commit order: an alias before those of its dependents.

    A failure between two commits then leaves dependents pointing at deleted
    rows (dangling references, which an audit finds), never dependents
    deleted while the rows they pointed at stay.  Aliases on a cycle keep the
    order in which the cascade first reached them.
    """
    state = state_of(collector)
    first_seen = [state.root_alias]
    for parent, child in state.edges:
        first_seen += [parent, child]
    rank = {}
    for alias in first_seen + sorted(aliases):
        rank.setdefault(alias, len(rank))
    edges = {
        (parent, child)
        for parent, child in state.edges
        if parent != child and parent in aliases and child in aliases
    }
    order, pending = [], set(aliases)
    while pending:
        ready = [a for a in pending if not any(p in pending and c == a for p, c in edges)]
        # A cycle leaves nothing ready: take the alias the cascade reached first.
        chosen = min(ready or pending, key=rank.__getitem__)
        order.append(chosen)
        pending.discard(chosen)
    return order


def delete(self):
    """Delete what was collected, each alias's share by Django's own ``delete()``."""
    state = state_of(self)
    shares = split.split(self)
    opened = set(state.transactions.atomics) if state.transactions else set()
    aliases = set(shares) | opened
    if aliases <= {self.using} and not opened:
        return DJANGO["delete"](self)
    order = commit_order(self, aliases)
    with commit.for_delete(self, state, order):
        return split.delete_shares(shares, order)


def install() -> None:
    """Install crossdb's methods on Django's Collector (idempotent)."""
    methods = {**installed_methods(), "delete": delete}
    delete.crossdb_original = DJANGO["delete"]
    for name, method in methods.items():
        if getattr(Collector, name) is not method:
            setattr(Collector, name, method)


def installed() -> bool:
    """Return True when ``install()`` has extended Django's Collector."""
    return all(
        getattr(Collector, name) is method
        for name, method in {**installed_methods(), "delete": delete}.items()
    )
