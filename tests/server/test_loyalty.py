"""Loyalty programs over HTTP, end to end through the worker: members, balances, earning on paid
orders, pending points, expiry, rewards, pay with points, rollbacks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.loyalty import earning as loyalty_earning
from voucherd.platform.db import create_pool
from voucherd.platform.redis_client import create_redis
from voucherd.platform.settings import Settings


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def ok(response: Any) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def make_program(client: TestClient, h: dict[str, str], name: str = "Club", **extra: Any) -> dict[str, Any]:
    body = {"name": name, "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}, **extra}
    program: dict[str, Any] = ok(client.post("/v1/loyalties", json=body, headers=h))
    assert program["campaign_type"] == "LOYALTY_PROGRAM"
    return program


def join(client: TestClient, h: dict[str, str], program_id: str, source_id: str) -> dict[str, Any]:
    member: dict[str, Any] = ok(
        client.post(f"/v1/loyalties/{program_id}/members", json={"customer": {"source_id": source_id}}, headers=h)
    )
    return member


def add_points(client: TestClient, h: dict[str, str], code: str, points: int, **extra: Any) -> dict[str, Any]:
    body = {"points": points, **extra}
    balance: dict[str, Any] = ok(client.post(f"/v1/loyalties/members/{code}/balance", json=body, headers=h))
    return balance


def member(client: TestClient, h: dict[str, str], code: str) -> dict[str, Any]:
    card: dict[str, Any] = ok(client.get(f"/v1/loyalties/members/{code}", headers=h))["loyalty_card"]
    return card


def run_loyalty(settings: Settings, project_id: str, now: datetime | None = None) -> None:
    """The worker's loyalty pass for one project, at a chosen time (pending activation and expiry)."""

    async def run() -> None:
        pool = await create_pool(settings.database_url, 1, 2)
        redis = create_redis(settings.redis_url)
        try:
            await loyalty_earning.process(redis, pool, project_id, now)
        finally:
            await redis.aclose()
            await pool.close()

    asyncio.run(run())


def pg(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_members_and_manual_balance(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "alice")
    again = join(client, h, program["id"], "alice")
    assert again["code"] == card["code"]  # one card per customer
    balance = add_points(client, h, card["code"], 500, reason="welcome")
    assert balance == {
        "points": 500,
        "total": 500,
        "balance": 500,
        "type": "loyalty_card",
        "object": "balance",
        "related_object": {"type": "voucher", "id": card["id"]},
        "operation_type": "MANUAL",
    }
    assert add_points(client, h, card["code"], -200)["balance"] == 300
    assert_error(
        client.post(f"/v1/loyalties/members/{card['code']}/balance", json={"points": -301}, headers=h),
        400,
        "not_enough_points",
    )
    listed = ok(client.get(f"/v1/loyalties/{program['id']}/members", headers=h))
    assert [m["code"] for m in listed["vouchers"]] == [card["code"]]
    assert listed["vouchers"][0]["loyalty_card"]["balance"] == 300
    got = ok(client.get(f"/v1/loyalties/{program['id']}/members/{card['code']}", headers=h))
    assert got["loyalty_card"]["points"] == 500 and got["loyalty_card"]["balance"] == 300
    txs = ok(client.get(f"/v1/loyalties/members/{card['code']}/transactions", headers=h))
    assert [t["type"] for t in txs["data"]] == ["POINTS_REMOVAL", "POINTS_ADDITION"]
    assert pg(settings, "SELECT loyalty_balance FROM vouchers WHERE code = $1", card["code"])[0][0] == 300


def test_transfer_moves_points_between_cards(client: TestClient, h: dict[str, str]) -> None:
    program = make_program(client, h)
    a = join(client, h, program["id"], "a")
    b = join(client, h, program["id"], "b")
    add_points(client, h, a["code"], 100)
    target = ok(
        client.post(
            f"/v1/loyalties/{program['id']}/members/{b['code']}/transfers",
            json=[{"code": a["code"], "points": 60, "reason": "gift"}],
            headers=h,
        )
    )
    assert target["loyalty_card"]["balance"] == 60
    assert member(client, h, a["code"])["balance"] == 40
    assert_error(
        client.post(
            f"/v1/loyalties/{program['id']}/members/{b['code']}/transfers",
            json=[{"code": a["code"], "points": 41}],
            headers=h,
        ),
        400,
        "not_enough_points",
    )
    types = [t["type"] for t in ok(client.get(f"/v1/loyalties/members/{b['code']}/transactions", headers=h))["data"]]
    assert types == ["POINTS_TRANSFER_IN"]


def _order_paid_rules(client: TestClient, h: dict[str, str], program_id: str, **extra: Any) -> list[dict[str, Any]]:
    rules = [
        {"event": "order.paid", "loyalty": {"type": "FIXED", "points": 10}, **extra},
        {
            "event": "order.paid",
            "loyalty": {
                "type": "PROPORTIONAL",
                "calculation_type": "ORDER_AMOUNT",
                "order": {"amount": {"every": 1000, "points": 3}},
            },
            **extra,
        },
    ]
    created: list[dict[str, Any]] = ok(client.post(f"/v1/loyalties/{program_id}/earning-rules", json=rules, headers=h))
    assert [r["object"] for r in created] == ["earning_rule", "earning_rule"]
    return created


def test_order_paid_by_redemption_earns_fixed_and_proportional_points_once(
    client: TestClient, h: dict[str, str], settings: Settings, project: ProjectKeys
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "bob")
    _order_paid_rules(client, h, program["id"])
    ok(
        client.post(
            "/v1/vouchers/TEN",
            json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}},
            headers=h,
        )
    )
    body = {
        "redeemables": [{"object": "voucher", "id": "TEN"}],
        "order": {"amount": 25500},
        "customer": {"source_id": "bob"},
    }
    ok(client.post("/v1/redemptions", json=body, headers=h))
    drain_worker(settings)
    # 10 fixed + floor(25500 / 1000) * 3 = 10 + 75
    assert member(client, h, card["code"])["balance"] == 85
    drain_worker(settings)
    run_loyalty(settings, project.project_id)
    assert member(client, h, card["code"])["balance"] == 85  # once
    txs = ok(client.get(f"/v1/loyalties/members/{card['code']}/transactions", headers=h))["data"]
    assert sorted(t["type"] for t in txs) == ["POINTS_ACCRUAL", "POINTS_ACCRUAL"]


def test_a_redemption_leaves_an_order_paid_trigger_only_where_a_rule_earns_on_it(
    client: TestClient, h: dict[str, str], settings: Settings, project: ProjectKeys
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "dora")
    voucher = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}, "redemption": {}}
    ok(client.post("/v1/vouchers/PLAIN", json=voucher, headers=h))

    def redeem(order_id: str) -> None:
        body = {
            "redeemables": [{"object": "voucher", "id": "PLAIN"}],
            "order": {"id": order_id, "amount": 5000},
            "customer": {"source_id": "dora"},
        }
        ok(client.post("/v1/redemptions", json=body, headers=h))
        drain_worker(settings)

    def triggers() -> list[str]:
        sql = "SELECT data->'order'->>'id' FROM loyalty_triggers WHERE project_id = $1"
        rows = pg(settings, sql, project.project_id)
        return sorted(r[0] for r in rows)

    redeem("ord_before_rules")
    assert triggers() == [] and pg(settings, "SELECT count(*) FROM redemptions")[0][0] == 1
    _order_paid_rules(client, h, program["id"])
    redeem("ord_after_rules")
    assert triggers() == ["ord_after_rules"]
    assert member(client, h, card["code"])["balance"] == 10 + 5 * 3  # the rules earn on the order paid after them


def test_order_paid_over_orders_api_earns_points(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "carol")
    _order_paid_rules(client, h, program["id"])
    ok(
        client.post(
            "/v1/orders", json={"amount": 3000, "status": "PAID", "customer": {"source_id": "carol"}}, headers=h
        )
    )
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 19


def test_pending_points_activate_when_due_or_on_request(
    client: TestClient, h: dict[str, str], settings: Settings, project: ProjectKeys
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "dan")
    _order_paid_rules(client, h, program["id"], pending_points={"period_type": "DAY", "period_value": 3})
    ok(client.post("/v1/orders", json={"amount": 1000, "status": "PAID", "customer": {"source_id": "dan"}}, headers=h))
    ok(client.post("/v1/orders", json={"amount": 2000, "status": "PAID", "customer": {"source_id": "dan"}}, headers=h))
    drain_worker(settings)
    state = member(client, h, card["code"])
    assert state["balance"] == 0 and state["pending_points"] == 13 + 16
    pending = ok(client.get(f"/v1/loyalties/members/{card['code']}/pending-points", headers=h))["data"]
    assert sorted(p["points"] for p in pending) == [3, 6, 10, 10]  # one entry per order and rule
    first = next(p for p in pending if p["points"] == 3)
    activated = ok(
        client.post(f"/v1/loyalties/members/{card['code']}/pending-points/{first['id']}/activate", headers=h)
    )
    assert activated["balance"] == 3
    assert_error(
        client.post(f"/v1/loyalties/members/{card['code']}/pending-points/{first['id']}/activate", headers=h),
        400,
        "invalid_pending_points_state",
    )
    run_loyalty(settings, project.project_id, datetime.now(UTC) + timedelta(days=4))
    state = member(client, h, card["code"])
    assert state["balance"] == 29 and state["pending_points"] == 0


def test_pending_points_cancel(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "erin")
    ok(
        client.post(
            f"/v1/loyalties/{program['id']}/earning-rules",
            json=[
                {
                    "event": "order.paid",
                    "loyalty": {"type": "FIXED", "points": 7},
                    "pending_points": {"period_type": "DAY", "period_value": 1},
                }
            ],
            headers=h,
        )
    )
    ok(client.post("/v1/orders", json={"amount": 1000, "status": "PAID", "customer": {"source_id": "erin"}}, headers=h))
    drain_worker(settings)
    pending = ok(client.get(f"/v1/loyalties/members/{card['code']}/pending-points", headers=h))["data"]
    assert (
        client.post(
            f"/v1/loyalties/members/{card['code']}/pending-points/{pending[0]['id']}/cancel", headers=h
        ).status_code
        == 204
    )
    assert member(client, h, card["code"])["pending_points"] == 0


def test_expired_points_leave_the_balance(
    client: TestClient, h: dict[str, str], settings: Settings, project: ProjectKeys
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "fay")
    soon = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    later = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    add_points(client, h, card["code"], 100, expiration_type="CUSTOM_DATE", expiration_date=soon)
    add_points(client, h, card["code"], 50, expiration_type="CUSTOM_DATE", expiration_date=later)
    add_points(client, h, card["code"], 30, expiration_type="NON_EXPIRING")
    add_points(client, h, card["code"], -40)  # spending takes the soonest-expiring points first
    state = member(client, h, card["code"])
    assert state["next_expiration_date"] == soon and state["next_expiration_points"] == 60
    run_loyalty(settings, project.project_id, datetime.now(UTC) + timedelta(days=5))
    state = member(client, h, card["code"])
    assert state["balance"] == 80 and state["expired_points"] == 60
    run_loyalty(settings, project.project_id, datetime.now(UTC) + timedelta(days=5))
    assert member(client, h, card["code"])["balance"] == 80  # once
    run_loyalty(settings, project.project_id, datetime.now(UTC) + timedelta(days=30))
    assert member(client, h, card["code"])["balance"] == 30
    types = [t["type"] for t in ok(client.get(f"/v1/loyalties/members/{card['code']}/transactions", headers=h))["data"]]
    assert types.count("POINTS_EXPIRATION") == 2


def _coin_reward(client: TestClient, h: dict[str, str], program_id: str) -> dict[str, Any]:
    reward: dict[str, Any] = ok(
        client.post(
            "/v1/rewards",
            json={"name": "Pay with points", "parameters": {"coin": {"exchange_ratio": 0.5, "points_ratio": 10}}},
            headers=h,
        )
    )
    assert reward["type"] == "COIN"
    ok(client.post(f"/v1/rewards/{reward['id']}/assignments", json={"campaign": program_id}, headers=h))
    return reward


def test_pay_with_points_reduces_the_order_and_rolls_back_exactly(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "gus")
    add_points(client, h, card["code"], 300)
    reward = _coin_reward(client, h, program["id"])
    body = {
        "redeemables": [{"object": "voucher", "id": card["code"], "reward": {"id": reward["id"], "points": 100}}],
        "order": {"amount": 10000},
        "customer": {"source_id": "gus"},
    }
    validation = ok(client.post("/v1/validations", json=body, headers=h))
    assert validation["valid"] is True
    assert validation["order"]["total_amount"] == 10000 - 500  # 100 points / 10 * 0.5 = 5.00
    redeemed = ok(client.post("/v1/redemptions", json=body, headers=h))
    child = redeemed["redemptions"][0]
    assert child["loyalty_card"] == {"points": 100} and child["reward"]["id"] == reward["id"]
    assert redeemed["order"]["total_amount"] == 9500
    assert member(client, h, card["code"])["balance"] == 200
    drain_worker(settings)
    ok(client.post(f"/v1/redemptions/{child['id']}/rollback", headers=h))
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 300
    types = [t["type"] for t in ok(client.get(f"/v1/loyalties/members/{card['code']}/transactions", headers=h))["data"]]
    assert types[:2] == ["POINTS_REFUND", "POINTS_REDEMPTION"]
    assert pg(settings, "SELECT loyalty_balance FROM vouchers WHERE code = $1", card["code"])[0][0] == 300


def test_pay_with_points_needs_an_assigned_coin_reward(client: TestClient, h: dict[str, str]) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "hal")
    add_points(client, h, card["code"], 100)
    body = {
        "redeemables": [{"object": "voucher", "id": card["code"], "reward": {"id": "rew_nope"}}],
        "order": {"amount": 1000},
    }
    answer = ok(client.post("/v1/validations", json=body, headers=h))
    assert answer["valid"] is False
    assert answer["redeemables"][0]["result"]["error"]["key"] == "not_found"
    body["redeemables"] = [{"object": "voucher", "id": card["code"], "reward": {"id": "rew_nope", "points": 500}}]
    reward = _coin_reward(client, h, program["id"])
    body["redeemables"] = [{"object": "voucher", "id": card["code"], "reward": {"id": reward["id"], "points": 500}}]
    answer = ok(client.post("/v1/validations", json=body, headers=h))
    assert answer["redeemables"][0]["result"]["error"]["key"] == "loyalty_card_points_exceeded"


def test_material_reward_redemption_spends_points_once(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    program = make_program(client, h)
    card = join(client, h, program["id"], "ivy")
    add_points(client, h, card["code"], 250)
    reward = ok(
        client.post(
            "/v1/rewards", json={"name": "Mug", "stock": 5, "parameters": {"product": {"id": "prod_mug"}}}, headers=h
        )
    )
    assignment = ok(
        client.post(
            f"/v1/loyalties/{program['id']}/rewards",
            json=[{"reward": reward["id"], "parameters": {"loyalty": {"points": 100}}}],
            headers=h,
        )
    )[0]
    assert assignment["parameters"]["loyalty"]["points"] == 100
    rewards_listed = ok(client.get(f"/v1/loyalties/members/{card['code']}/rewards", headers=h))
    assert rewards_listed["data"][0]["reward"]["id"] == reward["id"]
    redemption = ok(
        client.post(
            f"/v1/loyalties/members/{card['code']}/redemption", json={"reward": {"id": reward["id"]}}, headers=h
        )
    )
    assert redemption["loyalty_card"] == {"points": 100} and redemption["reward"]["id"] == reward["id"]
    assert member(client, h, card["code"])["balance"] == 150
    # Readable at once, before any worker persisted it (issue 17).
    assert ok(client.get(f"/v1/redemptions/{redemption['id']}", headers=h)) == redemption
    ok(
        client.post(
            f"/v1/loyalties/members/{card['code']}/redemption", json={"reward": {"id": reward["id"]}}, headers=h
        )
    )
    assert_error(
        client.post(
            f"/v1/loyalties/members/{card['code']}/redemption", json={"reward": {"id": reward["id"]}}, headers=h
        ),
        400,
        "not_enough_points",
    )
    assert member(client, h, card["code"])["balance"] == 50
    assert ok(client.get(f"/v1/rewards/{reward['id']}", headers=h))["redeemed"] == 2
    drain_worker(settings)
    stored = pg(settings, "SELECT count(*) FROM redemptions WHERE voucher_code = $1", card["code"])[0][0]
    assert stored == 2
    assert pg(settings, "SELECT loyalty_balance FROM vouchers WHERE code = $1", card["code"])[0][0] == 50


def test_rewards_crud(client: TestClient, h: dict[str, str]) -> None:
    program = make_program(client, h)
    reward = ok(
        client.post("/v1/rewards", json={"name": "Coin", "parameters": {"coin": {"exchange_ratio": 1}}}, headers=h)
    )
    assert ok(client.put(f"/v1/rewards/{reward['id']}", json={"name": "Coins"}, headers=h))["name"] == "Coins"
    listed = ok(client.get("/v1/rewards", headers=h))
    assert listed["total"] == 1 and listed["data"][0]["object"] == "reward"
    assignment = ok(client.post(f"/v1/rewards/{reward['id']}/assignments", json={"campaign": program["id"]}, headers=h))
    assert assignment["related_object_id"] == program["id"]
    assert ok(client.get(f"/v1/rewards/{reward['id']}/assignments", headers=h))["total"] == 1
    assert client.delete(f"/v1/rewards/{reward['id']}/assignments/{assignment['id']}", headers=h).status_code == 204
    assert client.delete(f"/v1/rewards/{reward['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/rewards/{reward['id']}", headers=h), 404, "not_found")


def test_earning_rules_crud(client: TestClient, h: dict[str, str]) -> None:
    program = make_program(client, h)
    created = _order_paid_rules(client, h, program["id"])
    rule_id = created[0]["id"]
    path = f"/v1/loyalties/{program['id']}/earning-rules/{rule_id}"
    assert ok(client.get(path, headers=h))["loyalty"] == {"type": "FIXED", "points": 10}
    assert ok(client.post(f"{path}/disable", headers=h))["active"] is False
    updated = ok(client.put(path, json={"loyalty": {"type": "FIXED", "points": 3}}, headers=h))
    assert updated["loyalty"]["points"] == 3
    assert ok(client.get(f"/v1/loyalties/{program['id']}/earning-rules", headers=h))["total"] == 2
    assert client.delete(path, headers=h).status_code == 204
    assert_error(
        client.post(
            f"/v1/loyalties/{program['id']}/earning-rules",
            json=[{"event": "order.paid", "loyalty": {"type": "BOGUS"}}],
            headers=h,
        ),
        400,
        "invalid_payload",
    )
