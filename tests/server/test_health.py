"""``GET /health`` says which part is down, without authentication (voucherd.health): 503 only when checkout
cannot be answered (Redis down); PostgreSQL down, no live worker or a lagging stream answer 200 "degraded".
``voucherd status`` reports the same."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from server.app import build_app
from tests.conftest import ProjectKeys, assert_error
from tests.services import scratch_dir
from voucherd import db, health, heartbeats, keys
from voucherd.async_actions import STREAM as ASYNC_ACTIONS
from voucherd.localstack import PostgresServer, free_port
from voucherd.redis_client import create_redis
from voucherd.settings import Settings

LIVE_WORKER = {"status": "ok", "live": 1, "gone": 0}
NO_LAG = {"status": "ok", "lag": 0, "pending": 0, "oldest_age_s": 0.0, "limit_s": health.LAG_LIMIT_S}


def beat(settings: Settings, name: str = "test-worker") -> None:
    """A consumer's heartbeat, as a worker's loop writes it."""

    async def once() -> None:
        client = create_redis(settings.redis_url)
        try:
            assert await heartbeats.Heartbeat(client, name).beat()
        finally:
            await client.aclose()

    asyncio.run(once())


def status_report(settings: Settings) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run(
        [sys.executable, "-m", "voucherd.cli", "status"], env=env, capture_output=True, timeout=60, check=False
    )
    return done.returncode, json.loads(done.stdout)


def test_health_is_200_ok_when_every_part_is_up(settings: Settings, client: TestClient) -> None:
    beat(settings)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "down": [],
        "redis": "ok",
        "postgres": "ok",
        "workers": LIVE_WORKER,
        "stream_lag": NO_LAG,
    }
    code, report = status_report(settings)
    assert code == 0
    assert {k: report[k] for k in response.json()} == response.json()  # the same report
    assert any(s["stream"].endswith("{async_actions}") for s in report["streams"])


def test_health_is_503_when_redis_is_down(settings: Settings) -> None:
    dead = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(build_app(dead), raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing" and body["down"] == ["redis"]
    assert body["redis"].startswith("failing") and body["postgres"] == "ok"
    assert body["workers"] == body["stream_lag"] == {"status": "unknown"}
    assert "redis://" not in response.text
    code, report = status_report(dead)
    assert code == 1
    assert report["status"] == "failing" and report["down"] == ["redis"]


def test_no_live_worker_is_degraded_but_serving(settings: Settings, client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["down"] == ["workers"]
    assert body["workers"] == {"status": "failing", "live": 0, "gone": 0}
    code, report = status_report(settings)
    assert code == 0  # exit 1 is for a store that is down
    assert report["status"] == "degraded" and report["down"] == ["workers"]


@pytest.mark.slow
def test_a_killed_worker_is_seen_gone_at_once(settings: Settings, client: TestClient) -> None:
    env = {**os.environ, **settings.to_env()}
    worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while client.get("/health").json()["workers"]["live"] != 1:
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never beat"
            time.sleep(0.1)
        assert client.get("/health").json()["down"] == []
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        # Its key lives on for the TTL, but it names a process of this machine that is gone.
        body = client.get("/health").json()
        assert body["workers"] == {"status": "failing", "live": 0, "gone": 1}
        assert body["down"] == ["workers"]
    finally:
        worker.kill()
        worker.wait()


def test_a_stream_waiting_too_long_is_degraded(settings: Settings, client: TestClient) -> None:
    beat(settings)
    stream = keys.stream(ASYNC_ACTIONS)
    r = redis.Redis.from_url(settings.redis_url)
    try:
        r.xgroup_create(stream, "voucherd", id="0", mkstream=True)
        old_ms = int(time.time() * 1000) - int(health.LAG_LIMIT_S * 1000) - 30_000
        r.xadd(stream, {"data": "{}"}, id=f"{old_ms}-0")  # appended 90 s ago and never read
    finally:
        r.close()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["down"] == ["stream_lag"]
    assert body["stream_lag"]["status"] == "lagging" and body["stream_lag"]["lag"] == 1
    assert body["stream_lag"]["oldest_age_s"] > health.LAG_LIMIT_S
    code, report = status_report(settings)
    assert code == 0 and report["down"] == ["stream_lag"]


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    with scratch_dir("voucherd-health-pg-") as folder:
        server = PostgresServer(folder / "data", free_port(), durable=False)
        server.start()
        try:
            asyncio.run(db.migrate_dsn(server.url))
            yield server
        finally:
            server.stop()


@pytest.mark.slow
def test_postgresql_down_is_degraded_but_serving(settings: Settings, own_postgres: PostgresServer) -> None:
    own = settings.with_(database_url=own_postgres.url)
    beat(own)
    with TestClient(build_app(own), raise_server_exceptions=False) as client:
        assert client.get("/health").json()["down"] == []
        own_postgres.stop()
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["down"] == ["postgres"]
    assert body["postgres"].startswith("failing") and body["redis"] == "ok"
    assert body["workers"] == LIVE_WORKER
    code, report = status_report(own)
    assert code == 1  # a store is down
    assert report["status"] == "degraded" and report["down"] == ["postgres"]
    assert "async_actions_waiting" not in report


def test_a_request_while_redis_is_down_is_a_503_in_the_error_shape(settings: Settings, project: ProjectKeys) -> None:
    dead = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = {"redeemables": [{"object": "voucher", "id": "ANY"}], "order": {"amount": 1000}}
    with TestClient(build_app(dead), raise_server_exceptions=False) as client:
        response = client.post("/v1/validations", json=body, headers=project.headers)
    error = assert_error(response, 503, "service_unavailable")
    assert "Traceback" not in response.text and "redis://" not in response.text
    assert error["message"] == "Service Unavailable"
