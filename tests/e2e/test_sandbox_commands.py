"""The sandbox's commands from a fresh directory: demo (twice) and a tiny bench."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.e2e.conftest import MANAGE


def _manage(var, *args, timeout=600):
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_URL")}
    env.update(SANDBOX_VAR=str(var))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_runs_every_step_and_can_run_again(tmp_path):
    for run in ("first", "second"):
        result = _manage(tmp_path, "demo")
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{run} run:\n{output}"
        steps = re.findall(r"^(\d+)\. ", result.stdout, re.MULTILINE)
        assert steps == [str(n) for n in range(1, 10)], output
        assert result.stdout.count("   ok: ") == 9, output
        assert "FAILED" not in output
    assert "seeded: nothing new" in result.stdout


def test_bench_prints_a_row_per_operation(tmp_path):
    result = _manage(
        tmp_path,
        *("bench", "--posts", "300", "--users", "30", "--rounds", "1"),
        *("--forward-rows", "50", "--cascade-users", "2", "--cascade-posts", "10"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = [line for line in result.stdout.splitlines() if re.search(r"\d\.\d\dx", line)]
    # The foreign-key rows, the aggregate rows, the rows per related row and
    # the many-to-many rows.
    assert len(rows) == 18, output
    assert "failed" not in output
    assert "(answers differ)" not in output
    assert re.search(r"audit throughput: 300 rows \(30 distinct ids\)", result.stdout), output


def test_bench_keys_carries_string_keys_through_every_path(tmp_path):
    result = _manage(tmp_path, "bench", "--keys", "300", "--key-length", "150", "--rounds", "0")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    paths = re.findall(
        r"^  (.+): [\d.]+ s, peak Python memory .*; result (\d+)$", result.stdout, re.M
    )
    assert [name.split(" ")[0] for name, _ in paths] == [
        "filter(subscriber__in=<300",
        "prefetch_related('subscriber')",
        "prefetch_related('shop_subscriptions')",
        "CASCADE",
    ], output
    # Every key found each way; nothing left behind by the cascade.
    assert [int(n) for _, n in paths] == [300, 300, 300, 0], output
