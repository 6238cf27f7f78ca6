"""Helpers for test suites of projects that use crossdb.

``capture_queries()`` records the SQL sent to each alias, so a test can pin
where every query of an operation goes and how many there are.

``detect_cross_database_tables()`` fails when SQL sent to one alias names a
table whose model routes to another alias (a JOIN across databases, or a
query sent to the wrong database); ``crossdb.pytest_plugin`` offers it as the
``crossdb_join_detector`` fixture.
"""

from __future__ import annotations

import re
import threading
from contextlib import ExitStack
from dataclasses import dataclass

from django.apps import apps
from django.db import connections, router
from django.test.utils import CaptureQueriesContext


class AliasQueries:
    """The queries each alias received inside a ``capture_queries()`` block."""

    def __init__(self, aliases):
        self.aliases = tuple(aliases)
        self._contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in aliases}

    def sql(self, alias: str) -> list[str]:
        """Return the SQL statements ``alias`` received."""
        return [query["sql"] for query in self._contexts[alias].captured_queries]

    def count(self, alias: str) -> int:
        """Return how many statements ``alias`` received."""
        return len(self._contexts[alias])

    def counts(self) -> dict[str, int]:
        """Return ``{alias: number of statements}`` for every captured alias."""
        return {alias: self.count(alias) for alias in self.aliases}

    def __enter__(self):
        self._stack = ExitStack()
        for context in self._contexts.values():
            self._stack.enter_context(context)
        return self

    def __exit__(self, *exc_info):
        result = self._stack.__exit__(*exc_info)
        # CaptureQueriesContext leaves its record open when the block raises,
        # so later queries would count too; close it where the block ended.
        for context in self._contexts.values():
            if context.final_queries is None:
                context.final_queries = len(context.connection.queries_log)
        return result


def capture_queries(*aliases: str) -> AliasQueries:
    """Capture the SQL sent to ``aliases`` (every configured alias by default)."""
    return AliasQueries(aliases or tuple(connections))


# -- the cross-database table detector ------------------------------------------

# Table names as Django quotes them (PostgreSQL/SQLite "x", MySQL `x`), and the
# unquoted word after FROM/JOIN/INTO/UPDATE/TABLE in hand-written SQL.
_IDENTIFIER = re.compile(
    r'"([^"]+)"|`([^`]+)`|\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+([A-Za-z_][\w$]*)',
    re.IGNORECASE,
)


class CrossDatabaseTableError(AssertionError):
    """SQL sent to one alias named a table whose model routes to another alias."""


@dataclass(frozen=True)
class Violation:
    """One statement sent to ``alias`` naming ``tables`` that live elsewhere."""

    alias: str
    tables: dict  # {table: aliases its model routes to}
    sql: str

    def __str__(self):
        where = ", ".join(
            f"{table!r} (lives on {', '.join(map(repr, sorted(homes)))})"
            for table, homes in sorted(self.tables.items())
        )
        return f"SQL sent to {self.alias!r} names {where}: {self.sql[:500]}"


def tables_in(sql: str) -> set[str]:
    """Return the identifiers of ``sql`` that may be table names."""
    return {next(group for group in match.groups() if group) for match in _IDENTIFIER.finditer(sql)}


def table_homes() -> dict[str, frozenset[str]]:
    """Return ``{table: aliases its model routes to}`` for every installed model."""
    homes: dict[str, set[str]] = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.db_table:
            continue
        aliases = {router.db_for_read(model), router.db_for_write(model)}
        homes.setdefault(model._meta.db_table, set()).update(aliases)
    return {table: frozenset(aliases) for table, aliases in homes.items()}


_local = threading.local()


def _active_detectors() -> list:
    if not hasattr(_local, "detectors"):
        _local.detectors = []
    return _local.detectors


def _pass_through(execute, sql, params, many, context):
    return execute(sql, params, many, context)


class JoinDetector:
    """Fail when SQL sent to one alias names a table whose model routes to another.

    A JOIN (or subquery) across databases sent to one alias either fails or,
    when a stale copy of the other table exists there, answers wrongly without
    a word; so does a whole query sent to the wrong alias.  Inside the block,
    every statement is checked before it runs: a violation raises
    ``CrossDatabaseTableError`` at the call that made it and is kept in
    ``violations`` (so that code swallowing exceptions cannot hide it).

    ``allow(violation) -> bool`` may excuse deliberate statements, such as a
    test writing a stale copy on purpose.  Tables are mapped to aliases by the
    routers (``db_for_read`` / ``db_for_write`` without hints) when the block
    is entered; pass ``homes={table: {aliases}}`` to override.  Statements
    are checked on the connections of the thread that enters the block.  In
    nested blocks the innermost one decides (a test's own detector, with its
    own ``allow``, inside a suite-wide one).
    """

    def __init__(self, *aliases: str, allow=None, homes=None, raise_errors: bool = True):
        self.aliases = aliases or tuple(connections)
        self.allow = allow
        self.homes = homes
        self.raise_errors = raise_errors
        self.violations: list[Violation] = []

    def check(self, alias: str, sql: str) -> Violation | None:
        """Return the violation ``sql`` sent to ``alias`` would be, or None."""
        foreign = {
            table: self.homes[table]
            for table in tables_in(sql)
            if table in self.homes and alias not in self.homes[table]
        }
        return Violation(alias, foreign, sql) if foreign else None

    def _wrapper(self, alias):
        def detect(execute, sql, params, many, context):
            if _active_detectors()[-1] is not self:
                # Nested blocks: the innermost one (its aliases, its allow)
                # decides, and its wrapper sees the statement too.
                return execute(sql, params, many, context)
            violation = self.check(alias, sql)
            if violation is not None and not (self.allow and self.allow(violation)):
                self.violations.append(violation)
                if self.raise_errors:
                    raise CrossDatabaseTableError(str(violation))
            return execute(sql, params, many, context)

        return detect

    def __enter__(self):
        if self.homes is None:
            self.homes = table_homes()
        self._stack = ExitStack()
        for alias in connections:
            wrapper = self._wrapper(alias) if alias in self.aliases else _pass_through
            self._stack.enter_context(connections[alias].execute_wrapper(wrapper))
        _active_detectors().append(self)
        return self

    def __exit__(self, *exc_info):
        _active_detectors().remove(self)
        return self._stack.__exit__(*exc_info)

    def assert_clean(self) -> None:
        """Raise ``CrossDatabaseTableError`` listing every violation seen."""
        if self.violations:
            raise CrossDatabaseTableError(
                f"{len(self.violations)} statement(s) named a table of another database:\n"
                + "\n".join(f"- {violation}" for violation in self.violations)
            )


def detect_cross_database_tables(*aliases: str, **options) -> JoinDetector:
    """Return a ``JoinDetector`` for ``aliases`` (every alias by default)."""
    return JoinDetector(*aliases, **options)
