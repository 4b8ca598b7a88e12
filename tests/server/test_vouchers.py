"""``/v1/vouchers`` over HTTP: standalone and campaign codes, filters, balances, transactions, errors."""

from __future__ import annotations

from typing import Any

import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.platform import keys
from voucherd.platform.settings import Settings

DISCOUNT = {"type": "PERCENT", "percent_off": 10}


def state(settings: Settings, project: ProjectKeys, code: str) -> dict[bytes, bytes]:
    result: dict[bytes, bytes] = redis.Redis.from_url(settings.redis_url).hgetall(
        keys.voucher_state(project.project_id, code)
    )
    return result


def gift_card(client: TestClient, project: ProjectKeys, code: str = "GIFT-1", amount: int = 5000) -> dict[str, Any]:
    response = client.post(
        f"/v1/vouchers/{code}", json={"type": "GIFT_VOUCHER", "gift": {"amount": amount}}, headers=project.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_standalone_voucher_lifecycle(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    created = client.post(
        "/v1/vouchers/WELCOME10",
        json={
            "type": "DISCOUNT_VOUCHER",
            "discount": DISCOUNT,
            "redemption": {"quantity": 3},
            "start_date": "2020-01-01",
            "expiration_date": "2090-01-01T00:00:00Z",
            "metadata": {"source": "test"},
            "category": "Welcome",
            "additional_info": "first order",
        },
        headers=h,
    )
    assert created.status_code == 200, created.text
    voucher = created.json()
    assert voucher["id"].startswith("v_") and voucher["code"] == "WELCOME10" and voucher["object"] == "voucher"
    assert voucher["campaign"] is None and voucher["campaign_id"] is None
    assert voucher["discount"] == DISCOUNT and voucher["gift"] is None
    assert voucher["redemption"] == {
        "object": "list",
        "quantity": 3,
        "redeemed_quantity": 0,
        "redeemed_points": 0,
        "url": "/v1/vouchers/WELCOME10/redemptions?page=1&limit=10",
    }
    assert voucher["start_date"] == "2020-01-01T00:00:00.000Z" and voucher["category"] == "Welcome"
    live = state(settings, project, "WELCOME10")
    assert live[b"id"] == voucher["id"].encode() and live[b"quantity"] == b"3" and live[b"campaign_id"] == b""
    assert live[b"start"] == b"1577836800000" and live[b"type"] == b"DISCOUNT_VOUCHER"

    assert client.get("/v1/vouchers/WELCOME10", headers=h).json()["id"] == voucher["id"]
    assert client.get(f"/v1/vouchers/{voucher['id']}", headers=h).json()["code"] == "WELCOME10"

    updated = client.put(
        "/v1/vouchers/WELCOME10", json={"expiration_date": None, "metadata": {"x": 1}, "active": False}, headers=h
    ).json()
    assert updated["expiration_date"] is None and updated["metadata"] == {"x": 1} and updated["active"] is False
    live = state(settings, project, "WELCOME10")
    assert live[b"exp"] == b"" and live[b"active"] == b"0" and b'"x":1' in live[b"def"]

    assert client.post("/v1/vouchers/WELCOME10/enable", headers=h).json()["active"] is True
    assert state(settings, project, "WELCOME10")[b"active"] == b"1"
    assert client.post("/v1/vouchers/WELCOME10/disable", headers=h).json()["active"] is False

    assert client.delete("/v1/vouchers/WELCOME10", headers=h).status_code == 204
    assert_error(client.get("/v1/vouchers/WELCOME10", headers=h), 404, "not_found")
    assert state(settings, project, "WELCOME10") == {}


def test_generated_codes(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    generated = client.post(
        "/v1/vouchers", json={"discount": DISCOUNT, "code_config": {"pattern": "GEN-####"}}, headers=h
    ).json()
    assert generated["code"].startswith("GEN-") and len(generated["code"]) == 8
    assert generated["type"] == "DISCOUNT_VOUCHER"
    campaign = client.post(
        "/v1/campaigns",
        json={"name": "C", "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 700, "effect": "APPLY_TO_ITEMS"}}},
        headers=h,
    ).json()
    in_campaign = client.post("/v1/vouchers", json={"campaign": "C"}, headers=h).json()
    assert in_campaign["campaign_id"] == campaign["id"] and in_campaign["type"] == "GIFT_VOUCHER"
    assert in_campaign["gift"] == {"amount": 700, "subtracted_amount": 0, "balance": 700, "effect": "APPLY_TO_ITEMS"}


def test_campaign_codes_inherit_template_changes(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    client.post(
        "/v1/campaigns",
        json={"name": "C", "voucher": {"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT}, "start_date": "2030-01-01"},
        headers=h,
    )
    client.post("/v1/campaigns/C/vouchers/INHERIT", headers=h)
    voucher = client.get("/v1/vouchers/INHERIT", headers=h).json()
    assert voucher["discount"] == DISCOUNT and voucher["start_date"] == "2030-01-01T00:00:00.000Z"
    client.put("/v1/campaigns/C", json={"discount": {"type": "AMOUNT", "amount_off": 300}}, headers=h)
    assert client.get("/v1/vouchers/INHERIT", headers=h).json()["discount"] == {"type": "AMOUNT", "amount_off": 300}


def test_list_filters_paging_and_order(client: TestClient, project: ProjectKeys, make_project: Any) -> None:
    h = project.headers
    client.post("/v1/campaigns", json={"name": "C", "voucher": {"discount": DISCOUNT}}, headers=h)
    campaign_id = client.get("/v1/campaigns/C", headers=h).json()["id"]
    for code in ("B-1", "A-2", "C-3"):
        client.post(f"/v1/campaigns/C/vouchers/{code}", headers=h)
    client.post("/v1/vouchers/S-1", json={"discount": DISCOUNT, "category": "Cat"}, headers=h)

    listing = client.get("/v1/vouchers", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "vouchers" and listing["total"] == 4
    assert [v["code"] for v in listing["vouchers"]] == ["S-1", "C-3", "A-2", "B-1"]

    def codes(**params: Any) -> list[str]:
        response = client.get("/v1/vouchers", params=params, headers=h)
        assert response.status_code == 200, response.text
        return [v["code"] for v in response.json()["vouchers"]]

    assert codes(campaign="C", order="code") == ["A-2", "B-1", "C-3"]
    assert codes(campaign_id=campaign_id, order="-code", limit=2) == ["C-3", "B-1"]
    assert codes(campaign_id=campaign_id, order="-code", limit=2, page=2) == ["A-2"]
    assert codes(category="Cat") == ["S-1"]
    assert codes(code="A-2") == ["A-2"]
    ids = [client.get(f"/v1/vouchers/{c}", headers=h).json()["id"] for c in ("A-2", "S-1")]
    assert sorted(
        client.get(f"/v1/vouchers?ids={ids[0]}&ids={ids[1]}", headers=h).json()["vouchers"][i]["code"] for i in (0, 1)
    ) == ["A-2", "S-1"]
    assert codes(**{"created_at[before]": "2000-01-01"}) == []
    assert len(codes(**{"created_at[after]": "2000-01-01"})) == 4
    assert codes(**{"filters[code][conditions][$starts_with]": "S-"}) == ["S-1"]
    assert codes(
        **{"filters[code][conditions][$in][0]": "A-2", "filters[code][conditions][$in][1]": "B-1", "order": "code"}
    ) == ["A-2", "B-1"]
    client.post("/v1/vouchers/A-2/disable", headers=h)
    assert codes(**{"filters[active][conditions][$disabled]": "true"}) == ["A-2"]
    assert codes(customer="cust_nobody") == []

    assert_error(client.get("/v1/vouchers", params={"page": 100}, headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/vouchers", params={"limit": 0}, headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/vouchers", params={"order": "-type"}, headers=h), 400, "invalid_query_params")
    bad_date = {"created_at[before]": "yesterday"}
    assert_error(client.get("/v1/vouchers", params=bad_date, headers=h), 400, "invalid_query_params")
    other = make_project("Other")
    assert client.get("/v1/vouchers", headers=other.headers).json()["total"] == 0
    assert_error(client.get("/v1/vouchers/A-2", headers=other.headers), 404, "not_found")


def test_gift_balance_and_transactions(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    card = gift_card(client, project)
    added = client.post("/v1/vouchers/GIFT-1/balance", json={"amount": 2500, "reason": "bonus"}, headers=h)
    assert added.status_code == 200, added.text
    assert added.json() == {
        "amount": 2500,
        "total": 7500,
        "balance": 7500,
        "type": "gift_voucher",
        "operation_type": "MANUAL",
        "object": "balance",
        "related_object": {"type": "voucher", "id": card["id"]},
    }
    removed = client.post("/v1/vouchers/GIFT-1/balance", json={"amount": -500, "source_id": "s-1"}, headers=h).json()
    assert removed["balance"] == 7000 and removed["total"] == 7500
    too_much = client.post("/v1/vouchers/GIFT-1/balance", json={"amount": -9000}, headers=h)
    assert_error(too_much, 400, "invalid_add_balance_params")
    assert state(settings, project, "GIFT-1")[b"balance"] == b"7000"
    voucher = client.get("/v1/vouchers/GIFT-1", headers=h).json()
    assert voucher["gift"] == {"amount": 7500, "subtracted_amount": 500, "balance": 7000, "effect": "APPLY_TO_ORDER"}

    txs = client.get("/v1/vouchers/GIFT-1/transactions", headers=h).json()
    assert txs["object"] == "list" and txs["data_ref"] == "data" and txs["has_more"] is False
    assert [t["type"] for t in txs["data"]] == ["CREDITS_REMOVAL", "CREDITS_ADDITION"]
    assert txs["data"][1]["reason"] == "bonus" and txs["data"][1]["details"]["balance"]["balance"] == 7500
    assert txs["data"][0]["source_id"] == "s-1" and txs["data"][0]["id"].startswith("vtx_")
    first = client.get("/v1/vouchers/GIFT-1/transactions", params={"limit": 1, "order": "id"}, headers=h).json()
    assert first["has_more"] is True and first["data"][0]["type"] == "CREDITS_ADDITION"
    rest = client.get(
        "/v1/vouchers/GIFT-1/transactions",
        params={"limit": 1, "order": "id", "starting_after_id": first["more_starting_after"]},
        headers=h,
    ).json()
    assert rest["data"][0]["type"] == "CREDITS_REMOVAL" and rest["has_more"] is False


def test_balance_reloads_missing_state_and_loyalty_points(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    gift_card(client, project, "GIFT-2", 1000)
    redis.Redis.from_url(settings.redis_url).delete(keys.voucher_state(project.project_id, "GIFT-2"))
    adjusted = client.post("/v1/vouchers/GIFT-2/balance", json={"amount": 100}, headers=h).json()
    assert adjusted["balance"] == 1100
    client.post(
        "/v1/campaigns",
        json={"name": "L", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 50}}},
        headers=h,
    )
    client.post("/v1/campaigns/L/vouchers/CARD-1", headers=h)
    points = client.post("/v1/vouchers/CARD-1/balance", json={"amount": 25}, headers=h).json()
    assert points["type"] == "loyalty_card" and points["balance"] == 75
    card = client.get("/v1/vouchers/CARD-1", headers=h).json()
    assert card["loyalty_card"]["balance"] == 75 and card["loyalty_card"]["points"] == 75
    txs = client.get("/v1/vouchers/CARD-1/transactions", headers=h).json()
    assert txs["data"][0]["type"] == "POINTS_ADDITION"


def test_errors(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    missing = assert_error(client.get("/v1/vouchers/NOPE", headers=h), 404, "not_found")
    assert missing["resource_id"] == "NOPE" and missing["resource_type"] == "voucher"
    for path in ("/v1/vouchers/NOPE/enable", "/v1/vouchers/NOPE/disable"):
        assert_error(client.post(path, headers=h), 404, "not_found")
    assert_error(client.put("/v1/vouchers/NOPE", json={}, headers=h), 404, "not_found")
    assert_error(client.delete("/v1/vouchers/NOPE", headers=h), 404, "not_found")
    assert_error(client.post("/v1/vouchers/NOPE/balance", json={"amount": 1}, headers=h), 404, "not_found")
    assert_error(client.get("/v1/vouchers/NOPE/transactions", headers=h), 404, "not_found")
    assert_error(client.post("/v1/vouchers", json={"campaign": "missing"}, headers=h), 404, "not_found")

    client.post("/v1/vouchers/DUP", json={"discount": DISCOUNT}, headers=h)
    assert_error(client.post("/v1/vouchers/DUP", json={"discount": DISCOUNT}, headers=h), 409, "duplicate_found")
    assert_error(client.post("/v1/vouchers/X1", json={"type": "DISCOUNT_VOUCHER"}, headers=h), 400, "invalid_voucher")
    assert_error(client.post("/v1/vouchers/X1", json={"type": "COUPON"}, headers=h), 400, "invalid_voucher")
    bad_config = {"discount": DISCOUNT, "code_config": {"length": 0}}
    assert_error(client.post("/v1/vouchers", json=bad_config, headers=h), 400, "invalid_code_config")
    assert_error(
        client.post("/v1/vouchers/X1", json={"discount": DISCOUNT, "redemption": {"quantity": 0}}, headers=h),
        400,
        "invalid_payload",
    )
    assert_error(
        client.post("/v1/vouchers/DUP/balance", json={"amount": 5}, headers=h), 400, "invalid_add_balance_params"
    )
    gift_card(client, project)
    assert_error(
        client.post("/v1/vouchers/GIFT-1/balance", json={"amount": 0}, headers=h), 400, "invalid_add_balance_params"
    )
    assert_error(
        client.post("/v1/vouchers/GIFT-1/balance", json={"amount": "5"}, headers=h), 400, "invalid_add_balance_params"
    )
    assert_error(client.delete("/v1/vouchers/DUP", params={"force": "maybe"}, headers=h), 400, "invalid_query_params")
    assert client.delete("/v1/vouchers/DUP", params={"force": "true"}, headers=h).status_code == 204
    # Deleted for good: the code is free again.
    assert client.post("/v1/vouchers/DUP", json={"discount": DISCOUNT}, headers=h).status_code == 200
