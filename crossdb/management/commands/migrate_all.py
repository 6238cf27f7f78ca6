"""``manage.py migrate_all``: run ``migrate`` on every database alias but the replicas.

A replica (an alias ``DATABASE_REPLICAS`` names) gets its schema from its
primary by replication, and a hot standby refuses writes: it is skipped.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from crossdb.routers import primary_of, replica_aliases

# migrate's options handed on to each run; --database is migrate_all's own.
PASSED_THROUGH = (
    "interactive",
    "fake",
    "fake_initial",
    "plan",
    "check_unapplied",
    "run_syncdb",
    "prune",
    "verbosity",
    "no_color",
    "force_color",
)


def ordered_aliases(selected=None) -> list[str]:
    """Return ``default`` first, then the other aliases in sorted order; no replica."""
    aliases = list(selected or settings.DATABASES)
    unknown = sorted(set(aliases) - set(settings.DATABASES))
    if unknown:
        raise CommandError(f"Not in DATABASES: {', '.join(unknown)}.")
    replicas = replica_aliases()
    named = sorted(set(selected or ()) & replicas)
    if named:
        primaries = ", ".join(f"{alias} (of {primary_of(alias)})" for alias in named)
        raise CommandError(
            f"Replicas are not migrated: {primaries}; migrate the primary, "
            "replication brings the schema (DATABASE_REPLICAS)."
        )
    aliases = [alias for alias in aliases if alias not in replicas]
    return sorted(set(aliases), key=lambda alias: (alias != DEFAULT_DB_ALIAS, alias))


class _WithoutDatabaseOption:
    """migrate's parser calls, minus its single --database option."""

    def __init__(self, parser):
        self.parser = parser

    def add_argument(self, *names, **kwargs):
        if "--database" not in names:
            self.parser.add_argument(*names, **kwargs)


class Command(BaseCommand):
    help = (
        "Run migrate on every database alias, default first, then the others in sorted "
        "order, skipping the replicas of DATABASE_REPLICAS; the routers' allow_migrate "
        "decides what goes where. Takes migrate's options. "
        "Exits with status 1 if migrate fails on any alias."
    )

    def add_arguments(self, parser):
        migrate.Command().add_arguments(_WithoutDatabaseOption(parser))
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            metavar="ALIAS",
            help="Migrate only this alias (repeatable). Default: every alias in DATABASES.",
        )

    def handle(self, *args, **options):
        aliases = ordered_aliases(options["databases"])
        targets = [value for value in (options["app_label"], options["migration_name"]) if value]
        passed = {name: options[name] for name in PASSED_THROUGH}
        summary, failed = [], []
        for alias in aliases:
            if options["verbosity"] >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"== {alias} =="))
            before = _applied(alias)
            pending = _pending(alias)
            try:
                call_command(
                    "migrate",
                    *targets,
                    database=alias,
                    # The system checks ran once, before the first alias.
                    skip_checks=True,
                    stdout=self.stdout._out,
                    stderr=self.stderr._out,
                    **passed,
                )
            except SystemExit:
                # migrate --check exits 1 when migrations are unapplied.
                failed.append(alias)
                summary.append((alias, False, f"{pending} unapplied migration(s)"))
                continue
            except Exception as exc:
                failed.append(alias)
                summary.append((alias, False, f"failed: {type(exc).__name__}: {exc}"))
                continue
            applied = len(_applied(alias) - before)
            if options["plan"] or options["check_unapplied"]:
                state = f"{pending} unapplied migration(s)" if pending else "up to date"
            elif applied:
                state = f"{'faked' if options['fake'] else 'applied'} {applied} migration(s)"
            else:
                state = "no migrations to apply"
            summary.append((alias, True, state))
        if options["verbosity"] >= 1 or failed:
            self.stdout.write(self.style.MIGRATE_HEADING("Summary:"))
            for alias, ok, state in summary:
                style = self.style.SUCCESS if ok else self.style.ERROR
                self.stdout.write(style(f"  {alias}: {state}"))
        if failed:
            raise CommandError(f"migrate did not succeed on: {', '.join(failed)}.", returncode=1)


def _applied(alias: str) -> set:
    """Return the migrations recorded as applied on ``alias``."""
    return set(MigrationRecorder(connections[alias]).applied_migrations())


def _pending(alias: str) -> int:
    """Return how many migrations of the whole graph are unapplied on ``alias``."""
    try:
        executor = MigrationExecutor(connections[alias])
        return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except Exception:
        # migrate itself reports the broken graph or connection.
        return 0
