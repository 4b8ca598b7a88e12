"""Webhook deliveries end to end: redemption → write-behind → outbox → dispatcher → a receiver in the test."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from voucherd.platform.db import create_pool
from voucherd.platform.localstack import free_port
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings
from worker.base import WorkerContext
from worker.webhooks import run_dispatcher


@dataclass
class Receiver:
    """A tiny HTTP endpoint on 127.0.0.1 that records every POST and answers ``status``."""

    url: str
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with box.lock:
                box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def dispatch_until(settings: Settings, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run the worker's webhook dispatcher (as ``python -m worker`` runs it) until ``done()`` or the timeout."""

    async def main() -> None:
        pool = await create_pool(settings.database_url, 1, 4)
        redis = create_redis(settings.redis_url)
        ctx = WorkerContext(redis=redis, pool=pool, scripts=scripts_for(redis), settings=settings)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_dispatcher(ctx, stop, poll_s=0.05))
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if done() or runner.done():  # done() looks at the receiver thread's state
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await runner  # re-raises whatever broke the dispatcher
            await redis.aclose()
            await pool.close()

    asyncio.run(main())


def redeem_once(client: TestClient, project: ProjectKeys, code: str) -> dict[str, Any]:
    created = client.post(
        f"/v1/vouchers/{code}",
        headers=project.headers,
        json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
    )
    assert created.status_code == 200, created.text
    response = client.post(
        "/v1/redemptions",
        headers=project.headers,
        json={"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": 1000}},
    )
    assert response.status_code == 200, response.text
    redemption: dict[str, Any] = response.json()["redemptions"][0]
    return redemption


def make_webhook(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str], url: str
) -> dict[str, Any]:
    response = client.post(
        f"/management/v1/projects/{project.project_id}/webhooks",
        headers=management_headers,
        json={"target_url": url, "events": ["redemption.succeeded"]},
    )
    assert response.status_code == 200, response.text
    hook: dict[str, Any] = response.json()
    return hook


def deliveries(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str], hook_id: str
) -> list[dict[str, Any]]:
    response = client.get(
        f"/management/v1/projects/{project.project_id}/webhooks/{hook_id}/deliveries", headers=management_headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]
    return items


def test_a_redemption_is_delivered_signed_with_the_voucherify_envelope(
    client: TestClient,
    project: ProjectKeys,
    management_headers: dict[str, str],
    settings: Settings,
    receiver: Receiver,
) -> None:
    hook = make_webhook(client, project, management_headers, receiver.url)
    redemption = redeem_once(client, project, "HOOKED")
    drain_worker(settings)
    dispatch_until(settings, lambda: len(receiver.bodies()) >= 1)

    [(headers, body)] = receiver.bodies()
    assert headers["content-type"] == "application/json"
    expected = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-voucherify-signature"] == expected
    envelope = orjson.loads(body)
    assert envelope["id"].startswith("whs_") and envelope["project_id"] == project.project_id
    assert envelope["type"] == "redemption.succeeded"
    assert envelope["source"] == {"id": hook["id"], "object": "webhook", "target_url": receiver.url}
    event = envelope["event"]
    assert event["type"] == "redemption.succeeded" and event["entity_id"] == redemption["id"]
    assert event["event_source"] == {"channel": "API"} and event["created_at"]
    data = envelope["data"]
    assert data["object"]["id"] == redemption["id"] and data["object"]["result"] == "SUCCESS"
    assert data["voucher"]["code"] == "HOOKED"

    [delivery] = deliveries(client, project, management_headers, hook["id"])
    assert delivery["id"] == envelope["id"] and delivery["status"] == "SUCCEEDED"
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 200 and delivery["delivered_at"]

    # A replayed write-behind batch adds no second delivery.
    drain_worker(settings)
    dispatch_until(settings, lambda: False, timeout=0.5)
    assert len(receiver.bodies()) == 1


def test_a_failing_receiver_is_retried_with_backoff_then_the_webhook_is_disabled(
    client: TestClient,
    project: ProjectKeys,
    management_headers: dict[str, str],
    settings: Settings,
    receiver: Receiver,
) -> None:
    receiver.status = 500
    fast = settings.with_(webhook_retry_base_ms=100, webhook_max_attempts=3)
    hook = make_webhook(client, project, management_headers, receiver.url)
    redeem_once(client, project, "FAILING")
    drain_worker(settings)
    started = time.monotonic()
    dispatch_until(fast, lambda: len(receiver.bodies()) >= 3, timeout=20)
    elapsed = time.monotonic() - started
    dispatch_until(fast, lambda: False, timeout=0.6)  # no fourth try comes

    received = receiver.bodies()
    assert len(received) == 3
    assert len({body for _headers, body in received}) == 1  # every retry sends the same signed bytes
    assert elapsed >= 0.1 + 0.2  # 100 ms, then 200 ms between the tries

    [delivery] = deliveries(client, project, management_headers, hook["id"])
    assert delivery["status"] == "FAILED" and delivery["attempts"] == 3
    assert delivery["last_status_code"] == 500 and delivery["last_error"] == "HTTP 500"
    attempts = client.get(
        f"/management/v1/projects/{project.project_id}/webhooks/{hook['id']}/deliveries/{delivery['id']}/attempts",
        headers=management_headers,
    )
    assert attempts.status_code == 200, attempts.text
    assert [(a["attempt"], a["status_code"]) for a in attempts.json()["data"]] == [(1, 500), (2, 500), (3, 500)]
    scraped = client.get("/metrics").text  # the outcomes are a metric family too
    assert 'voucherd_webhook_attempts_total{outcome="failure"} 3.0' in scraped
    assert 'voucherd_webhook_deliveries{status="FAILED"} 1.0' in scraped

    disabled = client.get(
        f"/management/v1/projects/{project.project_id}/webhooks/{hook['id']}", headers=management_headers
    ).json()
    assert disabled["active"] is False

    # A disabled webhook gets nothing more; re-enabling it delivers new events again.
    receiver.status = 200
    redeem_once(client, project, "AFTER")
    drain_worker(settings)
    dispatch_until(fast, lambda: False, timeout=0.5)
    assert len(receiver.bodies()) == 3
    enabled = client.put(
        f"/management/v1/projects/{project.project_id}/webhooks/{hook['id']}",
        headers=management_headers,
        json={"active": True},
    )
    assert enabled.status_code == 200 and enabled.json()["active"] is True
    redeem_once(client, project, "REENABLED")
    drain_worker(settings)
    dispatch_until(fast, lambda: len(receiver.bodies()) >= 4)
    assert orjson.loads(receiver.bodies()[-1][1])["data"]["voucher"]["code"] == "REENABLED"


def test_a_refused_connection_counts_as_a_failed_attempt(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str], settings: Settings
) -> None:
    fast = settings.with_(webhook_retry_base_ms=50, webhook_max_attempts=2)
    hook = make_webhook(client, project, management_headers, f"http://127.0.0.1:{free_port()}/nobody")
    redeem_once(client, project, "REFUSED")
    drain_worker(settings)

    def failed() -> bool:
        return [d["status"] for d in deliveries(client, project, management_headers, hook["id"])] == ["FAILED"]

    dispatch_until(fast, failed)
    [delivery] = deliveries(client, project, management_headers, hook["id"])
    assert delivery["attempts"] == 2 and delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("ConnectError")
