"""``manage.py crossdb_audit``: report (and optionally fix) dangling crossdb references."""

from __future__ import annotations

import json

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from crossdb import audit


class Command(BaseCommand):
    help = (
        "Find crossdb references whose target row does not exist, field by field, comparing "
        "ids in sorted chunks on each database. Exits with status 1 when any reference "
        "dangles (after --fix: when any is left)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model",
            action="append",
            dest="models",
            metavar="APP_LABEL.MODEL",
            help="Audit only this model's crossdb fields (repeatable).",
        )
        parser.add_argument(
            "--field",
            action="append",
            dest="fields",
            metavar="NAME",
            help="Audit only crossdb fields with this name (repeatable).",
        )
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Apply each field's on_delete to its dangling rows: CASCADE deletes them, "
            "SET_NULL / SET_DEFAULT / SET() update them, PROTECT / RESTRICT / DO_NOTHING "
            "are reported only.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the report as JSON (for monitoring)."
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=audit.DEFAULT_CHUNK_SIZE,
            help="Ids compared per query (default %(default)s); bounds memory.",
        )
        parser.add_argument(
            "--samples",
            type=int,
            default=audit.DEFAULT_SAMPLE_SIZE,
            help="Dangling ids to show per field (default %(default)s).",
        )

    def handle(self, *args, **options):
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        fields = audit.select_fields(self._models(options["models"]), options["fields"])
        if not fields:
            raise CommandError("No crossdb field matches --model / --field.")
        verbosity = options["verbosity"]
        progress = self._progress if verbosity >= 2 and not options["json"] else None
        reports = []
        for field in fields:
            report = audit.audit_field(
                field,
                fix=options["fix"],
                chunk_size=options["chunk_size"],
                sample_size=options["samples"],
                progress=progress,
            )
            reports.append(report)
            if not options["json"] and verbosity >= 1:
                self._print(report, options["fix"])
        left = [report for report in reports if not report.clean]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "clean": not left,
                        "fix": options["fix"],
                        "fields": [report.as_dict() for report in reports],
                    },
                    indent=2,
                )
            )
        if left:
            rows = sum(report.dangling_rows - report.fixed_rows for report in left)
            raise CommandError(
                f"{rows} dangling reference(s) in {len(left)} field(s): "
                + ", ".join(report.label for report in left),
                returncode=1,
            )

    def _models(self, labels):
        if not labels:
            return None
        models_ = []
        for label in labels:
            try:
                models_.append(apps.get_model(label))
            except (LookupError, ValueError) as exc:
                raise CommandError(f"--model {label!r}: {exc}") from None
        return models_

    def _progress(self, report):
        self.stdout.write(
            f"  {report.label}: {report.checked} ids checked, "
            f"{report.dangling_values} dangling so far"
        )

    def _print(self, report, fix):
        where = (
            f"{report.label} ({report.source_alias}) -> {report.target} "
            f"({report.target_alias}), on_delete={report.on_delete}"
        )
        if not report.dangling_rows:
            self.stdout.write(f"OK    {where}: {report.checked} ids, none dangling")
            return
        samples = ", ".join(repr(value) for value in report.samples)
        line = (
            f"{report.dangling_rows} row(s) point at {report.dangling_values} missing id(s), "
            f"e.g. {samples}"
        )
        if fix:
            if report.action == "report":
                line += f"; left as they are (on_delete={report.on_delete})"
            else:
                line += f"; fixed {report.fixed_rows} row(s) ({report.action})"
            for error in report.errors:
                line += f"; could not fix: {error}"
        style = self.style.SUCCESS if report.clean else self.style.ERROR
        self.stdout.write(style(f"{'FIXED' if report.clean else 'DANGLE'} {where}: {line}"))
