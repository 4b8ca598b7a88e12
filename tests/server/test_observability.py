"""Metrics and access logs: every family moves under a short load, across server processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from starlette.testclient import TestClient

from server.app import build_app
from tests.conftest import ProjectKeys, drain_worker
from tests.services import scratch_dir
from voucherd.platform.localstack import free_port
from voucherd.platform.settings import Settings


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus exposition (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def load(client: Any, headers: dict[str, str], n: int) -> None:
    code = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    client.post("/v1/vouchers/OBSERVED", json=code, headers=headers)
    body = {"redeemables": [{"object": "voucher", "id": "OBSERVED"}], "order": {"amount": 1000}}
    for _ in range(n):
        assert client.post("/v1/validations", json=body, headers=headers).status_code == 200
    for _ in range(n // 2):
        assert client.post("/v1/redemptions", json=body, headers=headers).status_code == 200


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings.with_(log_format="json")), raise_server_exceptions=False) as test_client:
        yield test_client


def test_each_family_moves_under_load(
    client: TestClient, project: ProjectKeys, settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    before = client.get("/metrics").text
    capfd.readouterr()
    load(client, project.headers, 80)
    logged = capfd.readouterr().err
    drain_worker(settings)
    after = client.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text

    def moved(name: str, **labels: str) -> float:
        return sample(text, name, **labels) - sample(before, name, **labels)

    assert moved("voucherd_http_requests_total", route="/v1/validations", method="POST", status="200") == 80
    assert moved("voucherd_http_request_duration_seconds_count", route="/v1/redemptions", method="POST") == 40
    assert moved("voucherd_redis_script_duration_seconds_count", script="read_state") >= 120
    assert moved("voucherd_redis_script_duration_seconds_count", script="apply_counters") == 40
    assert moved("voucherd_engine_evaluation_seconds_count", call="stack") >= 120
    assert sample(text, "voucherd_pool_connections", pool="postgres", state="open") >= 1
    assert re.search(r'voucherd_stream_lag_messages\{stream="[^"]*redemptions', text)
    assert sample(text, "voucherd_task_enqueue_to_done_seconds_count", task="redemptions") >= 40

    lines = [orjson.loads(line) for line in logged.splitlines() if '"voucherd.access"' in line]
    assert len(lines) >= 120
    last = lines[-1]
    assert last["route"] == "/v1/redemptions" and last["status"] == 200 and last["method"] == "POST"
    assert last["request_id"].startswith("v-") and last["project_id"] == project.project_id
    assert isinstance(last["duration_ms"], float)


@pytest.mark.slow
def test_metrics_add_up_across_server_processes(settings: Settings, project: ProjectKeys) -> None:
    with scratch_dir("voucherd-metrics-") as folder:
        port = free_port()
        served = settings.with_(port=port, server_processes=2, metrics_dir=str(folder), access_log=False)
        env = {**os.environ, **served.to_env()}
        proc = subprocess.Popen([sys.executable, "-m", "voucherd.cli", "serve"], env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=1):
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            # New connections each time, so both processes answer some of them.
            for _ in range(60):
                assert httpx2.get(f"{url}/_floor").status_code == 200
            scraped = httpx2.get(f"{url}/metrics").text
            assert sample(scraped, "voucherd_http_requests_total", route="floor", status="200") == 60
            assert len(list(folder.glob("*.db"))) >= 2  # one file per process that recorded samples
        finally:
            proc.terminate()
            proc.wait(20)
