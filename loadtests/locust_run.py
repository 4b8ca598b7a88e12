"""Runs the Locust file headless for one suite at one fixed arrival rate and reads back its summary."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from loadtests.api import Target

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PER_USER_RPS = 50.0  # each simulated user paces itself to this; users = rate / this


def run(
    target: Target,
    suite: str,
    seed_path: Path,
    rate: float,
    seconds: float,
    out: Path,
    cpus: str = "",
    warmup_s: float = 1.0,
) -> dict[str, Any]:
    users = max(1, math.ceil(rate / PER_USER_RPS))
    per_user = rate / users
    env = {
        **os.environ,
        "LOADTEST_SUITE": suite,
        "LOADTEST_SEED": str(seed_path),
        "LOADTEST_RATE_PER_USER": f"{per_user:.3f}",
        "LOADTEST_SAMPLES_OUT": str(out),
        "LOADTEST_WARMUP_S": str(warmup_s),
        "VOUCHERD_APP_ID": target.app_id,
        "VOUCHERD_APP_TOKEN": target.app_token,
    }
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{max(1, round(seconds))}s",
        "--stop-timeout",
        "5",
        "--host",
        target.url,
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    if cpus:
        argv = ["taskset", "-c", cpus, *argv]
    out.unlink(missing_ok=True)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"locust failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result.update(target_rps=rate, users=users)
    return result
