"""Lock the rows a delete removes before their crossdb dependents are collected.

No database constraint stops a writer on another database from creating a
dependent of a row being deleted.  crossdb's write check takes a share lock
on the target row (``FOR KEY SHARE`` on PostgreSQL, ``LOCK IN SHARE MODE`` on
MariaDB) and holds it until the referencing write commits; the delete takes
``SELECT ... FOR UPDATE`` on the rows it deletes, on their write alias, inside
the delete's transaction, before it looks for their dependents, and holds it
until it commits.  One of the two waits for the other, so a dependent is
either seen by the delete (and deleted or updated with it) or refused by the
check (the target is gone): no orphan.

Django collects outside any transaction (``Model.delete()`` calls
``collect()`` then ``delete()``), so the delete's transaction on an alias is
opened here, at the first lock (``crossdb.deletion.commit.open_for_delete``),
and committed by ``delete()``.  SQLite has no row locks: a SQLite alias is
locked as a whole by its first write, so nothing is taken there.
"""

from __future__ import annotations

from django.db import connections

from crossdb.lookups import ids_in


def takes_row_locks(alias: str) -> bool:
    """Return True when ``alias``'s backend can lock rows with ``SELECT ... FOR UPDATE``."""
    return connections[alias].features.has_select_for_update


def lock_rows_for_delete(model, pks, alias: str) -> int:
    """Lock ``model``'s rows ``pks`` on ``alias`` until the current transaction ends.

    The caller has opened the transaction.  Return how many rows were locked
    (rows deleted meanwhile by another transaction are not).
    """
    if not pks or not takes_row_locks(alias):
        return 0
    rows = (
        model._base_manager.using(alias)
        .filter(ids_in("pk", list(pks)))
        .order_by()
        .select_for_update()
        .values_list("pk", flat=True)
    )
    return len(list(rows))
