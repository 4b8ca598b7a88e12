"""Earning on custom events and on segment entry, end to end through the worker (issue 9)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from tests.server.test_loyalty import join, make_program, member, ok, pg, run_loyalty
from voucherd.loyalty import earning as loyalty_earning
from voucherd.platform.db import create_pool
from voucherd.platform.redis_client import create_redis
from voucherd.platform.settings import Settings


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def rule(client: TestClient, h: dict[str, str], program_id: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = ok(client.post(f"/v1/loyalties/{program_id}/earning-rules", json=[body], headers=h))[0]
    return created


def test_custom_event_gives_points_once(
    client: TestClient, project: ProjectKeys, h: dict[str, str], settings: Settings
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "ann")
    rule(
        client,
        h,
        program["id"],
        {
            "event": "review_written",
            "custom_event": {"schema_id": "ms_review"},
            "loyalty": {"type": "FIXED", "points": 40},
        },
    )
    rule(
        client,
        h,
        program["id"],
        {
            "event": "review_written",
            "custom_event": {"schema_id": "ms_review"},
            "loyalty": {
                "type": "PROPORTIONAL",
                "calculation_type": "CUSTOM_EVENT_METADATA",
                "custom_event": {"metadata": {"every": 100, "points": 3, "property": "words"}},
            },
        },
    )
    event = {"event": "review_written", "customer": {"source_id": "ann"}, "metadata": {"words": 250}}
    ok(client.post("/v1/events", json=event, headers=h))
    ok(client.post("/v1/events", json={"event": "logged_in", "customer": {"source_id": "ann"}}, headers=h))
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 40 + 6
    drain_worker(settings)
    # Replaying the loyalty pass over the same triggers gives nothing twice.
    pg(settings, "UPDATE loyalty_triggers SET done_at = NULL")
    run_loyalty(settings, project.project_id)
    assert member(client, h, card["code"])["balance"] == 46
    txs = ok(client.get(f"/v1/loyalties/members/{card['code']}/transactions", headers=h))
    assert sorted(t["type"] for t in txs["data"]) == ["POINTS_ACCRUAL", "POINTS_ACCRUAL"]
    # A second event earns again.
    ok(client.post("/v1/events", json=event, headers=h))
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 92


def test_custom_event_names_the_card(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    program = make_program(client, h, auto_join=True)
    rule(
        client,
        h,
        program["id"],
        {"event": "survey", "custom_event": {"schema_id": "ms_survey"}, "loyalty": {"type": "FIXED", "points": 10}},
    )
    ok(client.post("/v1/events", json={"event": "survey", "customer": {"source_id": "bea"}}, headers=h))
    drain_worker(settings)
    cards = pg(settings, "SELECT code, loyalty_balance FROM vouchers WHERE campaign_id = $1", program["id"])
    assert len(cards) == 1 and cards[0]["loyalty_balance"] == 10  # auto-joined, then earned
    assert member(client, h, cards[0]["code"])["balance"] == 10


def test_entering_a_segment_gives_points_once(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    segment = ok(
        client.post(
            "/v1/segments",
            json={"name": "VIP", "type": "auto-update", "filter": {"metadata.vip": {"conditions": {"$is": True}}}},
            headers=h,
        )
    )
    program = make_program(client, h)
    card = join(client, h, program["id"], "cid")
    rule(
        client,
        h,
        program["id"],
        {
            "event": "customer.segment.entered",
            "segment": {"id": segment["id"]},
            "loyalty": {"type": "FIXED", "points": 100},
        },
    )
    ok(client.post("/v1/customers", json={"source_id": "cid", "metadata": {"vip": True}}, headers=h))
    ok(client.post("/v1/customers", json={"source_id": "cid", "metadata": {"vip": True, "x": 1}}, headers=h))
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 100
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 100
    # Someone outside the segment earns nothing.
    other = join(client, h, program["id"], "dee")
    ok(client.post("/v1/customers", json={"source_id": "dee", "metadata": {"vip": False}}, headers=h))
    drain_worker(settings)
    assert member(client, h, other["code"])["balance"] == 0


def test_worker_timer_activates_due_pending_points_and_expires_points(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    """No redemption and no paid order: the running worker's timer alone runs the due loyalty work."""
    program = make_program(client, h)
    card = join(client, h, program["id"], "eve")
    rule(
        client,
        h,
        program["id"],
        {
            "event": "order.paid",
            "loyalty": {"type": "FIXED", "points": 25},
            "pending_points": {"period_type": "DAY", "period_value": 1},
        },
    )
    ok(client.post("/v1/orders", json={"amount": 1000, "status": "PAID", "customer": {"source_id": "eve"}}, headers=h))
    drain_worker(settings)
    assert member(client, h, card["code"])["pending_points"] == 25
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    body = {"points": 70, "expiration_type": "CUSTOM_DATE", "expiration_date": tomorrow}
    ok(client.post(f"/v1/loyalties/members/{card['code']}/balance", json=body, headers=h))
    pg(settings, "UPDATE loyalty_pending_points SET activates_at = now() - interval '1 minute'")
    pg(settings, "UPDATE loyalty_points_buckets SET expires_at = $1::date", datetime.fromisoformat(yesterday))
    assert member(client, h, card["code"])["balance"] == 70

    env = {**os.environ, **settings.with_(loyalty_timer_ms=200, worker_claim_idle_ms=100).to_env()}
    proc = subprocess.Popen([sys.executable, "-m", "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            state = member(client, h, card["code"])
            if state["pending_points"] == 0 and state["expired_points"] == 70:
                break
            assert proc.poll() is None and time.monotonic() < deadline, state
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(20)
    assert state["balance"] == 25
    types = sorted(
        t["type"] for t in ok(client.get(f"/v1/loyalties/members/{card['code']}/transactions", headers=h))["data"]
    )
    assert types == ["PENDING_POINTS_ACTIVATION", "POINTS_ADDITION", "POINTS_EXPIRATION"]


def test_timer_rings_once_per_interval_across_workers(
    client: TestClient, project: ProjectKeys, h: dict[str, str], settings: Settings
) -> None:
    make_program(client, h)

    async def ticks() -> list[list[str]]:
        pool = await create_pool(settings.database_url, 1, 2)
        redis = create_redis(settings.redis_url)
        try:
            await redis.delete(loyalty_earning.timer_key())
            first = await loyalty_earning.tick(redis, pool, 60_000)
            second = await loyalty_earning.tick(redis, pool, 60_000)  # another worker, same interval
            await redis.delete(loyalty_earning.timer_key())
            return [first, second]
        finally:
            await redis.aclose()
            await pool.close()

    assert asyncio.run(ticks()) == [[project.project_id], []]
