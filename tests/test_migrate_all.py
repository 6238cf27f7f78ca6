"""``manage.py migrate_all``: every alias, default first, tables only where routed."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections
from django.db.utils import load_backend
from django.test import override_settings

from crossdb.management.commands import migrate_all
from crossdb.routers import AppLabelRouter

pytestmark = pytest.mark.django_db(databases="__all__")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def migrate_calls(monkeypatch):
    """Record each ``migrate`` run (alias and options), then run it."""
    calls = []
    real = migrate_all.call_command

    def record(name, *args, **options):
        calls.append((options["database"], args, options))
        return real(name, *args, **options)

    monkeypatch.setattr(migrate_all, "call_command", record)
    return calls


def run(*args):
    out = StringIO()
    try:
        call_command("migrate_all", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def test_check_on_migrated_databases_passes_default_first_then_sorted(migrate_calls):
    status, out, _ = run("--check")
    assert status == 0
    assert [alias for alias, _args, _options in migrate_calls] == ["default", "blog_db", "shop_db"]
    assert all(options["check_unapplied"] for _alias, _args, options in migrate_calls)
    assert out.index("== default ==") < out.index("== blog_db ==") < out.index("== shop_db ==")
    assert out.endswith(
        "Summary:\n  default: up to date\n  blog_db: up to date\n  shop_db: up to date\n"
    )


def test_plan_is_passed_through_and_shown_per_alias(migrate_calls):
    status, out, _ = run("--plan")
    assert status == 0
    assert out.count("Planned operations:") == 3
    assert all(options["plan"] for _alias, _args, options in migrate_calls)


@override_settings(DATABASE_ROUTERS=["crossdb.routers.AppLabelRouter"])
def test_options_and_targets_are_passed_through(migrate_calls):
    # AppLabelRouter: post_migrate handlers leave blog_db alone whatever the suite's routers.
    status, out, _ = run("blog", "0001", "--fake", "--noinput", "--database", "blog_db", "-v", "0")
    assert (status, out) == (0, "")  # -v 0: quiet unless an alias fails
    [(alias, args, options)] = migrate_calls
    assert (alias, args) == ("blog_db", ("blog", "0001"))
    assert options["fake"] is True and options["interactive"] is False
    assert options["verbosity"] == 0 and options["skip_checks"] is True
    assert options["fake_initial"] is False and options["prune"] is False


def test_database_selection_keeps_the_order_and_rejects_unknown_aliases(migrate_calls):
    run("--check", "--database", "shop_db", "--database", "default")
    assert [alias for alias, _args, _options in migrate_calls] == ["default", "shop_db"]
    assert run("--database", "nowhere")[2] == "Not in DATABASES: nowhere."


def test_a_failing_alias_does_not_stop_the_others_and_the_exit_status_is_1(monkeypatch):
    real = migrate_all.call_command
    ran = []

    def flaky(name, *args, **options):
        ran.append(options["database"])
        if options["database"] == "blog_db":
            raise DatabaseError("connection refused")
        return real(name, *args, **options)

    monkeypatch.setattr(migrate_all, "call_command", flaky)
    status, out, error = run("--check")
    assert ran == ["default", "blog_db", "shop_db"]
    assert status == 1
    assert error == "migrate did not succeed on: blog_db."
    assert "  blog_db: failed: DatabaseError: connection refused\n" in out
    assert "  shop_db: up to date\n" in out


def test_an_unknown_migration_fails_on_every_alias():
    status, out, error = run("blog", "9999_nothing")
    assert status == 1
    assert error == "migrate did not succeed on: default, blog_db, shop_db."
    assert "Cannot find a migration matching '9999_nothing' from app 'blog'" in out


# A fresh project --------------------------------------------------------------------


def fresh_settings(tmp_path):
    """Return DATABASES for a fresh database per alias, of the profile's engines."""
    databases = {}
    for alias in connections:
        settings_dict = connections[alias].settings_dict
        engine = settings_dict["ENGINE"]
        if engine.endswith("sqlite3"):
            name = str(tmp_path / f"{alias}.sqlite3")
        else:
            name = f"{settings_dict['NAME']}_fresh"[:60]
        databases[alias] = {
            key: settings_dict[key] for key in ("ENGINE", "USER", "PASSWORD", "HOST", "PORT")
        }
        databases[alias].update(NAME=name, OPTIONS=settings_dict["OPTIONS"])
    return databases


def create_databases(databases, drop=False):
    for alias, config in databases.items():
        if config["ENGINE"].endswith("sqlite3"):
            continue
        connection = connections[alias]
        name = connection.ops.quote_name(config["NAME"])
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            if not drop:
                suffix = " CHARACTER SET utf8mb4" if connection.vendor == "mysql" else ""
                cursor.execute(f"CREATE DATABASE {name}{suffix}")


def manage(databases, *args):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.tooling.fresh_settings",
        "CROSSDB_FRESH_DATABASES": json.dumps(databases),
        "CROSSDB_TEST_ROUTER": "applabel",
    }
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tables(alias, config):
    full = {**connections[alias].settings_dict, **config}
    connection = load_backend(config["ENGINE"]).DatabaseWrapper(full, alias=f"fresh_{alias}")
    try:
        return set(connection.introspection.table_names())
    finally:
        connection.close()


def test_on_fresh_databases_each_table_exists_only_where_its_app_routes(tmp_path):
    databases = fresh_settings(tmp_path)
    create_databases(databases)
    try:
        before = manage(databases, "migrate_all", "--check", "--noinput")
        assert before.returncode == 1, before.stderr
        assert "CommandError: migrate did not succeed on: default, blog_db, shop_db." in (
            before.stderr
        )

        migrated = manage(databases, "migrate_all", "--noinput", "-v", "1")
        assert migrated.returncode == 0, migrated.stderr
        summary = migrated.stdout[migrated.stdout.index("Summary:") :].splitlines()
        assert [line.split(":")[0].strip() for line in summary[1:]] == [
            "default",
            "blog_db",
            "shop_db",
        ]
        assert all("applied" in line for line in summary[1:])

        router = AppLabelRouter()
        expected = {alias: {"django_migrations"} for alias in databases}
        for model in apps.get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                alias = router.alias_for_app(model._meta.app_label)
                expected[alias].add(model._meta.db_table)
        for alias, config in databases.items():
            assert tables(alias, config) == expected[alias], alias
        assert {"blog_post", "blog_comment"} <= expected["blog_db"]
        assert {"auth_user", "django_content_type"} <= expected["default"]

        after = manage(databases, "migrate_all", "--check", "--noinput")
        assert after.returncode == 0, after.stderr
        check = manage(databases, "check")
        assert check.returncode == 0 and "no issues" in check.stdout, check.stderr
    finally:
        create_databases(databases, drop=True)
