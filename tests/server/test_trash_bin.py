"""The trash bin (issue 17): campaigns and codes deleted without force, listed and deleted for good."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform import db
from voucherd.platform.settings import Settings


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def count(settings: Settings, sql: str, *args: Any) -> int:
    async def go() -> int:
        conn = await db.connect(settings.database_url)
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_binned_resources_are_listed_and_deleted_for_good(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    discount = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    kept = ok(client.post("/v1/campaigns", json={"name": "Kept", "voucher": discount}, headers=h))
    gone = ok(client.post("/v1/campaigns", json={"name": "Gone", "voucher": discount, "vouchers_count": 3}, headers=h))
    drain_worker(settings)
    ok(client.post(f"/v1/campaigns/{kept['id']}/vouchers/ONE", headers=h))
    ok(client.post("/v1/vouchers/SOLO", json=discount, headers=h))
    assert client.delete("/v1/vouchers/ONE", headers=h).status_code == 204
    assert client.delete("/v1/vouchers/SOLO", headers=h).status_code == 204
    assert client.delete(f"/v1/campaigns/{gone['id']}", headers=h).status_code == 202
    drain_worker(settings)  # the campaign's codes follow it into the bin, not as entries of their own

    listed = ok(client.get("/v1/trash-bin", headers=h))
    assert listed["object"] == "list" and listed["data_ref"] == "data" and listed["has_more"] is False
    entries = {(e["resource_type"], e["resource_name"]): e for e in listed["data"]}
    assert set(entries) == {("voucher", "ONE"), ("voucher", "SOLO"), ("campaign", "Gone")}
    assert entries[("voucher", "ONE")]["resource_parent_id"] == kept["id"]
    assert entries[("voucher", "SOLO")]["resource_parent_id"] is None
    assert (
        entries[("campaign", "Gone")]["resource_id"] == gone["id"]
        and entries[("campaign", "Gone")]["object"] == "campaign"
    )
    assert all(e["id"].startswith("tbe_") and e["deleted_by_user_id"] is None for e in listed["data"])
    ids = [e["id"] for e in listed["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first by default

    first = ok(client.get("/v1/trash-bin?order=id&limit=2", headers=h))
    assert first["has_more"] is True and first["total"] == 2
    rest = ok(client.get(f"/v1/trash-bin?order=id&limit=2&starting_after_id={first['more_starting_after']}", headers=h))
    assert [e["id"] for e in first["data"] + rest["data"]] == sorted(ids)
    only = ok(client.get("/v1/trash-bin?filters[resource_type][conditions][$is]=campaign", headers=h))
    assert [e["resource_name"] for e in only["data"]] == ["Gone"]

    assert client.delete(f"/v1/trash-bin/{entries[('voucher', 'SOLO')]['id']}", headers=h).status_code == 204
    assert count(settings, "SELECT count(*) FROM vouchers WHERE code = 'SOLO'") == 0
    assert client.delete(f"/v1/trash-bin/{entries[('campaign', 'Gone')]['id']}", headers=h).status_code == 204
    assert [e["resource_name"] for e in ok(client.get("/v1/trash-bin", headers=h))["data"]] == ["ONE"]
    drain_worker(settings)
    assert count(settings, "SELECT count(*) FROM vouchers WHERE campaign_id = $1", gone["id"]) == 0
    assert count(settings, "SELECT count(*) FROM campaigns WHERE id = $1", gone["id"]) == 0
    assert ok(client.post("/v1/vouchers/SOLO", json=discount, headers=h))["code"] == "SOLO"  # the code is free again
    assert count(settings, "SELECT count(*) FROM vouchers WHERE code = 'ONE' AND deleted_at IS NOT NULL") == 1


def test_trash_bin_errors(client: TestClient, h: dict[str, str], make_project: Any) -> None:
    ok(client.post("/v1/vouchers/SOLO", json={"type": "GIFT_VOUCHER", "gift": {"amount": 100}}, headers=h))
    assert client.delete("/v1/vouchers/SOLO", headers=h).status_code == 204
    entry = ok(client.get("/v1/trash-bin", headers=h))["data"][0]
    other = make_project("Other").headers
    assert ok(client.get("/v1/trash-bin", headers=other))["data"] == []
    assert_error(client.delete(f"/v1/trash-bin/{entry['id']}", headers=other), 404, "not_found")
    assert_error(client.delete("/v1/trash-bin/tbe_nope", headers=h), 404, "not_found")
    assert_error(client.get("/v1/trash-bin?order=name", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/trash-bin?limit=0", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/trash-bin?filters[planet][conditions][$is]=x", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/trash-bin?filters[id][conditions][$after]=x", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/trash-bin"), 401, "unauthorized")
