"""Fixtures of crossdb's test suite."""

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import override_settings

from crossdb.testing import capture_queries
from tests import settings
from tests.blog.models import Post
from tests.settings import ROUTER_CHAINS

ALL_DATABASES = ["default", "blog_db", "shop_db"]

# The real-standby and TEST MIRROR tests need the replica aliases of their profile.
collect_ignore_glob = [
    *(["test_replica_standby*.py"] if settings.PROFILE != "replica" else []),
    *(["test_replica_mirror*.py"] if settings.PROFILE != "replica_mirror" else []),
]

# Copies of tables in databases that must never be read from: a query sent to
# the wrong alias finds these (holding wrong rows under the same ids) instead
# of failing, which is how a silently wrong answer happens in practice.
STALE_TABLES = {"blog_db": [User], "shop_db": [User], "default": [Post]}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        for alias, models in STALE_TABLES.items():
            existing = connections[alias].introspection.table_names()
            with connections[alias].schema_editor() as editor:
                for model in models:
                    if model._meta.db_table not in existing:
                        # The table alone: its many-to-many tables would need
                        # auth_group, which is not there either.
                        editor.execute(*editor.table_sql(model))
        if settings.PROFILE == "replica":
            from tests import pg_standby

            pg_standby.point_mirrors_at_standby(connections, settings.REPLICA_OF)


@pytest.fixture
def stale_users():
    """Write a wrong copy of every user into the stale ``auth_user`` tables."""

    def write():
        for alias in ("blog_db", "shop_db"):
            User.objects.using(alias).all().delete()
            for user in User.objects.using("default").order_by("pk"):
                User.objects.using(alias).create(
                    pk=user.pk, username=f"stale-{user.username}", email="stale@example.com"
                )

    return write


@pytest.fixture
def queries():
    """Capture the SQL sent to every alias: ``with queries() as q: ...; q.counts()``."""
    return capture_queries


@pytest.fixture(params=sorted(ROUTER_CHAINS))
def any_router(request):
    """Run a test under each router chain: crossdb's and two hand-written kinds."""
    with override_settings(DATABASE_ROUTERS=ROUTER_CHAINS[request.param]):
        yield request.param


def _writes_stale_copies(violation):
    """Return True for SQL that fills the stale copies on purpose.

    Rows are put into them by INSERTs and by ``stale_users()``'s writer; any
    other statement naming them (above all a read) is the bug the JOIN
    detector is here to catch.
    """
    import sys

    stale = {model._meta.db_table for model in STALE_TABLES.get(violation.alias, ())}
    if violation.sql.lstrip().upper().startswith("INSERT") and set(violation.tables) <= stale:
        return True
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_filename == __file__ and frame.f_code.co_name == "write":
            return True
        frame = frame.f_back
    return False


@pytest.fixture(autouse=True)
def _crossdb_join_detector():
    """Run every test with crossdb's JOIN detector: no SQL names another alias's table."""
    from crossdb.testing import detect_cross_database_tables

    with detect_cross_database_tables(allow=_writes_stale_copies) as detector:
        yield detector
    detector.assert_clean()
