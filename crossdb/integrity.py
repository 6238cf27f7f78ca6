"""Integrity on write: a crossdb reference holds like a deferred foreign key constraint.

Inside one database, ``Post.objects.create(author_id=<missing id>)`` fails with
``IntegrityError``: the constraint checks the target row (PostgreSQL and
SQLite defer the check to the commit of the writing transaction) and, on
PostgreSQL, takes a ``FOR KEY SHARE`` lock on it so that a concurrent delete
of the target waits until the referencing row has committed.  Across
databases no constraint exists, so crossdb does the same work itself:

- every INSERT and UPDATE that writes a crossdb key column (``save()``,
  ``create()``, ``bulk_create()``, ``bulk_update()``, ``QuerySet.update()``,
  ``loaddata``) is checked against the target table on the target's *write*
  alias (never a replica the routers send reads to), one query per field and
  batch, with ``crossdb.lookups.ids_in`` carrying the ids;
- outside a transaction the check runs before the write, and the target rows
  stay share-locked (``FOR KEY SHARE`` on PostgreSQL, ``LOCK IN SHARE MODE``
  on MySQL/MariaDB) until the write has committed;
- inside a transaction the check is deferred to just before the commit of the
  source alias's outermost transaction, so a child may be written before its
  parent; the locks are held until that commit is done.  A savepoint rolled
  back drops the checks of the writes it undid, as Django does with
  ``on_commit`` callbacks.

A failed check raises ``MissingTargetError`` (an ``IntegrityError``) and
nothing is written: before the write in autocommit mode, or from the commit,
which ``atomic()`` then rolls back.  A delete must lock the rows it deletes
(``FOR UPDATE``) before it collects their dependents for the share lock to
keep orphans out (see ``crossdb.deletion``).  SQLite takes no row locks: a
delete on another SQLite file between the check and the commit is not seen.

Opting out: ``check_integrity=False`` on a field, ``CROSSDB_CHECK_INTEGRITY =
False`` in settings, or ``with integrity.unchecked():`` around writes that
dangle on purpose.  The hooks are the ``integrity`` seam (``crossdb.seams``):
``SQLInsertCompiler.execute_sql``, ``SQLUpdateCompiler.execute_sql`` and
``BaseDatabaseWrapper.commit``, ``rollback``, ``savepoint_rollback``, ``close``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, Value, When
from django.db.models.functions import Cast
from django.db.models.sql.compiler import SQLInsertCompiler, SQLUpdateCompiler
from django.db.models.sql.query import Query

from crossdb.lookups import ids_in

SETTING = "CROSSDB_CHECK_INTEGRITY"
# The share lock each vendor takes on the target rows; SQLite has none.
LOCK_CLAUSES = {"postgresql": " FOR KEY SHARE", "mysql": " LOCK IN SHARE MODE"}
# Checks waiting for the commit of a connection's transaction:
# [(savepoint ids open when the write ran, Check)], as Django keeps on_commit callbacks.
PENDING = "crossdb_pending_checks"

_unchecked: ContextVar[bool] = ContextVar("crossdb_integrity_unchecked", default=False)


class MissingTargetError(IntegrityError):
    """A crossdb key points at a row its target table does not have."""

    def __init__(self, field, alias: str, missing: list):
        self.field, self.alias, self.missing = field, alias, missing
        target = field.remote_field.model
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        super().__init__(
            f"{field.model._meta.label}.{field.name} points at {target._meta.object_name} "
            f"{field.target_field.attname}={missing[0]!r}{more}, which does not exist on "
            f"database {alias!r}.  Write the {target._meta.object_name} row first (in the "
            f"same transaction is enough), or see 'Integrity on write' in the docs to write "
            f"a dangling reference on purpose."
        )


class Check:
    """The values one write put into one crossdb field, to be found on ``alias``."""

    __slots__ = ("field", "alias", "values")

    def __init__(self, field, alias: str, values: set):
        self.field, self.alias, self.values = field, alias, values


@contextmanager
def unchecked():
    """Write without the integrity check inside the block (dangling rows on purpose)."""
    token = _unchecked.set(True)
    try:
        yield
    finally:
        _unchecked.reset(token)


def _enabled() -> bool:
    return not _unchecked.get() and getattr(settings, SETTING, True)


def _checked_fields(fields) -> list:
    return [f for f in fields if getattr(f, "crossdb", False) and f.check_integrity]


def _target_alias(field, instance=None) -> str:
    hints = {} if instance is None else {"instance": instance}
    return router.db_for_write(field.remote_field.model, **hints)


# -- what a write puts into crossdb columns --------------------------------


def insert_checks(compiler) -> list[Check]:
    """Return the checks an INSERT needs: one per crossdb field of the batch."""
    query = compiler.query
    fields = _checked_fields(query.fields)
    if not fields or not query.objs or not _enabled():
        return []
    checks = []
    for field in fields:
        values = {getattr(obj, field.attname) for obj in query.objs}
        values.discard(None)
        if values:
            checks.append(Check(field, _target_alias(field, query.objs[0]), values))
    return checks


def _select_of(compiler):
    """Return a queryset of the rows an UPDATE is about to write."""
    model = compiler.query.model
    queryset = model._base_manager.using(compiler.using).all()
    queryset.query = compiler.query.chain(klass=Query)
    return queryset


def _expression_values(expression) -> set | None:
    """Return the values an expression writes, or None if only the database knows."""
    if isinstance(expression, Value):
        return set() if expression.value is None else {expression.value}
    if isinstance(expression, Case):
        parts = [*expression.cases, expression.default]
    elif isinstance(expression, When):
        parts = [expression.result]
    elif isinstance(expression, Cast):
        parts = expression.get_source_expressions()
    else:
        return None
    values = set()
    for part in parts:
        found = _expression_values(part)
        if found is None:
            return None
        values |= found
    return values


def _written_values(compiler, field, value) -> set:
    if value is None:
        return set()
    if hasattr(value, "resolve_expression"):
        values = _expression_values(value)
        if values is None:
            # update(editor=F("author")) and the like: read what would be
            # written, in the same transaction as the write.
            rows = _select_of(compiler).annotate(crossdb_written=value)
            values = set(rows.values_list("crossdb_written", flat=True).distinct())
    elif hasattr(value, "prepare_database_save"):
        values = {value.prepare_database_save(field)}
    else:
        values = {value}
    values.discard(None)
    return values


def update_checks(compiler) -> list[Check]:
    """Return the checks an UPDATE needs: one per crossdb field it assigns."""
    updates = [(f, v) for f, _model, v in compiler.query.values if getattr(f, "crossdb", False)]
    if not updates or not _enabled():
        return []
    checks = []
    for field, value in updates:
        if field.check_integrity:
            values = _written_values(compiler, field, value)
            if values:
                checks.append(Check(field, _target_alias(field), values))
    return checks


# -- the check --------------------------------------------------------------


def _lock_clause(connection) -> str:
    return LOCK_CLAUSES.get(connection.vendor, "")


def _hold_locks(alias: str, stack: ExitStack) -> None:
    """Open a transaction on ``alias`` (held by ``stack``) if its locks need one."""
    connection = connections[alias]
    if _lock_clause(connection) and connection.get_autocommit():
        stack.enter_context(transaction.atomic(using=alias))
        if connection.vendor == "postgresql":
            # The transaction only holds row locks, which no crash keeps:
            # its commit need not wait for the WAL flush (a second fsync per write).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _lookup_sql(field, alias: str, values: list):
    """Return the SQL and parameters that select which of ``values`` exist."""
    connection = connections[alias]
    target, target_field = field.remote_field.model, field.target_field
    if len(values) == 1:
        # The common case (save(), create()): a plain equality, compiled once.
        qn = connection.ops.quote_name
        column = qn(target_field.column)
        sql = f"SELECT {column} FROM {qn(target._meta.db_table)} WHERE {column} = %s"
        return sql, [target_field.get_db_prep_value(values[0], connection)]
    rows = target._base_manager.using(alias).filter(ids_in(target_field.attname, values))
    rows = rows.order_by().values_list(target_field.attname)
    return rows.query.get_compiler(using=alias).as_sql()


def missing(field, alias: str, values: Iterable) -> list:
    """Return which of ``values`` have no row in ``field``'s target table on ``alias``.

    The rows found are share-locked until the end of ``alias``'s transaction.
    """
    connection = connections[alias]
    values = list(values)
    prepared = {field.target_field.get_db_prep_value(v, connection): v for v in values}
    sql, params = _lookup_sql(field, alias, values)
    with connection.cursor() as cursor:
        cursor.execute(sql + _lock_clause(connection), params)
        found = {row[0] for row in cursor.fetchall()}
    return [value for key, value in prepared.items() if key not in found]


def verify(checks: Iterable[Check], stack: ExitStack) -> None:
    """Run ``checks`` (merged per field and alias); raise if a target is missing.

    Transactions opened to hold the share locks stay open until ``stack`` closes.
    """
    merged: dict[tuple, set] = {}
    for check in checks:
        merged.setdefault((check.field, check.alias), set()).update(check.values)
    for (field, alias), values in merged.items():
        _hold_locks(alias, stack)
        absent = missing(field, alias, values)
        if absent:
            raise MissingTargetError(field, alias, absent)


def _defer(connection, checks: list[Check]) -> None:
    pending = connection.__dict__.setdefault(PENDING, [])
    sids = set(connection.savepoint_ids)
    pending.extend((sids, check) for check in checks)


def check_deferred(using: str) -> None:
    """Run the checks waiting for ``using``'s commit now (they stay pending)."""
    connection = connections[using]
    with ExitStack() as stack:
        verify((check for _sids, check in connection.__dict__.get(PENDING, ())), stack)


# -- the hooks (the ``integrity`` seam) -------------------------------------


def _guarded_write(compiler, checks: list[Check], write):
    connection = compiler.connection
    updating = isinstance(compiler, SQLUpdateCompiler)
    if not connection.get_autocommit():
        result = write()
        # An UPDATE that matched no row wrote nothing to check.
        if not (updating and isinstance(result, int) and result == 0):
            _defer(connection, checks)
        return result
    with ExitStack() as stack:
        # No transaction: check now and hold the locks over the write (one
        # transaction on the source alias too when it is the target's).
        try:
            verify(checks, stack)
        except MissingTargetError:
            if not updating or _select_of(compiler).exists():
                raise
        return write()


def _wrap_insert(original):
    def execute_sql(self, *args, **kwargs):
        checks = insert_checks(self)
        if not checks:
            return original(self, *args, **kwargs)
        return _guarded_write(self, checks, lambda: original(self, *args, **kwargs))

    execute_sql.crossdb_original = original
    return execute_sql


def _wrap_update(original):
    def execute_sql(self, result_type):
        checks = update_checks(self)
        if not checks:
            return original(self, result_type)
        return _guarded_write(self, checks, lambda: original(self, result_type))

    execute_sql.crossdb_original = original
    return execute_sql


def _wrap_commit(original):
    def commit(self):
        pending = self.__dict__.pop(PENDING, None)
        if not pending:
            return original(self)
        with ExitStack() as stack:
            verify((check for _sids, check in pending), stack)
            # The share locks are released when ``stack`` closes: after this commit.
            return original(self)

    commit.crossdb_original = original
    return commit


def _wrap_discard(original):
    def discard(self, *args, **kwargs):
        self.__dict__.pop(PENDING, None)
        return original(self, *args, **kwargs)

    discard.crossdb_original = original
    return discard


def _wrap_savepoint_rollback(original):
    def savepoint_rollback(self, sid):
        result = original(self, sid)
        if self.__dict__.get(PENDING):
            # The writes made since the savepoint are undone: so are their checks.
            self.__dict__[PENDING] = [(s, c) for s, c in self.__dict__[PENDING] if sid not in s]
        return result

    savepoint_rollback.crossdb_original = original
    return savepoint_rollback


HOOKS = (
    (SQLInsertCompiler, "execute_sql", _wrap_insert),
    (SQLUpdateCompiler, "execute_sql", _wrap_update),
    (BaseDatabaseWrapper, "commit", _wrap_commit),
    (BaseDatabaseWrapper, "rollback", _wrap_discard),
    (BaseDatabaseWrapper, "close", _wrap_discard),
    (BaseDatabaseWrapper, "savepoint_rollback", _wrap_savepoint_rollback),
)


def install() -> None:
    """Install the integrity hooks on Django's compilers and connections (idempotent)."""
    for owner, name, wrap in HOOKS:
        current = owner.__dict__[name]
        if not hasattr(current, "crossdb_original"):
            setattr(owner, name, wrap(current))


def installed() -> bool:
    """Return True when ``install()`` has wrapped every hook."""
    return all(hasattr(owner.__dict__[name], "crossdb_original") for owner, name, _ in HOOKS)
