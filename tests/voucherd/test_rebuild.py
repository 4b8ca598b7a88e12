"""Redis can be rebuilt from PostgreSQL: after losing Redis, checkout answers as before."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from voucherd.jobs import rebuild
from voucherd.platform import db
from voucherd.platform.redis_client import create_redis
from voucherd.platform.settings import Settings


def run_rebuild(settings: Settings, project_id: str) -> rebuild.RebuildReport:
    async def go() -> rebuild.RebuildReport:
        conn = await db.connect(settings.database_url)
        client = create_redis(settings.redis_url)
        try:
            return await rebuild.rebuild(conn, client, project_id)
        finally:
            await client.aclose()
            await conn.close()

    return asyncio.run(go())


def test_checkout_answers_the_same_after_redis_is_rebuilt(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    client.post(
        "/v1/vouchers/KEEP",
        json={
            "type": "DISCOUNT_VOUCHER",
            "discount": {"type": "AMOUNT", "amount_off": 100},
            "redemption": {"quantity": 3},
        },
        headers=h,
    )
    client.post("/v1/vouchers/CARD", json={"type": "GIFT_VOUCHER", "gift": {"amount": 1000}}, headers=h)
    rule = client.post(
        "/v1/validation-rules",
        json={
            "name": "once",
            "rules": {"1": {"name": "redemption.count.per_customer", "conditions": {"$less_than": [1]}}},
        },
        headers=h,
    ).json()
    client.post(
        f"/v1/validation-rules/{rule['id']}/assignments",
        json={"related_object_type": "voucher", "related_object_id": "KEEP"},
        headers=h,
    )
    customer = client.post("/v1/customers", json={"source_id": "ruth"}, headers=h).json()
    body = {
        "redeemables": [
            {"object": "voucher", "id": "KEEP"},
            {"object": "voucher", "id": "CARD", "gift": {"credits": 400}},
        ],
        "customer": {"source_id": "ruth"},
        "order": {"amount": 5000},
    }
    assert client.post("/v1/redemptions", json=body, headers=h).status_code == 200
    drain_worker(settings)

    redis.Redis.from_url(settings.redis_url).flushdb()
    report = run_rebuild(settings, project.project_id)
    assert report.vouchers_written >= 2 and report.customers >= 1 and report.counters > 0

    # The once-per-customer count survived, the gift balance and quantity too, and ruth is still ruth.
    again = client.post("/v1/redemptions", json={**body, "redeemables": body["redeemables"][:1]}, headers=h)
    assert again.status_code == 400 and again.json()["key"] == "redemption_rules_violated"
    voucher = client.get("/v1/vouchers/CARD", headers=h).json()
    assert voucher["gift"]["balance"] == 600
    other = client.post("/v1/redemptions", json={**body, "customer": {"source_id": "sam"}}, headers=h)
    assert other.status_code == 200, other.text
    assert other.json()["redemptions"][0]["voucher"]["code"] == "KEEP"
    repeat = client.post(
        "/v1/redemptions",
        json={
            "redeemables": [{"object": "voucher", "id": "CARD", "gift": {"credits": 100}}],
            "customer": {"source_id": "ruth"},
        },
        headers=h,
    )
    assert repeat.json()["redemptions"][0]["customer_id"] == customer["id"]


def test_status_reports_storage_and_streams(settings: Settings, project: ProjectKeys) -> None:
    env = {**os.environ, **settings.to_env()}
    result = subprocess.run(
        [sys.executable, "-m", "voucherd.cli", "status"], env=env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["redis"] == "ok" and report["postgres"] == "ok"
    assert any(s["stream"].endswith("{async_actions}") for s in report["streams"])
    assert report["async_actions_waiting"] == []
