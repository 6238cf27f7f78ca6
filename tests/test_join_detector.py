"""crossdb.testing's JOIN detector: SQL sent to one alias naming another alias's table fails."""

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.db.models import Q

from crossdb.testing import (
    CrossDatabaseTableError,
    detect_cross_database_tables,
    table_homes,
    tables_in,
)
from tests.blog.models import Comment, Post
from tests.query_helpers import build_world
from tests.shop.models import Mention

pytestmark = pytest.mark.django_db(databases="__all__")


def _quoted(alias, table):
    return connections[alias].ops.quote_name(table)


def test_tables_are_read_from_quoted_and_plain_sql():
    assert tables_in('SELECT "blog_post"."id" FROM "blog_post" INNER JOIN "auth_user" ON 1') == {
        "blog_post",
        "id",
        "auth_user",
    }
    assert tables_in("SELECT `auth_user`.`id` FROM `auth_user`") == {"auth_user", "id"}
    assert tables_in("select 1 from auth_user u join blog_post p on 1") == {
        "auth_user",
        "blog_post",
    }


def test_homes_follow_the_routers():
    homes = table_homes()
    assert homes["auth_user"] == {"default"}
    assert homes["blog_post"] == {"blog_db"}
    assert homes["shop_mention"] == {"shop_db"}
    assert homes["auth_user_groups"] == {"default"}


def test_a_join_across_databases_is_caught():
    with detect_cross_database_tables() as detector:
        violation = detector.check(
            "blog_db", 'SELECT * FROM "blog_post" INNER JOIN "auth_user" ON (1 = 1)'
        )
    assert violation.tables == {"auth_user": {"default"}}
    assert "names 'auth_user' (lives on 'default')" in str(violation)
    assert detector.check("blog_db", 'SELECT * FROM "blog_post"') is None


def test_a_query_on_the_wrong_alias_fails_before_it_runs(stale_users):
    build_world()
    stale_users()
    with detect_cross_database_tables() as detector:
        with pytest.raises(CrossDatabaseTableError, match="sent to 'blog_db' names 'auth_user'"):
            User.objects.using("blog_db").count()
        with pytest.raises(CrossDatabaseTableError, match="sent to 'default' names 'blog_post'"):
            list(Post.objects.using("default").all())
    assert [violation.alias for violation in detector.violations] == ["blog_db", "default"]


def test_swallowed_violations_still_fail_the_block():
    with detect_cross_database_tables("shop_db") as detector:
        try:
            with connections["shop_db"].cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM {_quoted('shop_db', 'auth_user')}")
        except Exception:
            pass  # code under test that hides errors
    with pytest.raises(CrossDatabaseTableError, match="1 statement"):
        detector.assert_clean()


def test_allow_excuses_deliberate_statements():
    def allow(violation):
        return violation.alias == "shop_db"

    with detect_cross_database_tables(allow=allow) as detector:
        assert detector.check("shop_db", 'SELECT 1 FROM "auth_user"') is not None
        with pytest.raises(CrossDatabaseTableError):
            User.objects.using("blog_db").exists()
    assert len(detector.violations) == 1


def test_crossdb_queries_name_only_their_own_alias_tables(stale_users, queries):
    """With stale copies in place, no read touches the wrong database."""
    world = build_world()
    stale_users()
    with detect_cross_database_tables() as detector, queries() as q:
        assert [p.title for p in Post.objects.filter(author__username="ann")] == ["alpha", "beta"]
        assert User.objects.filter(Q(blog_posts__mentions__text="m3")).get().username == "bob"
        assert Comment.objects.exclude(post__author__username="ann").count() == 3
        authors = [p.author.username for p in Post.objects.select_related("author", "editor")]
        assert "stale-ann" not in authors
        assert list(Mention.objects.values_list("post__author__username", flat=True)) == [
            "ann",
            "bob",
            "bob",
        ]
        assert [p.title for p in world.users["cat"].blog_posts.all()] == ["delta", "alpha2"]
        Post.objects.filter(editor__username="bob").update(score=1)
    assert detector.violations == []
    for alias in ("blog_db", "shop_db"):
        assert all("auth_user" not in sql for sql in q.sql(alias))
    assert all("blog_post" not in sql for sql in q.sql("default"))


PLUGIN_TESTS = """
import pytest
from django.contrib.auth.models import User


@pytest.mark.django_db(databases="__all__")
def test_wrong_alias(crossdb_join_detector):
    User.objects.using("blog_db").exists()


@pytest.mark.django_db(databases="__all__")
@pytest.mark.crossdb_allow_tables("blog_db", "auth_user")
def test_allowed(crossdb_join_detector):
    with pytest.raises(Exception) as error:
        User.objects.using("blog_db").exists()  # no such table here: the database says so
    assert type(error.value).__name__ != "CrossDatabaseTableError"


@pytest.mark.django_db(databases="__all__")
def test_clean(crossdb_join_detector):
    assert User.objects.count() == 0
"""


def test_the_pytest_fixture_and_marker(tmp_path):
    (tmp_path / "test_plugin_use.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # The plugin's mechanics, not a backend, are under test here.
        "CROSSDB_TEST_PROFILE": "sqlite",
        "CROSSDB_TEST_DB_SUFFIX": os.environ.get("CROSSDB_TEST_DB_SUFFIX", "") + "_plugin",
    }
    installed = any(entry.name == "crossdb" for entry in entry_points(group="pytest11"))
    # Installed, crossdb's pytest11 entry point loads the plugin; else -p does.
    plugin = [] if installed else ["-p", "crossdb.pytest_plugin"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            *plugin,
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "1 failed, 2 passed" in output, output
    assert "test_wrong_alias" in output
    assert "names 'auth_user' (lives on 'default')" in output


@pytest.mark.django_db(databases="__all__")
def test_capture_queries_ends_where_a_raising_block_ends():
    from crossdb.testing import capture_queries

    with pytest.raises(ZeroDivisionError):
        with capture_queries("default") as q:
            User.objects.count()
            1 / 0  # noqa: B018
    User.objects.count()
    assert q.count("default") == 1
