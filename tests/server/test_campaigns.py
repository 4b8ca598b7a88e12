"""``/v1/campaigns`` over HTTP: every endpoint, bulk generation through the worker, and error paths."""

from __future__ import annotations

from typing import Any

import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform import keys
from voucherd.platform.settings import Settings

DISCOUNT = {"type": "AMOUNT", "amount_off": 1000}


def coupons(name: str = "Spring", **extra: Any) -> dict[str, Any]:
    return {"name": name, "voucher": {"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT}, **extra}


def action_of(client: TestClient, project: ProjectKeys, action_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    return body


def test_create_infers_type_and_always_has_code_config(client: TestClient, project: ProjectKeys) -> None:
    created = client.post("/v1/campaigns", json=coupons(), headers=project.headers)
    assert created.status_code == 200, created.text
    campaign = created.json()
    assert campaign["id"].startswith("camp_") and campaign["object"] == "campaign"
    assert campaign["campaign_type"] == "DISCOUNT_COUPONS" and campaign["type"] == "AUTO_UPDATE"
    assert campaign["voucher"]["code_config"]["pattern"] == "########"
    assert campaign["voucher"]["discount"] == DISCOUNT
    assert campaign["creation_status"] == "DONE" and campaign["vouchers_count"] == 0
    assert campaign["active"] is True and campaign["metadata"] == {}
    assert campaign["validation_rules_assignments"] == {"object": "list", "data_ref": "data", "data": [], "total": 0}

    gift = client.post(
        "/v1/campaigns",
        json={"name": "Cards", "type": "STATIC", "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 5000}}},
        headers=project.headers,
    ).json()
    assert gift["campaign_type"] == "GIFT_VOUCHERS" and gift["type"] == "STATIC"
    assert gift["voucher"]["gift"] == {"amount": 5000}
    loyalty = client.post(
        "/v1/campaigns",
        json={"name": "Club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 100}}},
        headers=project.headers,
    ).json()
    assert loyalty["campaign_type"] == "LOYALTY_PROGRAM" and loyalty["join_once"] is True
    referral = client.post(
        "/v1/campaigns",
        json={"name": "Friends", "campaign_type": "REFERRAL_PROGRAM", "voucher": {"discount": DISCOUNT}},
        headers=project.headers,
    ).json()
    assert referral["campaign_type"] == "REFERRAL_PROGRAM" and referral["voucher"]["is_referral_code"] is True
    standalone = client.post("/v1/campaigns", json=coupons("Generic", type="STANDALONE"), headers=project.headers)
    assert standalone.json()["type"] == "STANDALONE"


def test_promotion_campaign_creates_its_tiers(client: TestClient, project: ProjectKeys) -> None:
    body = {
        "name": "Cart promo",
        "campaign_type": "PROMOTION",
        "promotion": {"tiers": [{"name": "10 off", "action": {"discount": DISCOUNT}}]},
    }
    created = client.post("/v1/campaigns", json=body, headers=project.headers)
    assert created.status_code == 200, created.text
    campaign = created.json()
    assert campaign["campaign_type"] == "PROMOTION" and campaign["voucher"] is None
    assert campaign["promotion"]["total"] == 1 and campaign["promotion"]["tiers"][0]["name"] == "10 off"
    again = client.get(f"/v1/campaigns/{campaign['id']}", headers=project.headers).json()
    assert again["promotion"]["tiers"][0]["id"] == campaign["promotion"]["tiers"][0]["id"]
    adding = client.post(f"/v1/campaigns/{campaign['id']}/vouchers", headers=project.headers)
    assert_error(adding, 400, "invalid_campaign_params")


def test_get_update_by_id_or_name_and_null_clears(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    campaign = client.post(
        "/v1/campaigns",
        json=coupons(expiration_date="2090-10-08T12:57:09.386Z", metadata={"region": "EU"}, category="Seasonal"),
        headers=h,
    ).json()
    assert campaign["expiration_date"] == "2090-10-08T12:57:09.386Z"
    assert campaign["category"] == "Seasonal" and campaign["categories"][0]["name"] == "Seasonal"
    by_name = client.get("/v1/campaigns/Spring", headers=h).json()
    assert by_name["id"] == campaign["id"]

    updated = client.put(
        f"/v1/campaigns/{campaign['id']}",
        json={"expiration_date": None, "description": "new", "discount": {"type": "PERCENT", "percent_off": 15}},
        headers=h,
    ).json()
    assert updated["expiration_date"] is None and updated["description"] == "new"
    assert updated["voucher"]["discount"] == {"type": "PERCENT", "percent_off": 15}
    assert updated["metadata"] == {"region": "EU"} and updated["updated_at"] is not None
    cleared = client.put("/v1/campaigns/Spring", json={"metadata": None, "category": None}, headers=h).json()
    assert cleared["metadata"] == {} and cleared["category_id"] is None


def test_list_with_paging_and_filters(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for i in range(3):
        client.post("/v1/campaigns", json=coupons(f"C{i}"), headers=h)
    client.post(
        "/v1/campaigns", json={"name": "G", "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 1}}}, headers=h
    )
    listing = client.get("/v1/campaigns", params={"limit": 2}, headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "campaigns" and listing["total"] == 4
    assert [c["name"] for c in listing["campaigns"]] == ["G", "C2"]
    page2 = client.get("/v1/campaigns", params={"limit": 2, "page": 2, "order": "-created_at"}, headers=h).json()
    assert [c["name"] for c in page2["campaigns"]] == ["C1", "C0"]
    gifts = client.get("/v1/campaigns", params={"campaign_type": "GIFT_VOUCHERS"}, headers=h).json()
    assert gifts["total"] == 1 and gifts["campaigns"][0]["name"] == "G"
    named = client.get("/v1/campaigns", params={"filters[campaigns][conditions][$in][0]": "C1"}, headers=h).json()
    assert [c["name"] for c in named["campaigns"]] == ["C1"]
    assert_error(client.get("/v1/campaigns", params={"limit": 101}, headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/campaigns", params={"order": "name"}, headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/campaigns", params={"campaign_type": "X"}, headers=h), 400, "invalid_query_params")


def test_enable_disable_and_summary(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    campaign = client.post("/v1/campaigns", json=coupons(vouchers_count=1), headers=h).json()
    assert campaign["vouchers_count"] == 1
    disabled = client.post(f"/v1/campaigns/{campaign['id']}/disable", headers=h)
    assert disabled.status_code == 200 and disabled.json() == {}
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=h).json()["active"] is False
    assert client.post("/v1/campaigns/Spring/enable", headers=h).json() == {}
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=h).json()["active"] is True
    summary = client.get(f"/v1/campaigns/{campaign['id']}/summary", headers=h).json()
    assert summary["object"] == "campaign_summary" and summary["vouchers_created"] == 1
    assert summary["campaign"]["id"] == campaign["id"]


def test_add_one_code_and_a_specific_code(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    campaign = client.post(
        "/v1/campaigns",
        json=coupons(voucher={**coupons()["voucher"], "code_config": {"prefix": "SP-", "length": 6}}),
        headers=h,
    ).json()
    one = client.post(f"/v1/campaigns/{campaign['id']}/vouchers", headers=h)
    assert one.status_code == 200, one.text
    voucher = one.json()
    assert voucher["code"].startswith("SP-") and len(voucher["code"]) == 9
    assert voucher["campaign_id"] == campaign["id"] and voucher["campaign"] == "Spring"
    assert voucher["discount"] == DISCOUNT
    specific = client.post(
        f"/v1/campaigns/{campaign['id']}/vouchers/MY-CODE", json={"metadata": {"a": 1}}, headers=h
    ).json()
    assert specific["code"] == "MY-CODE" and specific["metadata"] == {"a": 1}
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=h).json()["vouchers_count"] == 2
    state = redis.Redis.from_url(settings.redis_url).hgetall(keys.voucher_state(project.project_id, "MY-CODE"))
    assert state[b"campaign_id"] == campaign["id"].encode() and state[b"active"] == b"1"
    duplicate = client.post(f"/v1/campaigns/{campaign['id']}/vouchers/MY-CODE", headers=h)
    assert_error(duplicate, 409, "duplicate_found")


def test_bulk_generation_runs_as_an_async_action(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    created = client.post(
        "/v1/campaigns",
        json=coupons(vouchers_count=500, voucher={**coupons()["voucher"], "code_config": {"length": 5}}),
        headers=h,
    )
    campaign = created.json()
    assert campaign["creation_status"] == "IN_PROGRESS" and campaign["vouchers_generation_status"] == "IN_PROGRESS"
    # A code that already exists elsewhere in the project must not be taken again.
    client.post("/v1/vouchers/TAKEN", json={"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT}, headers=h)
    drain_worker(settings)
    done = client.get(f"/v1/campaigns/{campaign['id']}", headers=h).json()
    assert done["creation_status"] == "DONE" and done["vouchers_count"] == 500
    action = action_of(client, project, campaign["async_action_id"])
    assert action["type"] == "CAMPAIGN.VOUCHERS_GENERATE" and action["status"] == "DONE"
    assert action["result"]["done_count"] == 500 and action["progress"] == 100
    listing = client.get("/v1/vouchers", params={"campaign_id": campaign["id"], "limit": 100}, headers=h).json()
    assert listing["total"] == 500 and len({v["code"] for v in listing["vouchers"]}) == 100
    r = redis.Redis.from_url(settings.redis_url)
    for voucher in listing["vouchers"]:
        assert len(voucher["code"]) == 5
        state = r.hgetall(keys.voucher_state(project.project_id, voucher["code"]))
        assert (
            state[b"id"] == voucher["id"].encode() and state[b"redeemed"] == b"0" and state.get(b"quantity", b"") == b""
        )

    more = client.post(f"/v1/campaigns/{campaign['id']}/vouchers", params={"vouchers_count": 5}, headers=h)
    assert more.status_code == 202 and more.json()["async_action_id"].startswith("aa_")
    drain_worker(settings)
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=h).json()["vouchers_count"] == 505


def test_delete_is_asynchronous_and_frees_the_name(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    campaign = client.post("/v1/campaigns", json=coupons(vouchers_count=1), headers=h).json()
    code = client.get("/v1/vouchers", params={"campaign_id": campaign["id"]}, headers=h).json()["vouchers"][0]["code"]
    deleted = client.delete(f"/v1/campaigns/{campaign['id']}", headers=h)
    assert deleted.status_code == 202 and deleted.json()["async_action_id"].startswith("aa_")
    assert_error(client.get(f"/v1/campaigns/{campaign['id']}", headers=h), 404, "not_found")
    assert_error(client.get(f"/v1/vouchers/{code}", headers=h), 404, "not_found")
    assert client.get("/v1/campaigns", headers=h).json()["total"] == 0
    drain_worker(settings)
    assert not redis.Redis.from_url(settings.redis_url).exists(keys.voucher_state(project.project_id, code))
    again = client.post("/v1/campaigns", json=coupons(), headers=h)
    assert again.status_code == 200 and again.json()["id"] != campaign["id"]
    # The binned code stays reserved until deleted for good.
    assert_error(client.post(f"/v1/vouchers/{code}", json={"discount": DISCOUNT}, headers=h), 409, "duplicate_found")

    forced = client.delete(f"/v1/campaigns/{again.json()['id']}", params={"force": "true"}, headers=h)
    assert forced.status_code == 202
    drain_worker(settings)
    assert action_of(client, project, forced.json()["async_action_id"])["operation_status"] == "SUCCESS"


def test_definitions_version_moves_on_changes(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    version = keys.definitions_version(project.project_id)
    client.post("/v1/campaigns", json=coupons(), headers=project.headers)
    first = int(r.get(version) or 0)
    client.put("/v1/campaigns/Spring", json={"description": "x"}, headers=project.headers)
    client.post("/v1/campaigns/Spring/disable", headers=project.headers)
    assert int(r.get(version) or 0) == first + 2


def test_errors(client: TestClient, project: ProjectKeys, make_project: Any) -> None:
    h = project.headers
    missing = assert_error(client.get("/v1/campaigns/camp_nope", headers=h), 404, "not_found")
    assert missing["resource_id"] == "camp_nope" and missing["resource_type"] == "campaign"
    for path in ("/v1/campaigns/x/enable", "/v1/campaigns/x/disable", "/v1/campaigns/x/vouchers"):
        assert_error(client.post(path, headers=h), 404, "not_found")
    assert_error(client.get("/v1/campaigns/x/summary", headers=h), 404, "not_found")
    assert_error(client.delete("/v1/campaigns/x", headers=h), 404, "not_found")
    assert_error(client.put("/v1/campaigns/x", json={}, headers=h), 404, "not_found")

    client.post("/v1/campaigns", json=coupons(), headers=h)
    assert_error(client.post("/v1/campaigns", json=coupons(), headers=h), 409, "duplicate_found")
    bad_config = coupons("B", voucher={**coupons()["voucher"], "code_config": {"pattern": "ABC"}})
    assert_error(client.post("/v1/campaigns", json=bad_config, headers=h), 400, "invalid_code_config")
    too_many = coupons(
        "B", vouchers_count=10, voucher={**coupons()["voucher"], "code_config": {"charset": "AB", "length": 2}}
    )
    assert_error(client.post("/v1/campaigns", json=too_many, headers=h), 400, "invalid_code_config")
    assert_error(
        client.post("/v1/campaigns", json={"voucher": {"discount": DISCOUNT}}, headers=h), 400, "invalid_payload"
    )
    assert_error(client.post("/v1/campaigns", json={"name": "N"}, headers=h), 400, "invalid_campaign_params")
    assert_error(
        client.post("/v1/campaigns", json={"name": "N", "campaign_type": "NOPE"}, headers=h),
        400,
        "invalid_campaign_params",
    )
    assert_error(
        client.post("/v1/campaigns", json=coupons("N", type="DYNAMIC"), headers=h), 400, "invalid_campaign_params"
    )
    no_discount = {"name": "N", "voucher": {"type": "DISCOUNT_VOUCHER"}}
    assert_error(client.post("/v1/campaigns", json=no_discount, headers=h), 400, "invalid_voucher")
    bad_discount = {"name": "N", "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT"}}}
    assert_error(client.post("/v1/campaigns", json=bad_discount, headers=h), 400, "invalid_voucher")
    referral = {"name": "N", "campaign_type": "REFERRAL_PROGRAM", "voucher": {"type": "DISCOUNT_VOUCHER"}}
    assert_error(client.post("/v1/campaigns", json=referral, headers=h), 400, "invalid_campaign")
    assert_error(client.post("/v1/campaigns", json=coupons("N", start_date="soon"), headers=h), 400, "invalid_payload")
    assert_error(
        client.post("/v1/campaigns", json=coupons("N", validation_rules=["val_missing"]), headers=h), 404, "not_found"
    )
    assert client.get("/v1/campaigns/N", headers=h).status_code == 404  # nothing half-created
    assert_error(
        client.post("/v1/campaigns/Spring/vouchers", params={"vouchers_count": "x"}, headers=h),
        400,
        "invalid_query_params",
    )

    other = make_project("Other")
    assert_error(client.get("/v1/campaigns/Spring", headers=other.headers), 404, "not_found")


def test_generation_skips_codes_taken_elsewhere(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    """A tiny code space (16 codes) with 2 already taken: the chunk falls back from COPY to the
    conflict-skipping insert and draws again until exactly the 14 free codes exist."""
    h = project.headers
    for code in ("AAAA", "BABA"):
        client.post(f"/v1/vouchers/{code}", json={"discount": DISCOUNT}, headers=h)
    config = {"charset": "AB", "length": 4}
    body = coupons(vouchers_count=14, voucher={**coupons()["voucher"], "code_config": config})
    campaign = client.post("/v1/campaigns", json=body, headers=h).json()
    drain_worker(settings)
    listing = client.get("/v1/vouchers", params={"campaign_id": campaign["id"], "limit": 100}, headers=h).json()
    codes = {v["code"] for v in listing["vouchers"]}
    assert listing["total"] == 14 and len(codes) == 14 and not codes & {"AAAA", "BABA"}
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=h).json()["vouchers_count"] == 14
    # The standalone codes keep their own state.
    assert client.get("/v1/vouchers/AAAA", headers=h).json()["campaign_id"] is None
