"""Referral programs over HTTP, end to end through the worker: conversion on redemption and on a custom
event, referee and referrer rewards given once per referee, the referrer refused, holders."""

from __future__ import annotations

import asyncio
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


def pg(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def setup_program(client: TestClient, h: dict[str, str], **referral_program: Any) -> dict[str, Any]:
    """A loyalty program, a gift card campaign, and a referral program whose referee gets 2000 credits
    and whose referrer gets 300 points (a CAMPAIGN reward assigned to it)."""
    club = ok(
        client.post(
            "/v1/loyalties",
            json={"name": "Club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
            headers=h,
        )
    )
    gifts = ok(
        client.post(
            "/v1/campaigns",
            json={
                "name": "Gifts",
                "campaign_type": "GIFT_VOUCHERS",
                "type": "AUTO_UPDATE",
                "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 0}},
            },
            headers=h,
        )
    )
    program = {
        "conversion_event_type": "redemption",
        "referee_reward": {
            "related_object_parent": {"id": gifts["id"], "object": "CAMPAIGN"},
            "type": "GIFT_VOUCHER",
            "amount": 2000,
        },
        **referral_program,
    }
    friends = ok(
        client.post(
            "/v1/campaigns",
            json={
                "name": "Friends",
                "campaign_type": "REFERRAL_PROGRAM",
                "type": "AUTO_UPDATE",
                "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 500}},
                "referral_program": program,
            },
            headers=h,
        )
    )
    reward = ok(
        client.post(
            "/v1/rewards",
            json={"name": "300 points", "parameters": {"campaign": {"id": club["id"], "balance": 300}}},
            headers=h,
        )
    )
    ok(client.post(f"/v1/rewards/{reward['id']}/assignments", json={"campaign": friends["id"]}, headers=h))
    published = ok(
        client.post(
            "/v1/publications", json={"campaign": {"name": "Friends"}, "customer": {"source_id": "alice"}}, headers=h
        )
    )
    return {"club": club, "gifts": gifts, "friends": friends, "code": published["voucher"]["code"]}


def redeem(client: TestClient, h: dict[str, str], code: str, source_id: str, order_id: str) -> Any:
    body = {
        "redeemables": [{"object": "voucher", "id": code}],
        "customer": {"source_id": source_id},
        "order": {"source_id": order_id, "amount": 10000},
    }
    return client.post("/v1/redemptions", json=body, headers=h)


def run_loyalty(settings: Settings, project_id: str) -> None:
    async def run() -> None:
        pool = await create_pool(settings.database_url, 1, 2)
        redis = create_redis(settings.redis_url)
        try:
            await loyalty_earning.process(redis, pool, project_id)
        finally:
            await redis.aclose()
            await pool.close()

    asyncio.run(run())


def cards(settings: Settings, source_id: str) -> dict[str, dict[str, Any]]:
    rows = pg(
        settings,
        "SELECT v.type, v.code, v.gift_balance, v.loyalty_balance FROM vouchers v JOIN customers c "
        "ON c.id = v.holder_id AND c.project_id = v.project_id WHERE c.source_id = $1 AND v.type <> 'DISCOUNT_VOUCHER'",
        source_id,
    )
    return {r["type"]: dict(r) for r in rows}


def test_conversion_on_redemption_rewards_both_sides_once(
    client: TestClient, project: ProjectKeys, h: dict[str, str], settings: Settings
) -> None:
    setup = setup_program(client, h)
    code = setup["code"]
    assert_error(redeem(client, h, code, "alice", "o-0"), 400, "referrer_not_permitted_to_redeem")

    redeemed = ok(redeem(client, h, code, "bob", "o-1"))
    assert redeemed["order"]["total_amount"] == 9500
    drain_worker(settings)
    ok(redeem(client, h, code, "bob", "o-2"))  # the same referee again: no second conversion
    drain_worker(settings)
    drain_worker(settings)

    bob, alice = cards(settings, "bob"), cards(settings, "alice")
    assert bob["GIFT_VOUCHER"]["gift_balance"] == 2000 and "LOYALTY_CARD" not in bob
    assert alice["LOYALTY_CARD"]["loyalty_balance"] == 300 and "GIFT_VOUCHER" not in alice
    gift = ok(client.get(f"/v1/vouchers/{bob['GIFT_VOUCHER']['code']}", headers=h))
    assert gift["gift"]["balance"] == 2000
    member = ok(client.get(f"/v1/loyalties/members/{alice['LOYALTY_CARD']['code']}", headers=h))
    assert member["loyalty_card"]["balance"] == 300
    txs = ok(client.get(f"/v1/loyalties/members/{alice['LOYALTY_CARD']['code']}/transactions", headers=h))
    assert [t["type"] for t in txs["data"]] == ["POINTS_ADDITION"]

    customer = ok(client.get("/v1/customers/bob", headers=h))
    assert customer["referrals"]["total"] == 1
    entry = customer["referrals"]["campaigns"][0]
    assert entry["campaign_id"] == setup["friends"]["id"] and entry["related_object_type"] == "redemption"
    alice_id = ok(client.get("/v1/customers/alice", headers=h))["id"]
    assert entry["referrer_id"] == alice_id
    order = ok(client.get(f"/v1/orders/{redeemed['order']['id']}", headers=h))
    assert order["referrer_id"] == alice_id

    holders = ok(client.get(f"/v1/referrals/members/{code}/holders", headers=h))
    assert holders["total"] == 2 and holders["has_more"] is False
    assert sorted((x["holder_role"], x["customer_id"]) for x in holders["data"]) == [
        ("REFEREE", customer["id"]),
        ("REFERRER", alice_id),
    ]
    assert holders["data"][0]["object"] == "redeemable_holder"
    assert holders["data"][0]["campaign_type"] == "REFERRAL_PROGRAM"
    # A replay of the whole loyalty pass gives nothing twice.
    pg(settings, "UPDATE loyalty_triggers SET done_at = NULL")
    run_loyalty(settings, project.project_id)
    assert pg(settings, "SELECT count(*) FROM loyalty_triggers WHERE done_at IS NULL")[0][0] == 0
    assert cards(settings, "bob")["GIFT_VOUCHER"]["gift_balance"] == 2000
    assert cards(settings, "alice")["LOYALTY_CARD"]["loyalty_balance"] == 300
    assert ok(client.get(f"/v1/vouchers/{bob['GIFT_VOUCHER']['code']}", headers=h))["gift"]["balance"] == 2000


def test_conversion_on_custom_event(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    setup = setup_program(
        client,
        h,
        conversion_event_type="custom_event",
        custom_event={"name": "signed_up"},
        referee_reward={
            "related_object_parent": {"name": "Club", "object": "CAMPAIGN"},
            "type": "LOYALTY_CARD",
            "amount": 150,
        },
    )
    code = setup["code"]
    ok(redeem(client, h, code, "bob", "o-1"))  # a redemption does not convert this program
    drain_worker(settings)
    assert cards(settings, "bob") == {} and cards(settings, "alice") == {}

    event = {"event": "other", "customer": {"source_id": "bob"}, "referral": {"code": code}}
    ok(client.post("/v1/events", json=event, headers=h))  # not the conversion event
    event = {"event": "signed_up", "customer": {"source_id": "alice"}, "referral": {"code": code}}
    ok(client.post("/v1/events", json=event, headers=h))  # the referrer cannot convert
    drain_worker(settings)
    assert cards(settings, "bob") == {} and cards(settings, "alice") == {}

    event = {"event": "signed_up", "customer": {"source_id": "bob"}, "referral": {"code": code}}
    ok(client.post("/v1/events", json=event, headers=h))
    ok(client.post("/v1/events", json=event, headers=h))
    drain_worker(settings)
    assert cards(settings, "bob")["LOYALTY_CARD"]["loyalty_balance"] == 150
    assert cards(settings, "alice")["LOYALTY_CARD"]["loyalty_balance"] == 300
    customer = ok(client.get("/v1/customers/bob", headers=h))
    assert customer["referrals"]["total"] == 1
    assert customer["referrals"]["campaigns"][0]["related_object_type"] == "custom_event"


def test_holders_endpoints(client: TestClient, h: dict[str, str]) -> None:
    setup = setup_program(client, h)
    code, friends = setup["code"], setup["friends"]
    added = ok(
        client.post(
            f"/v1/referrals/{friends['id']}/members/{code}/holders",
            json={"holders": [{"source_id": "carl"}, {"source_id": "dora"}], "metadata": {"via": "mail"}},
            headers=h,
        )
    )
    assert [x["holder_role"] for x in added["holders"]] == ["REFEREE", "REFEREE"]
    assert added["holders"][0]["metadata"] == {"via": "mail"} and added["holders"][0]["id"].startswith("rh_")
    listed = ok(client.get(f"/v1/referrals/members/{code}/holders", headers=h))
    assert listed["total"] == 3
    page = ok(client.get(f"/v1/referrals/members/{code}/holders?limit=2", headers=h))
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = ok(
        client.get(
            f"/v1/referrals/members/{code}/holders?limit=2&starting_after_id={page['more_starting_after']}", headers=h
        )
    )
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    referees = ok(
        client.get(f"/v1/referrals/members/{code}/holders?filters[holder_role][conditions][$is]=REFEREE", headers=h)
    )
    assert referees["total"] == 2 and {x["holder_role"] for x in referees["data"]} == {"REFEREE"}

    referrer = next(x for x in listed["data"] if x["holder_role"] == "REFERRER")
    assert_error(
        client.delete(f"/v1/referrals/members/{code}/holders/{referrer['id']}", headers=h), 400, "invalid_payload"
    )
    removed = client.delete(
        f"/v1/referrals/{friends['name']}/members/{code}/holders/{added['holders'][0]['id']}", headers=h
    )
    assert removed.status_code == 204
    assert ok(client.get(f"/v1/referrals/members/{code}/holders", headers=h))["total"] == 2
    assert_error(client.get("/v1/referrals/members/NOPE/holders", headers=h), 404, "not_found")
    assert_error(client.get(f"/v1/referrals/{setup['club']['id']}/members/{code}/holders", headers=h), 404, "not_found")
    assert_error(
        client.post(f"/v1/referrals/members/{code}/holders", json={"holders": [{"source_id": "alice"}]}, headers=h),
        400,
        "invalid_payload",
    )


def test_custom_event_names_the_referrer_of_an_unpublished_code(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    setup = setup_program(client, h, conversion_event_type="custom_event", custom_event={"name": "joined"})
    ok(client.post(f"/v1/campaigns/{setup['friends']['id']}/vouchers/SHARED", headers=h))
    event = {"event": "joined", "customer": {"source_id": "bob"}, "referral": {"code": "SHARED", "referrer_id": "zed"}}
    ok(client.post("/v1/events", json=event, headers=h))  # no such customer: no conversion
    event["referral"] = {"code": "SHARED", "referrer_id": "alice"}
    ok(client.post("/v1/events", json=event, headers=h))
    drain_worker(settings)
    assert cards(settings, "alice")["LOYALTY_CARD"]["loyalty_balance"] == 300
    assert cards(settings, "bob")["GIFT_VOUCHER"]["gift_balance"] == 2000
    holders = ok(client.get("/v1/referrals/members/SHARED/holders", headers=h))
    assert sorted(x["holder_role"] for x in holders["data"]) == ["REFEREE", "REFERRER"]
