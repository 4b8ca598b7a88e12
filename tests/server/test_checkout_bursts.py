"""Bursts of concurrent checkouts against a real server: limits hold, and PostgreSQL agrees."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import httpx2
import pytest

from tests.conftest import LiveServer, ProjectKeys, drain_worker

pytestmark = pytest.mark.slow


async def _burst(server: LiveServer, headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[httpx2.Response]:
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx2.AsyncClient(base_url=server.url, headers=headers, limits=limits, timeout=60) as client:
        return list(await asyncio.gather(*(client.post("/v1/redemptions", json=b) for b in bodies)))


def burst(server: LiveServer, headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[httpx2.Response]:
    return asyncio.run(_burst(server, headers, bodies))


def stored_successes(server: LiveServer, code: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(server.settings.database_url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM redemptions WHERE voucher_code = $1 AND result = 'SUCCESS'", code
                )
            )
        finally:
            await conn.close()

    return asyncio.run(count())


def create(server: LiveServer, headers: dict[str, str], code: str, body: dict[str, Any]) -> None:
    response = httpx2.post(f"{server.url}/v1/vouchers/{code}", json=body, headers=headers)
    assert response.status_code == 200, response.text


def test_500_redemptions_of_a_code_with_quantity_100_give_exactly_100(
    live_server: LiveServer, project: ProjectKeys
) -> None:
    create(
        live_server,
        project.headers,
        "HUNDRED",
        {
            "type": "DISCOUNT_VOUCHER",
            "discount": {"type": "AMOUNT", "amount_off": 100},
            "redemption": {"quantity": 100},
        },
    )
    body = {"redeemables": [{"object": "voucher", "id": "HUNDRED"}], "order": {"amount": 1000}}
    responses = burst(live_server, project.headers, [body] * 500)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 100, 400: 400}, statuses
    assert {r.json()["key"] for r in responses if r.status_code == 400} == {"quantity_exceeded"}
    drain_worker(live_server.settings)
    assert stored_successes(live_server, "HUNDRED") == 100


def test_a_gift_card_drained_concurrently_never_goes_negative(live_server: LiveServer, project: ProjectKeys) -> None:
    create(live_server, project.headers, "BALANCE", {"type": "GIFT_VOUCHER", "gift": {"amount": 10000}})
    body = {
        "redeemables": [{"object": "voucher", "id": "BALANCE", "gift": {"credits": 300}}],
        "order": {"amount": 5000},
    }
    responses = burst(live_server, project.headers, [body] * 200)
    successes = sum(r.status_code == 200 for r in responses)
    # 10000 // 300 = 33 spends fit; the 34th would need 10200.
    assert successes == 33
    assert {r.json()["key"] for r in responses if r.status_code != 200} == {"gift_amount_exceeded"}
    voucher = httpx2.get(f"{live_server.url}/v1/vouchers/BALANCE", headers=project.headers).json()
    assert voucher["gift"]["balance"] == 10000 - 33 * 300 == 100
    drain_worker(live_server.settings)
    assert stored_successes(live_server, "BALANCE") == 33


def test_sessions_and_redemptions_together_never_exceed_the_quantity(
    live_server: LiveServer, project: ProjectKeys
) -> None:
    create(
        live_server,
        project.headers,
        "FIFTY",
        {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}, "redemption": {"quantity": 50}},
    )

    async def mixed() -> tuple[list[str], int]:
        limits = httpx2.Limits(max_connections=100)
        async with httpx2.AsyncClient(
            base_url=live_server.url, headers=project.headers, limits=limits, timeout=60
        ) as c:
            redeemable = [{"object": "voucher", "id": "FIFTY"}]
            locks = [
                c.post("/v1/validations", json={"redeemables": redeemable, "session": {"type": "LOCK", "key": f"s{i}"}})
                for i in range(80)
            ]
            plain = [c.post("/v1/redemptions", json={"redeemables": redeemable}) for _ in range(80)]
            answers = await asyncio.gather(*locks, *plain)
            held = [f"s{i}" for i, a in enumerate(answers[:80]) if a.json()["valid"]]
            redeemed = sum(a.status_code == 200 for a in answers[80:])
            finals = await asyncio.gather(
                *(c.post("/v1/redemptions", json={"redeemables": redeemable, "session": {"key": k}}) for k in held)
            )
            assert all(f.status_code == 200 for f in finals)
            return held, redeemed

    held, redeemed = asyncio.run(mixed())
    assert len(held) + redeemed == 50
    drain_worker(live_server.settings)
    assert stored_successes(live_server, "FIFTY") == 50


def _rule(server: LiveServer, headers: dict[str, str], code: str, rule: dict[str, Any]) -> None:
    created = httpx2.post(
        f"{server.url}/v1/validation-rules", json={"name": "limit", "rules": {"1": rule}}, headers=headers
    )
    assert created.status_code == 200, created.text
    assigned = httpx2.post(
        f"{server.url}/v1/validation-rules/{created.json()['id']}/assignments",
        json={"related_object_type": "voucher", "related_object_id": code},
        headers=headers,
    )
    assert assigned.status_code == 200, assigned.text


def test_a_once_per_customer_rule_holds_under_a_burst(live_server: LiveServer, project: ProjectKeys) -> None:
    create(
        live_server,
        project.headers,
        "ONCE",
        {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
    )
    _rule(
        live_server,
        project.headers,
        "ONCE",
        {"name": "redemption.count.per_customer", "conditions": {"$less_than": [1]}},
    )
    alice = {"redeemables": [{"object": "voucher", "id": "ONCE"}], "customer": {"source_id": "alice"}}
    bob = {"redeemables": [{"object": "voucher", "id": "ONCE"}], "customer": {"source_id": "bob"}}
    responses = burst(live_server, project.headers, [alice] * 60 + [bob] * 60)
    by_customer = Counter(
        r.json()["redemptions"][0]["customer"]["source_id"] for r in responses if r.status_code == 200
    )
    assert by_customer == {"alice": 1, "bob": 1}
    assert {r.json()["key"] for r in responses if r.status_code != 200} == {"redemption_rules_violated"}

    # A rollback gives the customer's one redemption back.
    drain_worker(live_server.settings)
    first = next(r.json()["redemptions"][0] for r in responses[:60] if r.status_code == 200)
    rolled = httpx2.post(f"{live_server.url}/v1/redemptions/{first['id']}/rollback", headers=project.headers)
    assert rolled.status_code == 200, rolled.text
    again = httpx2.post(f"{live_server.url}/v1/redemptions", json=alice, headers=project.headers)
    assert again.status_code == 200, again.text
