"""pytest plugin: the ``crossdb_join_detector`` fixture.

Loaded through the ``pytest11`` entry point when crossdb is installed (or with
``-p crossdb.pytest_plugin``).  Request the fixture in a test, or make it
autouse in a ``conftest.py``::

    @pytest.fixture(autouse=True)
    def _no_cross_database_sql(crossdb_join_detector):
        pass

A test that names a table of another database on purpose says so with
``@pytest.mark.crossdb_allow_tables("blog_db", "auth_user", ...)``.
"""

from __future__ import annotations

import pytest

MARKER = "crossdb_allow_tables"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}(alias, *tables): SQL sent to alias may name these tables of "
        "other databases (crossdb_join_detector)",
    )


def allowed_tables(node) -> set[tuple[str, str]]:
    """Return the ``(alias, table)`` pairs the node's markers allow."""
    return {(mark.args[0], table) for mark in node.iter_markers(MARKER) for table in mark.args[1:]}


@pytest.fixture
def crossdb_join_detector(request):
    """Fail the test if SQL sent to one alias names a table of another alias."""
    from crossdb.testing import detect_cross_database_tables

    allowed = allowed_tables(request.node)

    def allow(violation):
        return all((violation.alias, table) in allowed for table in violation.tables)

    with detect_cross_database_tables(allow=allow) as detector:
        yield detector
    detector.assert_clean()
