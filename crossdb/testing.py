"""Helpers for test suites of projects that use crossdb.

``capture_queries()`` records the SQL sent to each alias, so a test can pin
where every query of an operation goes and how many there are.
"""

from __future__ import annotations

from contextlib import ExitStack

from django.db import connections
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
        return self._stack.__exit__(*exc_info)


def capture_queries(*aliases: str) -> AliasQueries:
    """Capture the SQL sent to ``aliases`` (every configured alias by default)."""
    return AliasQueries(aliases or tuple(connections))
