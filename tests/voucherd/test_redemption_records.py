"""Redemption events are written behind once, however often they are delivered."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from voucherd.checkout import redemption_records
from voucherd.jobs import write_behind
from voucherd.platform import db
from voucherd.platform.settings import Settings

DATE = "2026-11-26T10:00:00.000Z"


def child(rid: str, code: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "redemption",
        "date": DATE,
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "customer_id": "cust_1",
        "related_object_type": "voucher",
        "related_object_id": f"v_{code}",
        "voucher": {"code": code, "campaign_id": "camp_1", "campaign": "Summer"},
        "redemption": "r_parent",
    }


def stacked(project_id: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    parent = {
        "id": "r_parent",
        "object": "redemption",
        "date": DATE,
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "customer_id": "cust_1",
        "related_object_type": "redemption",
        "related_object_id": "r_parent",
    }
    return {"type": "redemption", "project_id": project_id, "date": DATE, "parent": parent, "applied": children}


def persist(settings: Settings, events: list[dict[str, Any]]) -> int:
    async def go() -> int:
        conn = await db.connect(settings.database_url)
        try:
            return await write_behind.persist(conn, events)
        finally:
            await conn.close()

    return asyncio.run(go())


def rows(settings: Settings, columns: str = "id, parent_id, status, voucher_code, body") -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await db.connect(settings.database_url)
        try:
            return await conn.fetch(f"SELECT {columns} FROM redemptions ORDER BY id")
        finally:
            await conn.close()

    return asyncio.run(go())


def test_a_stacked_redemption_is_stored_with_its_parent_once(settings: Settings, project: ProjectKeys) -> None:
    event = stacked(project.project_id, [child("r_1", "A"), child("r_2", "B")])
    assert persist(settings, [event]) == 3
    assert persist(settings, [event, event]) == 0  # replays change nothing
    stored = {r["id"]: r for r in rows(settings)}
    assert set(stored) == {"r_parent", "r_1", "r_2"}
    assert stored["r_1"]["parent_id"] == "r_parent" and stored["r_1"]["voucher_code"] == "A"
    assert stored["r_parent"]["body"]["related_redemptions"]["redemptions"] == [
        {"id": "r_1", "date": DATE},
        {"id": "r_2", "date": DATE},
    ]


def test_each_column_is_read_from_the_stored_body(settings: Settings, project: ProjectKeys) -> None:
    """The columns the listings filter on are the body's own fields, whatever the body leaves out."""
    from datetime import UTC, datetime

    event = _shared_event(project.project_id)
    event["applied"][0] |= {"voucher": {"code": "A", "campaign_id": "camp_1", "campaign": "Summer"}}
    failed = {"id": "r_f", "date": "2026-11-26T10:00:00.123Z", "voucher": None, "order": None}
    failed |= {"result": "FAILURE", "status": "FAILED", "failure_code": "quantity_exceeded"}
    bare = {"type": "redemption", "project_id": project.project_id, "date": DATE, "applied": [failed]}
    assert persist(settings, [event, bare]) == 4
    stored = {r["id"]: dict(r) for r in rows(settings, "*")}
    for row in stored.values():
        assert row["project_id"] == project.project_id and row["body"]["id"] == row["id"]
    columns = ("object", "parent_id", "result", "status", "customer_id", "voucher_code", "campaign_id")
    columns += ("campaign_name", "related_object_type", "related_object_id", "order_id", "failure_code", "tracking_id")
    at = datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert {k: stored["r_1"][k] for k in (*columns, "date")} == {
        **dict.fromkeys(columns),
        "object": "redemption",
        "parent_id": "r_parent",
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "customer_id": "cust_1",
        "voucher_code": "A",
        "campaign_id": "camp_1",
        "campaign_name": "Summer",
        "related_object_type": "voucher",
        "related_object_id": "v_A",
        "order_id": "ord_1",
        "tracking_id": "track_1",
        "date": at,
    }
    assert stored["r_parent"]["voucher_code"] is None and stored["r_parent"]["order_id"] == "ord_1"
    # A body without object, and with null voucher and order: the defaults, and no code or order.
    assert {
        k: stored["r_f"][k] for k in ("object", "result", "status", "voucher_code", "order_id", "failure_code")
    } == {
        "object": "redemption",
        "result": "FAILURE",
        "status": "FAILED",
        "voucher_code": None,
        "order_id": None,
        "failure_code": "quantity_exceeded",
    }
    assert stored["r_f"]["date"] == at.replace(microsecond=123_000)


def test_a_single_applied_child_has_no_parent(settings: Settings, project: ProjectKeys) -> None:
    parent, children = redemption_records.finalize(stacked(project.project_id, [child("r_1", "A")]))
    assert parent is None and children[0]["redemption"] is None
    persist(settings, [stacked(project.project_id, [child("r_1", "A")])])
    assert [r["id"] for r in rows(settings)] == ["r_1"]


def _shared_event(project_id: str) -> dict[str, Any]:
    """An event as the hot path writes it: what the bodies share once, each body its own fields."""
    order = {"id": "ord_1", "object": "order", "amount": 10_000, "items": [{"product_id": "prod_1", "quantity": 2}]}
    customer = {"id": "cust_1", "object": "customer", "source_id": "alice", "metadata": {}}
    shared = {"object": "redemption", "date": DATE, "customer_id": "cust_1", "tracking_id": "track_1"}
    shared |= {"metadata": {"shop": "a"}, "order": None, "channel": {"channel_type": "API"}, "customer": None}
    own = {"result": "SUCCESS", "status": "SUCCEEDED", "related_object_type": "voucher"}
    return {
        "type": "redemption",
        "project_id": project_id,
        "date": DATE,
        "shared": shared,
        "parent": {"id": "r_parent", "redemption": None, "related_object_type": "redemption", "amount": 0},
        "applied": [
            own | {"id": "r_1", "voucher": {"code": "A"}, "related_object_id": "v_A"},
            own | {"id": "r_2", "voucher": {"code": "B"}, "related_object_id": "v_B", "metadata": {"own": 1}},
        ],
        "customer": customer,
        "order": order,
    }


def test_shared_fields_complete_every_body_and_own_fields_win(settings: Settings, project: ProjectKeys) -> None:
    event = _shared_event(project.project_id)
    parent, children = redemption_records.finalize(event)
    assert parent is not None
    for body in (parent, *children):
        assert body["order"] == event["order"] and body["customer"] == event["customer"]
        assert body["tracking_id"] == "track_1" and body["channel"] == {"channel_type": "API"}
        assert "shared" not in body
    assert [c["metadata"] for c in children] == [{"shop": "a"}, {"own": 1}]
    assert parent["related_object_type"] == "redemption" and children[0]["related_object_type"] == "voucher"
    # The shared fields come first, as in a body built whole.
    assert list(children[0])[:8] == list(event["shared"])
    assert redemption_records.expand(redemption_records.expand(event)) == redemption_records.expand(event)
    assert persist(settings, [event]) == 3
    stored = {r["id"]: r for r in rows(settings)}
    assert stored["r_2"]["body"]["order"]["items"] == [{"product_id": "prod_1", "quantity": 2}]
    assert stored["r_parent"]["body"]["customer"]["source_id"] == "alice"


def test_an_event_with_whole_bodies_expands_to_itself(project: ProjectKeys) -> None:
    """Events written before ``shared`` existed may still be in a stream after an upgrade."""
    event = stacked(project.project_id, [child("r_1", "A"), child("r_2", "B")])
    assert redemption_records.expand(event) is event


def test_a_rollback_marks_the_redemption_rolled_back_once(settings: Settings, project: ProjectKeys) -> None:
    persist(settings, [stacked(project.project_id, [child("r_1", "A")])])
    rollback = {
        "id": "rr_1",
        "object": "redemption_rollback",
        "date": DATE,
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "redemption": None,
        "voucher": {"code": "A"},
    }
    event = {
        "type": "rollback",
        "project_id": project.project_id,
        "date": DATE,
        "parent": None,
        "applied": [rollback],
        "rolled_back": ["r_1"],
    }
    persist(settings, [event])
    persist(settings, [event])
    stored = {r["id"]: r for r in rows(settings)}
    assert stored["r_1"]["status"] == "ROLLED_BACK" and stored["r_1"]["body"]["status"] == "ROLLED_BACK"
    assert stored["r_1"]["body"]["related_redemptions"]["rollbacks"] == [{"id": "rr_1", "date": DATE}]
    assert stored["rr_1"]["status"] == "SUCCEEDED"


def _rollback_event(project_id: str) -> dict[str, Any]:
    rollback = {
        "id": "rr_1",
        "object": "redemption_rollback",
        "date": DATE,
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "redemption": "r_1",
        "voucher": {"code": "A"},
    }
    return {
        "type": "rollback",
        "project_id": project_id,
        "date": DATE,
        "parent": None,
        "applied": [rollback],
        "rolled_back": ["r_1"],
    }


def test_a_rollback_that_arrives_before_its_redemption_waits_for_it(settings: Settings, project: ProjectKeys) -> None:
    """Since a pending redemption can be rolled back (issue 17), another worker may persist the rollback first."""
    rollback = _rollback_event(project.project_id)
    with pytest.raises(write_behind.OriginalNotPersisted, match="r_1"):
        persist(settings, [rollback])
    assert rows(settings) == []  # nothing of the refused batch was written
    persist(settings, [stacked(project.project_id, [child("r_1", "A")])])
    assert persist(settings, [rollback]) == 1
    stored = {r["id"]: r for r in rows(settings)}
    assert stored["r_1"]["status"] == "ROLLED_BACK"
    assert stored["r_1"]["body"]["related_redemptions"]["rollbacks"] == [{"id": "rr_1", "date": DATE}]
    assert persist(settings, [rollback]) == 0  # a replay is still a no-op


def test_a_redemption_and_its_rollback_in_one_batch(settings: Settings, project: ProjectKeys) -> None:
    persist(settings, [stacked(project.project_id, [child("r_1", "A")]), _rollback_event(project.project_id)])
    stored = {r["id"]: r for r in rows(settings)}
    assert stored["r_1"]["status"] == "ROLLED_BACK" and stored["rr_1"]["parent_id"] == "r_1"


def _single(project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "redemption", "project_id": project_id, "date": DATE, "parent": None, "applied": [body]}


def test_a_batch_moves_each_voucher_and_customer_by_the_sum_of_its_events(
    client: TestClient, settings: Settings, project: ProjectKeys
) -> None:
    """The write-behind sums a batch's moves per voucher and per customer; the totals are the per-event ones."""
    gift = {"code": "GIFT", "type": "GIFT_VOUCHER", "gift": {"amount": 10_000}}
    assert client.post("/v1/vouchers", json=gift, headers=project.headers).status_code == 200
    points = {"code": "CARD", "type": "LOYALTY_CARD", "loyalty_card": {"points": 500}}
    assert client.post("/v1/vouchers", json=points, headers=project.headers).status_code == 200
    customer = client.post("/v1/customers", json={"source_id": "shopper"}, headers=project.headers).json()
    pid, cid = project.project_id, customer["id"]

    def spend(rid: str, code: str, **moved: Any) -> dict[str, Any]:
        body = child(rid, code) | {"redemption": None, "customer_id": cid} | moved
        return _single(pid, body)

    events = [
        spend("r_1", "GIFT", gift={"amount": 1_000}),
        spend("r_2", "GIFT", gift={"amount": 2_500}),
        spend("r_3", "CARD", loyalty_card={"points": 40}),
        spend("r_4", "GIFT", gift={"amount": 300}),
        spend("r_5", "CARD", loyalty_card={"points": 60}),
    ]
    rollback = _rollback_event(pid)
    rollback["applied"][0] |= {"redemption": "r_2", "voucher": {"code": "GIFT"}, "customer_id": cid}
    rollback["applied"][0]["gift"] = {"amount": 2_500}
    rollback["rolled_back"] = ["r_2"]
    assert persist(settings, [*events, rollback]) == 6

    async def read() -> tuple[list[asyncpg.Record], asyncpg.Record]:
        conn = await db.connect(settings.database_url)
        try:
            vouchers = await conn.fetch(
                "SELECT code, redeemed_quantity, gift_balance, loyalty_balance, redeemed_points FROM vouchers "
                "WHERE project_id = $1 ORDER BY code",
                pid,
            )
            summary = await conn.fetchrow(
                "SELECT redemptions_total_redeemed, redemptions_total_rolled_back, gift_redeemed_amount, "
                "loyalty_redeemed_points FROM customers WHERE project_id = $1 AND id = $2",
                pid,
                cid,
            )
            return vouchers, summary
        finally:
            await conn.close()

    vouchers, summary = asyncio.run(read())
    by_code = {v["code"]: tuple(v)[1:] for v in vouchers}
    # GIFT: three redemptions, one rolled back (2,500 returned): 2 redeemed, 10,000 - 1,000 - 300 left.
    assert by_code["GIFT"] == (2, 8_700, None, 0)
    # CARD: two point spends (40 + 60) from 500.
    assert by_code["CARD"] == (2, None, 400, 100)
    # The customer: five redemptions, one rolled back; credits 1,000 + 2,500 + 300 - 2,500; points 100.
    assert tuple(summary) == (5, 1, 1_300, 100)
    assert persist(settings, [*events, rollback]) == 0  # a replayed batch moves nothing
    assert asyncio.run(read()) == (vouchers, summary)
