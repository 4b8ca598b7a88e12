"""Bursts against a real server: one card's points and one gift card's credits are never overspent."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx2
import pytest

from tests.conftest import LiveServer, ProjectKeys, drain_worker

pytestmark = pytest.mark.slow


async def _burst(server: LiveServer, headers: dict[str, str], calls: list[tuple[str, Any]]) -> list[httpx2.Response]:
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx2.AsyncClient(base_url=server.url, headers=headers, limits=limits, timeout=60) as client:
        return list(await asyncio.gather(*(client.post(path, json=body) for path, body in calls)))


def burst(server: LiveServer, headers: dict[str, str], calls: list[tuple[str, Any]]) -> list[httpx2.Response]:
    return asyncio.run(_burst(server, headers, calls))


def post(server: LiveServer, headers: dict[str, str], path: str, body: Any) -> Any:
    response = httpx2.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def pg_value(server: LiveServer, sql: str, *args: Any) -> Any:
    async def fetch() -> Any:
        conn = await asyncpg.connect(server.settings.database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_simultaneous_point_spends_never_exceed_the_card(live_server: LiveServer, project: ProjectKeys) -> None:
    h = project.headers
    program = post(live_server, h, "/v1/loyalties", {"name": "Club", "voucher": {"type": "LOYALTY_CARD"}})
    card = post(live_server, h, f"/v1/loyalties/{program['id']}/members", {"customer": {"source_id": "c"}})
    code = card["code"]
    post(live_server, h, f"/v1/loyalties/members/{code}/balance", {"points": 1000})
    reward = post(live_server, h, "/v1/rewards", {"name": "Coin", "parameters": {"coin": {"exchange_ratio": 1}}})
    post(live_server, h, f"/v1/rewards/{reward['id']}/assignments", {"campaign": program["id"]})
    spend = {
        "redeemables": [{"object": "voucher", "id": code, "reward": {"id": reward["id"], "points": 100}}],
        "order": {"amount": 100000},
    }
    calls: list[tuple[str, Any]] = [("/v1/redemptions", spend)] * 30
    calls += [(f"/v1/loyalties/members/{code}/balance", {"points": -100})] * 10
    responses = burst(live_server, h, calls)
    succeeded = [r for r in responses if r.status_code == 200]
    assert len(succeeded) == 10, [r.text for r in responses if r.status_code != 200][:3]
    assert all(r.status_code == 400 for r in responses if r.status_code != 200)
    card_now = httpx2.get(f"{live_server.url}/v1/loyalties/members/{code}", headers=h).json()
    assert card_now["loyalty_card"]["balance"] == 0
    drain_worker(live_server.settings)
    assert pg_value(live_server, "SELECT loyalty_balance FROM vouchers WHERE code = $1", code) == 0


def test_simultaneous_gift_card_spends_never_exceed_the_balance(live_server: LiveServer, project: ProjectKeys) -> None:
    h = project.headers
    post(live_server, h, "/v1/vouchers/GIFT", {"type": "GIFT_VOUCHER", "gift": {"amount": 1000}})
    spend = {"redeemables": [{"object": "voucher", "id": "GIFT", "gift": {"credits": 100}}], "order": {"amount": 5000}}
    calls: list[tuple[str, Any]] = [("/v1/redemptions", spend)] * 30
    calls += [("/v1/vouchers/GIFT/balance", {"amount": -100})] * 5
    responses = burst(live_server, h, calls)
    assert sum(r.status_code == 200 for r in responses) == 10
    assert httpx2.get(f"{live_server.url}/v1/vouchers/GIFT", headers=h).json()["gift"]["balance"] == 0
    drain_worker(live_server.settings)
    assert pg_value(live_server, "SELECT gift_balance FROM vouchers WHERE code = 'GIFT'") == 0
