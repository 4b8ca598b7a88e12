"""One Locust suite per row of the performance table, chosen by ``LOADTEST_SUITE``.

The runner (``python -m loadtests.run``) starts Locust headless once per suite and arrival rate:

    LOADTEST_SUITE=validation LOADTEST_SEED=loadtests/report/seed.json LOADTEST_RATE_PER_USER=50 \
    VOUCHERD_APP_ID=... VOUCHERD_APP_TOKEN=... \
    .venv/bin/python -m locust -f loadtests/locustfile.py --headless -u 20 -r 20 -t 30s --host http://127.0.0.1:8000

Each user makes at most ``LOADTEST_RATE_PER_USER`` requests a second (``constant_throughput``), so users
times that rate is a fixed arrival rate while the server keeps up. Locust's own statistics round to whole
milliseconds, too coarse for a 3 ms goal, so every response time is also kept here as a float and
summarised into ``LOADTEST_SAMPLES_OUT`` when Locust quits.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from locust import FastHttpUser, constant_throughput, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtests.stats import summarise
from loadtests.suites import SUITES, bodies

SUITE = SUITES[os.environ.get("LOADTEST_SUITE", "floor")]
SEED: dict[str, Any] = json.loads(Path(os.environ.get("LOADTEST_SEED", "loadtests/report/seed.json")).read_text())
RATE_PER_USER = float(os.environ.get("LOADTEST_RATE_PER_USER", "50"))
WARMUP_S = float(os.environ.get("LOADTEST_WARMUP_S", "1"))
SAMPLES_OUT = os.environ.get("LOADTEST_SAMPLES_OUT", "")
HEADERS = {
    "X-App-Id": os.environ.get("VOUCHERD_APP_ID", ""),
    "X-App-Token": os.environ.get("VOUCHERD_APP_TOKEN", ""),
    "Content-Type": "application/json",
}
# A pool of distinct bodies, cycled: building one per request would cost Locust more than the server spends.
BODIES = [orjson.dumps(b) for b in bodies(SUITE, SEED, 1000)] or [b""]
MAX_SAMPLES = 2_000_000

_started = time.perf_counter()
_samples: list[float] = []
_load_times: list[float] = []
_errors: dict[str, int] = {}
_answered = [0]  # every answer, warm-up included: what the CPU counters of the window paid for


def _looks_wrong(body: bytes) -> str | None:
    """A 200 that is not what the suite measures (an unknown code, a tier that did not apply) is an error."""
    if SUITE.name in ("validation", "stack_validation") and b'"valid":true' not in body:
        return "validation answered valid:false"
    if SUITE.name != "qualifications" and b"inapplicable_redeemables" in body:
        return "a redeemable was inapplicable"
    return None


class SuiteUser(FastHttpUser):
    wait_time = constant_throughput(RATE_PER_USER)
    connection_timeout = 10.0
    network_timeout = 10.0

    def on_start(self) -> None:
        self._bodies = itertools.cycle(BODIES[hash(id(self)) % len(BODIES) :] + BODIES)

    @task
    def call(self) -> None:
        data = next(self._bodies) if SUITE.method == "POST" else None
        with self.client.request(
            SUITE.method, SUITE.path, data=data, headers=HEADERS, name=SUITE.name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.content or b'')[:200]!r}")
            elif problem := _looks_wrong(response.content or b""):
                response.failure(f"{problem}: {(response.content or b'')[:200]!r}")


@events.request.add_listener
def _record(response_time: float, exception: Any, **_kw: Any) -> None:
    now = time.perf_counter()
    _answered[0] += 1
    if exception is not None:
        key = str(exception)[:160]
        _errors[key] = _errors.get(key, 0) + 1
        return
    if now - _started >= WARMUP_S and len(_samples) < MAX_SAMPLES:
        _samples.append(response_time)
        _load_times.append(now)


@events.quitting.add_listener
def _write(**_kw: Any) -> None:
    if not SAMPLES_OUT:
        return
    window = (_load_times[-1] - _load_times[0]) if len(_load_times) > 1 else 0.0
    summary = summarise(_samples, window)
    summary.update(
        tool="locust",
        suite=SUITE.name,
        errors=sum(_errors.values()),
        error_kinds=_errors,
        rate_per_user=RATE_PER_USER,
        answered=_answered[0],
    )
    Path(SAMPLES_OUT).write_text(json.dumps(summary))
