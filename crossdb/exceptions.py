"""Errors crossdb raises where a query cannot be answered across databases."""

from __future__ import annotations

from django.db import NotSupportedError


class CrossDatabaseQueryError(NotSupportedError):
    """A query crosses a crossdb relation in a way crossdb cannot answer correctly.

    The message names the model, the field path and what to do instead.
    """


class CrossDatabaseLimitError(CrossDatabaseQueryError):
    """More ids would be carried between databases than ``CROSSDB_MAX_IDS`` allows."""
