"""Fetch Django's test suite, run it with crossdb installed (mode 1) or with the
test apps' relation fields swapped for crossdb's (mode 2), compare with the
checked-in expectations (docs/django_suite.rst)."""

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import django

from tests.djangosuite import swapped

HERE = Path(__file__).resolve().parent
EXPECTATIONS = HERE / "expectations"
CACHE = Path(os.environ.get("CROSSDB_DJANGO_SUITE_CACHE", "~/.cache/crossdb/django-suite"))

# The modules of Django's suite that exercise what crossdb patches: relations,
# querying, deletion, routing, serialization, admin. Shell-style patterns,
# matched against the suite's top-level directories.
MODULES = [
    "delete*",
    "many_to_one*",
    "one_to_one",
    "prefetch_related",
    "select_related*",
    "queries",
    "lookup",
    "foreign_object",
    "model_inheritance*",
    "multiple_database",
    "fixtures*",
    "serializers",
    "generic_relations",
    "aggregation*",
    "expressions",
    "annotations",
    "ordering",
    "null_fk*",
    "admin_views",
    "admin_changelist",
    "admin_filters",
    "async",
    "known_related_objects",
    "custom_managers",
    "m2m_*",
    "update*",
    "bulk_create",
    "defer*",
    "filtered_relation",
    "queryset_pickle",
    "model_forms",
    "model_formsets",
    "nested_foreign_keys",
    "order_with_respect_to",
    "composite_pk",
    "basic",
    "dates",
]

# Tests that compare elapsed times: on a loaded machine they fail with or
# without crossdb, so their outcome says nothing about crossdb.
TIMING_DEPENDENT = {
    "serializers.test_deserialization.TestDeserializer.test_crafted_xml_performance",
}

# "test_x (module.Class.test_x)" or, before Python 3.11, "test_x (module.Class)".
TEST_LINE = re.compile(r"^(\w+) \(([\w.]+)\)")
OUTCOME = re.compile(r" \.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success)")
FAILURE_HEADER = re.compile(r"^(FAIL|ERROR|UNEXPECTED SUCCESS): (\w+) \(([\w.]+)\)")
RAN = re.compile(r"^Ran (\d+) tests? in ")
SUMMARY = re.compile(r"^(OK|FAILED)( \(.*\))?$")


def test_id(name: str, where: str) -> str:
    """Return ``module.Class.test`` whatever Python printed."""
    return where if where.endswith("." + name) else f"{where}.{name}"


def suite_dir(version: str) -> Path:
    """Return the unpacked sdist of Django ``version``, downloading it once."""
    cache = CACHE.expanduser() / version
    unpacked = cache / f"django-{version}"
    if (unpacked / "tests" / "runtests.py").exists():
        return unpacked
    cache.mkdir(parents=True, exist_ok=True)
    archives = sorted(cache.glob("*.tar.gz"))
    if not archives:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            + ["--no-binary", ":all:", f"Django=={version}", "-d", str(cache)],
            check=True,
        )
        archives = sorted(cache.glob("*.tar.gz"))
    # Unpack beside the target and rename, so a concurrent run never sees half a tree.
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        with tarfile.open(archives[0]) as archive:
            archive.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        if not unpacked.exists():
            top.rename(unpacked)
    return unpacked


def expand_modules(tests: Path, patterns: list[str]) -> list[str]:
    """Return the suite's module directories matching ``patterns``."""
    names = sorted(p.name for p in tests.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    found = []
    for pattern in patterns:
        matched = fnmatch.filter(names, pattern)
        if not matched:
            raise SystemExit(f"no module of Django's suite matches {pattern!r}")
        found += [name for name in matched if name not in found]
    return found


def parse(output: str) -> dict:
    """Return the failing tests and the counts of one runtests.py run."""
    failing: set[str] = set()
    ok = 0
    ran = summary = None
    for line in output.splitlines():
        if match := FAILURE_HEADER.match(line):
            failing.add(test_id(match.group(2), match.group(3)))
        elif (match := OUTCOME.search(line)) and match.group(1) == "ok":
            ok += 1
        elif match := RAN.match(line):
            ran = int(match.group(1))
        elif SUMMARY.match(line):
            summary = line
    failing -= TIMING_DEPENDENT
    return {"ran": ran, "ok": ok, "summary": summary, "failing": sorted(failing)}


def run_suite(version: str, mode: str, modules: list[str], parallel: int, log: Path) -> dict:
    """Run runtests.py in ``mode`` and return its parsed outcome."""
    tests = suite_dir(version) / "tests"
    labels = expand_modules(tests, modules)
    env = dict(os.environ, CROSSDB_SUITE_MODE=mode)
    # The project's tree (crossdb) first; Django's test apps come from the cwd.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    command = [sys.executable, "-W", "ignore", str(HERE / "wrapper.py"), str(tests / "runtests.py")]
    command += ["--settings=test_sqlite", f"--parallel={parallel}", "--verbosity=2", *labels]
    print(f"Django {version}, mode {mode}: {len(labels)} modules; log in {log}", flush=True)
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.run(command, cwd=tests, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    result = parse(log.read_text())
    result["seconds"] = round(elapsed)
    if result["ran"] is None:
        raise SystemExit(f"runtests.py ended (exit {process.returncode}) without a summary: {log}")
    print(
        f"ran {result['ran']}, ok {result['ok']}, failing {len(result['failing'])},"
        f" {elapsed:.0f} s; runtests.py: {result['summary']}",
        flush=True,
    )
    return result


def baseline_path(version: str) -> Path:
    return EXPECTATIONS / f"django-{'.'.join(version.split('.')[:2])}.json"


def swapped_path(version: str) -> Path:
    return EXPECTATIONS / f"django-{'.'.join(version.split('.')[:2])}-swapped.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.djangosuite", description=__doc__)
    parser.add_argument("--mode", choices=["installed", "swapped"], default="installed")
    parser.add_argument(
        "--record-baseline",
        action="store_true",
        help="run without crossdb and write the tests that fail into the expectations file",
    )
    parser.add_argument(
        "--record-swapped",
        action="store_true",
        help="run in swapped mode and write the categories the tracebacks show",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="swapped mode: remove the listed tests that now pass (the file only shrinks)",
    )
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("modules", nargs="*", help="patterns of modules (default: MODULES)")
    options = parser.parse_args(argv)
    version = django.get_version()
    modules = options.modules or MODULES
    path = baseline_path(version)
    if options.record_baseline:
        log = options.log_dir / f"djangosuite-{version}-baseline.log"
        result = run_suite(version, "baseline", modules, options.parallel, log)
        record = {"django": version, "modules": modules, **result}
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {path}")
        return 0
    if not path.exists():
        print(f"no baseline for Django {version}: run with --record-baseline first ({path})")
        return 2
    baseline = json.loads(path.read_text())
    if baseline["django"] != version:
        print(f"note: the baseline was recorded on Django {baseline['django']}, this is {version}")
    mode = "swapped" if options.record_swapped else options.mode
    log = options.log_dir / f"djangosuite-{version}-{mode}.log"
    result = run_suite(version, mode, modules, options.parallel, log)
    if mode == "swapped":
        return judge_swapped(version, modules, baseline, result, log, options)
    expected = set(baseline["failing"])
    broken = sorted(set(result["failing"]) - expected)
    fixed = sorted(expected - set(result["failing"]))
    for name in fixed:
        print(f"passes with crossdb but failed without it: {name}")
    if result["ran"] != baseline["ran"] and modules == baseline["modules"]:
        print(f"ran {result['ran']} tests, the baseline ran {baseline['ran']}")
        broken.append("<number of tests run>")
    if broken:
        print(f"{len(broken)} tests that pass without crossdb fail with it:")
        for name in broken:
            print(f"  {name}")
        return 1
    print(f"every test that passes without crossdb passes with it ({result['ok']} ok)")
    return 0


def judge_swapped(version, modules, baseline, result, log, options) -> int:
    """Compare a swapped run with its expectations file; write it when recording."""
    path = swapped_path(version)
    labels = expand_modules(suite_dir(version) / "tests", modules)
    reports = swapped.blocks(log.read_text())
    failing = set(result["failing"]) - set(baseline["failing"])
    record = json.loads(path.read_text()) if path.exists() else {"failing": {}}
    entries = record["failing"]
    whole = modules == MODULES
    if options.record_swapped:
        bugs = []
        for test in sorted(failing):
            proposed = swapped.classify(reports.get(test, ""))
            previous = entries.get(test)
            if previous and previous["category"] == "open" and proposed is None:
                proposed = previous
            if proposed is None:
                bugs.append(test)
                continue
            entries[test] = proposed
        for test in [t for t in entries if swapped.in_modules(t, labels) and t not in failing]:
            del entries[test]
        record = {
            "django": version,
            "modules": MODULES if whole else record.get("modules", modules),
        }
        if whole:
            record["ran"] = result["ran"]
        else:
            record["ran"] = json.loads(path.read_text()).get("ran") if path.exists() else None
        record["failing"] = dict(sorted(entries.items()))
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {path}")
        report_counts(record["failing"])
        for test in bugs:
            print(f"BUG (no category: a different answer or a crash): {test}")
            print("    " + (reports.get(test, "").strip().splitlines() or ["?"])[-1][:200])
        return 1 if bugs else 0
    errors = []
    for test in sorted(failing):
        entry = entries.get(test)
        if entry is None:
            proposed = swapped.classify(reports.get(test, ""))
            why = f"would be {proposed['category']}" if proposed else "a bug: no category"
            errors.append(f"{test}: fails and is not listed ({why})")
        elif problem := swapped.check_entry(test, entry, reports.get(test, "")):
            errors.append(f"{test}: {problem}")
    passing = sorted(t for t in entries if swapped.in_modules(t, labels) and t not in failing)
    for test in passing:
        print(f"listed, but passes now: {test}")
    if passing and options.update:
        for test in passing:
            del entries[test]
        record["failing"] = entries
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"removed {len(passing)} entries from {path}")
    elif passing:
        errors.append(f"{len(passing)} listed tests pass: run with --update to shrink {path.name}")
    if whole and record.get("ran") is not None and result["ran"] != record["ran"]:
        errors.append(f"ran {result['ran']} tests, the expectations file says {record['ran']}")
    report_counts({t: e for t, e in entries.items() if t in failing})
    for test, entry in sorted(entries.items()):
        if entry["category"] == "open" and test in failing:
            print(f"open bug ({entry['issue']}): {test}: {entry['cause']}")
    if errors:
        print(f"{len(errors)} problems:")
        for line in errors:
            print(f"  {line}")
        return 1
    print(f"swapped mode: every failure is listed with its category ({result['ok']} ok)")
    return 0


def report_counts(entries: dict) -> None:
    counts: dict[str, int] = {}
    for entry in entries.values():
        counts[entry["category"]] = counts.get(entry["category"], 0) + 1
    print("categories: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
