"""The live page's figures add up every server process, as ``/metrics`` does (prometheus-client's
multiprocess files in ``settings.metrics_dir``): redemptions answered by two granian workers all count."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import ProjectKeys
from tests.processes import stop_group, wait_healthy
from voucherd.platform.localstack import free_port
from voucherd.platform.settings import Settings

REDEMPTIONS = 40


def _redemptions_in(path: Path) -> float:
    """The successful ``POST /v1/redemptions`` one process counted in its multiprocess file."""
    total = 0.0
    for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
        name, _sample, labels, _help = orjson.loads(key)
        if name == "voucherd_http_requests" and labels.get("route") == "/v1/redemptions" and labels["status"] == "200":
            total += value
    return total


@pytest.fixture
def two_processes(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    served = settings.with_(port=port, server_processes=2, metrics_dir=str(metrics_dir))
    env = {**os.environ, **served.to_env()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voucherd.cli", "serve"], env=env, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, metrics_dir
    finally:
        stop_group(proc)


def test_the_live_figures_count_the_redemptions_of_every_server_process(
    project: ProjectKeys, two_processes: tuple[str, Path]
) -> None:
    url, metrics_dir = two_processes
    voucher = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    assert httpx.post(f"{url}/v1/vouchers/SPREAD", json=voucher, headers=project.headers).status_code == 200
    body = {"redeemables": [{"object": "voucher", "id": "SPREAD"}], "order": {"amount": 1000}}
    for _ in range(REDEMPTIONS):  # a connection each, so both processes take some
        assert httpx.post(f"{url}/v1/redemptions", json=body, headers=project.headers).status_code == 200
    with httpx.Client(base_url=url) as browser:
        login = {"kind": "application", "key_id": project.app_id, "token": project.app_token, "next": ""}
        assert browser.post("/console/login", data=login).status_code == 303
        figures = browser.get("/console/live/figures").json()
    # Each process's own count of the redemptions it answered: both took some (else the sum proves nothing).
    shares = [_redemptions_in(path) for path in metrics_dir.glob("counter_*.db")]
    assert len(shares) == 2 and all(shares) and sum(shares) == REDEMPTIONS, shares
    assert figures["redemptions"]["succeeded"] == REDEMPTIONS
    calls = {c["call"]: c for c in figures["calls"]}
    assert calls["POST /v1/redemptions"]["count"] == REDEMPTIONS
    assert calls["POST /v1/redemptions"]["buckets"][-1] == [None, REDEMPTIONS]
