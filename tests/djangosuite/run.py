"""Judge crossdb by Django's own test suite: ``make django-suite DJANGO_SUITE_MODE=installed``.

Fetches the sdist of the installed Django from the package index (cached in
``~/.cache/crossdb/django-suite/<version>``), runs its ``tests/runtests.py`` on SQLite for
the modules below and compares the failures with the checked-in expectations:

- ``--mode installed``: every test that passes without crossdb passes with it; the only
  failures allowed are those of ``expected/<X.Y>-baseline.txt`` (failing without crossdb);
- ``--mode swapped``: every ForeignKey/OneToOneField of the test apps is crossdb's; a test
  may fail only if ``expected/<X.Y>-swapped.txt`` lists it with its reason;
- ``--mode baseline``: Django's suite without crossdb (writes the baseline with ``--update``).

Exits 1 on a failure not expected, and lists expected failures that now pass (the file only
shrinks).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import django

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("CROSSDB_DJANGO_SUITE_CACHE", "~/.cache/crossdb/django-suite"))

# The modules of Django's suite that exercise relations, queries, deletion and routing.
MODULES = [
    "admin_changelist",
    "admin_filters",
    "admin_views",
    "aggregation",
    "aggregation_regress",
    "annotations",
    "async",
    "basic",
    "bulk_create",
    "composite_pk",
    "custom_managers",
    "dates",
    "defer",
    "defer_regress",
    "delete",
    "delete_regress",
    "expressions",
    "filtered_relation",
    "fixtures",
    "fixtures_model_package",
    "fixtures_regress",
    "foreign_object",
    "generic_relations",
    "generic_relations_regress",
    "known_related_objects",
    "lookup",
    "m2m_and_m2o",
    "m2m_intermediary",
    "m2m_multiple",
    "m2m_recursive",
    "m2m_regress",
    "m2m_signals",
    "m2m_through",
    "m2m_through_regress",
    "many_to_one",
    "many_to_one_null",
    "model_forms",
    "model_formsets",
    "model_formsets_regress",
    "model_inheritance",
    "model_inheritance_regress",
    "multiple_database",
    "nested_foreign_keys",
    "null_fk",
    "null_fk_ordering",
    "null_queries",
    "one_to_one",
    "order_with_respect_to",
    "ordering",
    "prefetch_related",
    "queries",
    "queryset_pickle",
    "reverse_lookup",
    "select_for_update",
    "select_related",
    "select_related_onetoone",
    "select_related_regress",
    "serializers",
    "update",
    "update_only_fields",
    "custom_columns",
    "custom_pk",
    "distinct_on_fields",
    "expressions_case",
    "from_db_value",
    "get_or_create",
    "m2o_recursive",
    "many_to_many",
    "model_fields",
    "model_regress",
    "mutually_referential",
    "proxy_models",
    "raw_query",
    "save_delete_hooks",
    "signals",
]
OUTCOME = re.compile(r"^(?:FAIL|ERROR|UNEXPECTED SUCCESS): \S+ \(([^)\s]+)\)", re.MULTILINE)


def sdist_tests(version: str) -> Path:
    """Return the ``tests`` directory of Django ``version``'s sdist, fetching it once."""
    folder = CACHE.expanduser() / version
    tests = folder / f"django-{version}" / "tests"
    if (tests / "runtests.py").exists():
        return tests
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"django-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"Django=={version}",
                "--dest",
                str(folder),
            ],
            check=True,
        )
    with tarfile.open(archive) as sdist:
        sdist.extractall(folder, filter="data")
    return tests


def expectations(path: Path) -> dict[str, str]:
    """Return ``{test id: reason}`` from an expectations file (``id  # reason`` lines)."""
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_text().splitlines():
        test, _, reason = line.partition("#")
        if test.strip():
            entries[test.strip()] = reason.strip()
    return entries


def run_suite(tests: Path, mode: str, parallel: str, labels: list[str]):
    """Return (output, failed test ids, the "Ran N tests" match) of one runtests.py run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tests)])}
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "boot.py"),
            str(tests),
            mode,
            "--settings=test_sqlite",
            f"--parallel={parallel}",
            "--noinput",
            *labels,
        ],
        cwd=tests,
        env=env,
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    return output, set(OUTCOME.findall(output)), ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["baseline", "installed", "swapped"], required=True)
    parser.add_argument("--parallel", default="2")
    parser.add_argument("--update", action="store_true", help="rewrite the expectations file")
    parser.add_argument("modules", nargs="*", help="default: the modules above")
    args = parser.parse_args()

    version = django.get_version()
    series = ".".join(version.split(".")[:2])
    tests = sdist_tests(version)
    modules = args.modules or [m for m in MODULES if (tests / m).is_dir()]
    expected_mode = "baseline" if args.mode == "installed" else args.mode
    expected_file = HERE / "expected" / f"{series}-{expected_mode}.txt"
    expected = expectations(expected_file)

    started = time.monotonic()
    output, failed, ran = run_suite(tests, args.mode, args.parallel, modules)
    elapsed = time.monotonic() - started
    log = CACHE.expanduser() / version / f"{args.mode}.log"
    log.write_text(output)
    if ran is None:
        print(output[-4000:])
        print(f"Django {version}, mode {args.mode}: the suite did not run (log: {log})")
        return 1
    if args.mode == "installed" and failed - set(expected):
        # Instead of a whole run without crossdb: only the failures run again without it;
        # those failing there too are not crossdb's (reported as baseline candidates).
        _output, without, _ran = run_suite(tests, "baseline", "1", sorted(failed - set(expected)))
        for test in sorted(without & failed):
            print(f"  fails without crossdb too (baseline): {test}")
        expected = {**expected, **dict.fromkeys(without & failed, "fails without crossdb")}

    if args.update:
        kept = {test: expected.get(test, "") for test in sorted(failed)}
        lines = [f"{test}  # {reason}" if reason else test for test, reason in kept.items()]
        expected_file.write_text("".join(f"{line}\n" for line in lines))
    unexpected = sorted(failed - set(expected))
    fixed = sorted(set(expected) - failed) if not args.modules else []
    print(
        f"Django {version}, mode {args.mode}: {ran.group(1)} tests in {elapsed:.0f} s, "
        f"{len(failed)} failed, {len(unexpected)} not expected (log: {log})"
    )
    for test in unexpected:
        print(f"  NOT EXPECTED: {test}")
    for test in fixed:
        print(f"  now passes, remove from {expected_file.name}: {test}")
    return 1 if unexpected and not args.update else 0


if __name__ == "__main__":
    sys.exit(main())
