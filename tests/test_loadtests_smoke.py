"""The load-test suites still work: ``make loadtest-smoke`` against a throw-away stack, a few seconds per suite.

It fails on request errors (a 4xx/5xx, an inapplicable code, a failed timed run), never on latency:
speed is measured by ``make loadtest``, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_suite_runs_without_request_errors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VOUCHERIFY_HOST", "REDIS_URL", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.run", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads((tmp_path / "results.json").read_text())
    ran = {name for name, suite in results["suites"].items() if "fixed" in suite}
    assert {"floor", "validation", "redemption", "stack_validation", "stack_redemption"} <= ran
    for name in ran:
        assert results["suites"][name]["fixed"]["count"] > 0, _diagnosis(name, results, done.stdout, tmp_path)
    assert all(row.get("ok") for row in results["timed"])
    report = (tmp_path / "REPORT.md").read_text()
    assert "code validation" in report and (tmp_path / "latency_vs_load.png").exists()
    # CPU per request by role, read from the stack's own process counters over the window
    redemption_cpu = results["suites"]["redemption"]["fixed"]["cpu_us_per_request"]
    for role in ("server", "redis", "postgres", "load"):  # the worker may write behind after a short window
        assert redemption_cpu[role] is not None and redemption_cpu[role] > 0, (role, redemption_cpu)
    assert redemption_cpu["worker"] is not None
    assert "## CPU per request, by role" in report


def _diagnosis(name: str, results: dict[str, Any], stdout: str, out: Path) -> str:
    """What a suite that answered nothing leaves to read: its summary, the run's log, the stack's slow or odd lines."""
    log = out / "raw" / "stack.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    odd = [line for line in lines if not _plain_access_line(line)]
    return "\n".join(
        [
            f"suite {name} answered nothing in its window: {results['suites'][name]['fixed']}",
            stdout[-2000:],
            "stack log, lines other than fast 2xx access lines:",
            *odd[-80:],
        ]
    )


def _plain_access_line(line: str) -> bool:
    # text access lines: "<time> <method> <path> <status> <ms>ms <request id>"
    parts = line.split()
    if len(parts) != 6 or not parts[4].endswith("ms"):
        return False
    try:
        return parts[3].startswith("2") and float(parts[4][:-2]) < 500
    except ValueError:
        return False


def test_cpu_roles_from_command_lines() -> None:
    from loadtests.cpu import role_of

    assert role_of(b"/venv/bin/python\x00-m\x00voucherd.cli\x00serve\x00") == "server"
    assert role_of(b"/venv/bin/python\x00-m\x00worker\x00") == "worker"
    assert role_of(b"/venv/bin/voucherd\x00worker\x00--burst\x00") == "worker"
    assert role_of(b"/usr/bin/redis-server 127.0.0.1:4242\x00") == "redis"
    assert role_of(b"postgres: voucherd voucherd 127.0.0.1(5000) idle\x00") == "postgres"
    assert role_of(b"/venv/bin/python\x00-m\x00voucherd.cli\x00run\x00") is None  # the launcher only waits
