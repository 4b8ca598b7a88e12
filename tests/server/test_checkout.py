"""Validation and redemption over HTTP: amounts, failure keys, sessions, rollbacks, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform.settings import Settings

ORDER = {"amount": 20000}


def pg_value(settings: Settings, sql: str) -> Any:
    async def fetch() -> Any:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def make_voucher(client: TestClient, h: dict[str, str], code: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}, **fields}
    response = client.post(f"/v1/vouchers/{code}", json=body, headers=h)
    assert response.status_code == 200, response.text
    voucher: dict[str, Any] = response.json()
    return voucher


def make_gift_card(client: TestClient, h: dict[str, str], code: str, amount: int) -> None:
    body = {"type": "GIFT_VOUCHER", "gift": {"amount": amount}}
    assert client.post(f"/v1/vouchers/{code}", json=body, headers=h).status_code == 200


def validate(client: TestClient, h: dict[str, str], *codes: str, **extra: Any) -> dict[str, Any]:
    body = {"redeemables": [{"object": "voucher", "id": c} for c in codes], "order": ORDER, **extra}
    response = client.post("/v1/validations", json=body, headers=h)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def redeem(client: TestClient, h: dict[str, str], *codes: str, **extra: Any) -> Any:
    body = {"redeemables": [{"object": "voucher", "id": c} for c in codes], "order": ORDER, **extra}
    return client.post("/v1/redemptions", json=body, headers=h)


# --- validation --------------------------------------------------------------------------------


def test_a_valid_code_answers_with_the_calculated_order(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "TENOFF", discount={"type": "PERCENT", "percent_off": 10})
    answer = validate(client, h, "TENOFF")
    assert answer["valid"] is True and answer["id"].startswith("valid_")
    assert "inapplicable_redeemables" not in answer and "skipped_redeemables" not in answer
    [entry] = answer["redeemables"]
    assert entry["status"] == "APPLICABLE" and entry["result"]["discount"]["percent_off"] == 10
    order = answer["order"]
    # 10 % of 200.00 = 20.00
    assert (order["amount"], order["discount_amount"], order["total_amount"]) == (20000, 2000, 18000)
    assert answer["stacking_rules"]["redeemables_application_mode"] == "PARTIAL"


def test_stacked_codes_apply_in_request_order(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "PCT20", discount={"type": "PERCENT", "percent_off": 20})
    make_voucher(client, h, "AMT30", discount={"type": "AMOUNT", "amount_off": 3000})
    make_gift_card(client, h, "GIFT", 5000)
    body = {
        "redeemables": [
            {"object": "voucher", "id": "GIFT", "gift": {"credits": 100}},
            {"object": "voucher", "id": "PCT20"},
            {"object": "voucher", "id": "AMT30"},
        ],
        "order": {"amount": 200000},
    }
    answer = client.post("/v1/validations", json=body, headers=h).json()
    # 200000: credits 100 -> 199900; 20 % of 199900 = 39980 -> 159920; 3000 -> 156920 (SEMANTICS 3, example A).
    assert [e["order"]["applied_discount_amount"] for e in answer["redeemables"]] == [100, 39980, 3000]
    assert answer["order"]["total_amount"] == 156920 and answer["order"]["discount_amount"] == 43080
    assert answer["redeemables"][0]["result"]["gift"]["credits"] == 100


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"active": False}, "voucher_disabled"),
        ({"expiration_date": "2020-01-01T00:00:00Z"}, "voucher_expired"),
        ({"start_date": "2099-01-01T00:00:00Z"}, "voucher_not_active"),
    ],
)
def test_each_state_failure_has_its_key(
    client: TestClient, h: dict[str, str], fields: dict[str, Any], key: str
) -> None:
    make_voucher(client, h, "STATE", **fields)
    answer = validate(client, h, "STATE")
    assert answer["valid"] is False
    [entry] = answer["inapplicable_redeemables"]
    assert entry["status"] == "INAPPLICABLE" and entry["result"]["error"]["key"] == key
    assert entry["result"]["details"]["key"] == key


def test_unknown_codes_are_inapplicable_not_found(client: TestClient, h: dict[str, str]) -> None:
    answer = validate(client, h, "NOPE1", "NOPE2")
    assert answer["valid"] is False and len(answer["inapplicable_redeemables"]) == len(answer["redeemables"]) == 2
    error = answer["redeemables"][0]["result"]["error"]
    assert error == {
        "code": 404,
        "key": "not_found",
        "message": "Resource not found",
        "details": "Cannot find voucher with id NOPE1",
        "resource_id": "NOPE1",
        "resource_type": "voucher",
    }


def test_gift_credits_over_the_balance_are_refused(client: TestClient, h: dict[str, str]) -> None:
    make_gift_card(client, h, "SMALL", 500)
    body = {"redeemables": [{"object": "voucher", "id": "SMALL", "gift": {"credits": 600}}], "order": ORDER}
    answer = client.post("/v1/validations", json=body, headers=h).json()
    assert answer["redeemables"][0]["result"]["error"]["key"] == "gift_amount_exceeded"


def test_request_errors_are_400_before_evaluation(client: TestClient, h: dict[str, str]) -> None:
    dup = {"redeemables": [{"object": "voucher", "id": "A"}, {"object": "voucher", "id": "A"}]}
    assert_error(client.post("/v1/validations", json=dup, headers=h), 400, "duplicated_redeemables")
    assert_error(client.post("/v1/validations", json={"redeemables": []}, headers=h), 400, "invalid_payload")
    money = {"redeemables": [{"object": "voucher", "id": "A"}], "order": {"amount": 10.5}}
    assert_error(client.post("/v1/redemptions", json=money, headers=h), 400, "invalid_payload")


# --- redemption --------------------------------------------------------------------------------


def test_redemption_moves_quantity_and_is_persisted(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    make_voucher(client, h, "TWICE", redemption={"quantity": 2})
    first = redeem(client, h, "TWICE", customer={"source_id": "alice"})
    assert first.status_code == 200, first.text
    [redemption] = first.json()["redemptions"]
    assert redemption["id"].startswith("r_") and redemption["result"] == "SUCCESS" and redemption["redemption"] is None
    assert redemption["voucher"]["code"] == "TWICE" and redemption["customer"]["source_id"] == "alice"
    assert redemption["order"]["status"] == "PAID" and redemption["order"]["total_amount"] == 19000
    assert redeem(client, h, "TWICE").status_code == 200
    assert_error(redeem(client, h, "TWICE"), 400, "quantity_exceeded")

    drain_worker(settings)
    stored = client.get(f"/v1/redemptions/{redemption['id']}", headers=h).json()
    assert stored == redemption
    listing = client.get("/v1/redemptions?limit=10", headers=h).json()
    assert listing["data_ref"] == "redemptions" and listing["total"] == 2
    entries = client.get("/v1/vouchers/TWICE/redemption", headers=h).json()
    assert entries["quantity"] == 2 and entries["redeemed_quantity"] == 2 and entries["total"] == 2
    # PostgreSQL's copies followed: the voucher's count, the customer created by the hot path, the order.
    assert pg_value(settings, "SELECT redeemed_quantity FROM vouchers WHERE code = 'TWICE'") == 2
    customer = client.get(f"/v1/customers/{redemption['customer_id']}", headers=h).json()
    assert customer["source_id"] == "alice" and customer["summary"]["redemptions"]["total_redeemed"] == 1
    order = client.get(f"/v1/orders/{redemption['order']['id']}", headers=h).json()
    assert order["status"] == "PAID" and order["amount"] == 20000


def test_the_same_customer_keeps_one_id(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "MANY")
    ids = {
        redeem(client, h, "MANY", customer={"source_id": "bob"}).json()["redemptions"][0]["customer_id"]
        for _ in range(3)
    }
    assert len(ids) == 1 and next(iter(ids)).startswith("cust_")


def test_stacked_redemption_has_a_parent_and_partial_mode_skips_failures(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    make_voucher(client, h, "S1")
    make_voucher(client, h, "S2", discount={"type": "PERCENT", "percent_off": 5})
    response = redeem(client, h, "S1", "S2", "MISSING")
    assert response.status_code == 200, response.text
    body = response.json()
    parent = body["parent_redemption"]
    assert [c["redemption"] for c in body["redemptions"]] == [parent["id"], parent["id"]]
    assert parent["related_object_type"] == "redemption"
    assert [r["id"] for r in parent["related_redemptions"]["redemptions"]] == [c["id"] for c in body["redemptions"]]
    assert [e["id"] for e in body["inapplicable_redeemables"]] == ["MISSING"]
    # 20000 - 1000 = 19000; 5 % of 19000 = 950 -> 18050
    assert body["order"]["total_amount"] == 18050

    drain_worker(settings)
    stored = client.get("/v1/redemptions?limit=10", headers=h).json()["redemptions"]
    assert {r["id"] for r in stored} == {c["id"] for c in body["redemptions"]} | {parent["id"]}


def test_all_mode_redeems_nothing_when_one_fails(
    client: TestClient, h: dict[str, str], project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    created = client.post(
        f"/management/v1/projects/{project.project_id}/stacking-rules",
        json={"redeemables_application_mode": "ALL"},
        headers=management_headers,
    )
    assert created.status_code == 200, created.text
    make_voucher(client, h, "OK1", redemption={"quantity": 1})
    failed = redeem(client, h, "OK1", "MISSING")
    assert failed.status_code == 400 and failed.json()["key"] == "not_found"
    # OK1 was not used up.
    assert redeem(client, h, "OK1").status_code == 200


def test_gift_card_balance_is_spent_and_rolled_back_exactly(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    make_gift_card(client, h, "CARD", 10000)
    body = {"redeemables": [{"object": "voucher", "id": "CARD", "gift": {"credits": 2500}}], "order": ORDER}
    redemption = client.post("/v1/redemptions", json=body, headers=h).json()["redemptions"][0]
    assert redemption["amount"] == 2500 and redemption["gift"] == {"amount": 2500}
    assert client.get("/v1/vouchers/CARD", headers=h).json()["gift"]["balance"] == 7500

    drain_worker(settings)
    rollback = client.post(f"/v1/redemptions/{redemption['id']}/rollback?reason=returned", headers=h)
    assert rollback.status_code == 200, rollback.text
    rb = rollback.json()
    assert rb["id"].startswith("rr_") and rb["object"] == "redemption_rollback"
    assert rb["redemption"] == redemption["id"] and rb["amount"] == -2500 and rb["reason"] == "returned"
    assert client.get("/v1/vouchers/CARD", headers=h).json()["gift"]["balance"] == 10000

    # Once only.
    assert_error(client.post(f"/v1/redemptions/{redemption['id']}/rollback", headers=h), 400, "already_rolled_back")
    drain_worker(settings)
    assert client.get(f"/v1/redemptions/{redemption['id']}", headers=h).json()["status"] == "ROLLED_BACK"
    assert_error(client.post(f"/v1/redemptions/{redemption['id']}/rollback", headers=h), 400, "already_rolled_back")
    assert client.get("/v1/vouchers/CARD", headers=h).json()["gift"]["balance"] == 10000


def test_stacked_rollback_restores_every_child(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    make_voucher(client, h, "Q1", redemption={"quantity": 1})
    make_voucher(client, h, "Q2", redemption={"quantity": 1})
    body = redeem(client, h, "Q1", "Q2").json()
    parent_id = body["parent_redemption"]["id"]
    drain_worker(settings)
    child_id = body["redemptions"][0]["id"]
    assert_error(client.post(f"/v1/redemptions/{child_id}/rollback", headers=h), 400, "invalid_redemption")
    assert_error(client.post(f"/v1/redemptions/{child_id}/rollbacks", headers=h), 400, "invalid_redemption_parent")
    rolled = client.post(f"/v1/redemptions/{parent_id}/rollbacks", headers=h)
    assert rolled.status_code == 200, rolled.text
    assert len(rolled.json()["rollbacks"]) == 2 and rolled.json()["parent_rollback"]["redemption"] == parent_id
    # Both codes can be redeemed again.
    assert redeem(client, h, "Q1", "Q2").status_code == 200


def test_unknown_redemption_rollback_is_404(client: TestClient, h: dict[str, str]) -> None:
    body = assert_error(client.post("/v1/redemptions/r_nope/rollback", headers=h), 404, "not_found")
    assert body["resource_type"] == "redemption"


# --- sessions ----------------------------------------------------------------------------------


def test_a_session_reserves_the_last_unit_until_released(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "LAST", redemption={"quantity": 1})
    locked = validate(client, h, "LAST", session={"type": "LOCK", "key": "ssn_A", "ttl": 10, "ttl_unit": "MINUTES"})
    assert locked["valid"] is True
    assert locked["session"] == {"key": "ssn_A", "type": "LOCK", "ttl": 10, "ttl_unit": "MINUTES"}
    # Everyone else sees the unit as taken.
    other = validate(client, h, "LAST")
    assert other["redeemables"][0]["result"]["error"]["key"] == "quantity_exceeded"
    assert_error(redeem(client, h, "LAST"), 400, "quantity_exceeded")
    # Released: free again.
    assert client.delete("/v1/vouchers/LAST/sessions/ssn_A", headers=h).status_code == 204
    assert validate(client, h, "LAST")["valid"] is True


def test_the_session_holder_redeems_its_reservation(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "HELD", redemption={"quantity": 1})
    session = {"type": "LOCK", "key": "ssn_B"}
    assert validate(client, h, "HELD", session=session)["valid"] is True
    assert redeem(client, h, "HELD", session={"key": "ssn_B"}).status_code == 200
    assert_error(redeem(client, h, "HELD"), 400, "quantity_exceeded")


def test_a_session_without_a_key_gets_one(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "ANY")
    session = validate(client, h, "ANY", session={"type": "LOCK"})["session"]
    assert session["key"].startswith("ssn_") and session["ttl"] == 7 and session["ttl_unit"] == "DAYS"


# --- idempotency -------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_redeems_once(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "IDEM", redemption={"quantity": 5})
    body = {"redeemables": [{"object": "voucher", "id": "IDEM"}], "order": ORDER}
    headers = {**h, "Idempotency-Key": "checkout-42"}
    first = client.post("/v1/redemptions", json=body, headers=headers)
    again = client.post("/v1/redemptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert client.get("/v1/vouchers/IDEM", headers=h).json()["redemption"]["redeemed_quantity"] == 1
    other = {"redeemables": [{"object": "voucher", "id": "IDEM"}], "order": {"amount": 1}}
    assert_error(client.post("/v1/redemptions", json=other, headers=headers), 409, "idempotency_key_reused")


def test_a_failed_answer_is_replayed_too(client: TestClient, h: dict[str, str]) -> None:
    headers = {**h, "Idempotency-Key": "k-fail"}
    body = {"redeemables": [{"object": "voucher", "id": "GHOST"}]}
    first = client.post("/v1/redemptions", json=body, headers=headers)
    make_voucher(client, h, "GHOST")
    again = client.post("/v1/redemptions", json=body, headers=headers)
    assert first.status_code == again.status_code == 400 and again.json() == first.json()


# --- legacy single-code calls ------------------------------------------------------------------


def test_legacy_validate_and_redeem(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "OLD", redemption={"quantity": 1})
    valid = client.post("/v1/vouchers/OLD/validate", json={"order": ORDER}, headers=h).json()
    assert valid["valid"] is True and valid["code"] == "OLD" and valid["discount"]["amount_off"] == 1000
    assert valid["order"]["total_amount"] == 19000
    redemption = client.post("/v1/vouchers/OLD/redemption", json={"order": ORDER}, headers=h)
    assert redemption.status_code == 200 and redemption.json()["result"] == "SUCCESS"
    invalid = client.post("/v1/vouchers/OLD/validate", json={"order": ORDER}, headers=h).json()
    assert invalid["valid"] is False and invalid["error"]["key"] == "quantity_exceeded"
    assert invalid["reason"] == "quantity exceeded"
    assert_error(client.post("/v1/vouchers/OLD/redemption", json={"order": ORDER}, headers=h), 400, "quantity_exceeded")


def test_a_customer_created_over_the_api_is_the_one_a_redemption_names(client: TestClient, h: dict[str, str]) -> None:
    created = client.post("/v1/customers", json={"source_id": "dora", "name": "Dora"}, headers=h).json()
    make_voucher(client, h, "FORDORA")
    redemption = redeem(client, h, "FORDORA", customer={"source_id": "dora"}).json()["redemptions"][0]
    assert redemption["customer_id"] == created["id"]


def test_codes_of_a_deleted_campaign_are_not_found_at_once(client: TestClient, h: dict[str, str]) -> None:
    campaign = client.post(
        "/v1/campaigns",
        json={
            "name": "Gone",
            "type": "STATIC",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
        },
        headers=h,
    ).json()
    added = client.post(f"/v1/campaigns/{campaign['id']}/vouchers/GONE1", json={}, headers=h)
    assert added.status_code == 200, added.text
    assert validate(client, h, "GONE1")["valid"] is True
    assert client.delete(f"/v1/campaigns/{campaign['id']}", headers=h).status_code == 202
    # Before the worker has removed the codes from Redis, they are already gone for checkout.
    answer = validate(client, h, "GONE1")
    assert answer["redeemables"][0]["result"]["error"]["key"] == "not_found"


def test_an_order_the_engine_cannot_read_is_a_400(client: TestClient, h: dict[str, str]) -> None:
    make_voucher(client, h, "NEG")
    body = {"redeemables": [{"object": "voucher", "id": "NEG"}], "order": {"items": [{"quantity": 1, "amount": -500}]}}
    for path in ("/v1/validations", "/v1/redemptions"):
        response = client.post(path, json=body, headers=h)
        assert response.status_code == 400 and response.json()["key"] == "invalid_payload", response.text
    qualification = client.post("/v1/qualifications", json={"order": body["order"]}, headers=h)
    assert qualification.status_code == 400


def test_codes_follow_their_campaign_template_and_its_changes(client: TestClient, h: dict[str, str]) -> None:
    """Compiled definitions are kept per campaign template: a code with its own discount keeps
    it, and a changed template applies to the next validation."""
    template = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}}
    campaign = client.post("/v1/campaigns", json={"name": "Kept", "voucher": template}, headers=h).json()
    for code in ("KEPT-1", "KEPT-2"):
        assert client.post(f"/v1/campaigns/{campaign['id']}/vouchers/{code}", headers=h).status_code == 200
    own = client.put("/v1/vouchers/KEPT-2", json={"discount": {"type": "AMOUNT", "amount_off": 300}}, headers=h)
    assert own.status_code == 200, own.text

    def discounts() -> list[int]:
        answer = validate(client, h, "KEPT-1", "KEPT-2")
        return [e["order"]["applied_discount_amount"] for e in answer["redeemables"]]

    assert discounts() == [1000, 300]
    assert discounts() == [1000, 300]  # the second time from the kept compiled template
    changed = client.put(
        f"/v1/campaigns/{campaign['id']}", json={"discount": {"type": "AMOUNT", "amount_off": 2500}}, headers=h
    )
    assert changed.status_code == 200, changed.text
    assert discounts() == [2500, 300]
