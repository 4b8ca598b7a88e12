"""``POST /v1/qualifications``: scenarios, filters, sorting, paging, and agreement with validation."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def promotion(client: TestClient, h: dict[str, str], name: str, tiers: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"name": name, "campaign_type": "PROMOTION", "promotion": {"tiers": tiers}}
    response = client.post("/v1/campaigns", json=body, headers=h)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def tier(name: str, amount_off: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "action": {"discount": {"type": "AMOUNT", "amount_off": amount_off}}, **extra}


def qualify(client: TestClient, h: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/qualifications", json={"order": {"amount": 10000}, **body}, headers=h)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def ids(answer: dict[str, Any]) -> list[str]:
    return [item["id"] for item in answer["redeemables"]["data"]]


def test_applicable_tiers_and_campaigns_are_listed(client: TestClient, h: dict[str, str]) -> None:
    promo = promotion(client, h, "Autumn", [tier("Five off", 500), tier("Ten off", 1000)])
    coupons = client.post(
        "/v1/campaigns",
        json={
            "name": "Coupons",
            "campaign_type": "DISCOUNT_COUPONS",
            "type": "AUTO_UPDATE",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 15}},
        },
        headers=h,
    ).json()
    answer = qualify(client, h, options={"limit": 10})
    data = answer["redeemables"]["data"]
    tier_ids = [t["id"] for t in promo["promotion"]["tiers"]]
    assert set(ids(answer)) == {*tier_ids, coupons["id"]}
    by_id = {item["id"]: item for item in data}
    assert by_id[tier_ids[1]]["object"] == "promotion_tier" and by_id[coupons["id"]]["object"] == "campaign"
    assert by_id[tier_ids[1]]["order"]["total_applied_discount_amount"] == 1000
    assert by_id[coupons["id"]]["order"]["total_applied_discount_amount"] == 1500  # 15 % of 10000
    assert answer["redeemables"]["has_more"] is False and answer["stacking_rules"]["redeemables_limit"] == 30


def test_sorting_by_deal(client: TestClient, h: dict[str, str]) -> None:
    promo = promotion(client, h, "Deals", [tier("Small", 100), tier("Big", 900), tier("Mid", 400)])
    tiers = {t["name"]: t["id"] for t in promo["promotion"]["tiers"]}
    best = ids(qualify(client, h, options={"sorting_rule": "BEST_DEAL", "limit": 10}))
    least = ids(qualify(client, h, options={"sorting_rule": "LEAST_DEAL", "limit": 10}))
    assert best == [tiers["Big"], tiers["Mid"], tiers["Small"]]
    assert least == best[::-1]
    newest_first = ids(qualify(client, h, options={"limit": 10}))
    assert newest_first == [tiers["Mid"], tiers["Big"], tiers["Small"]]


@pytest.mark.parametrize("sorting_rule", ["DEFAULT", "BEST_DEAL", "LEAST_DEAL"])
def test_paging_never_drops_or_repeats(client: TestClient, h: dict[str, str], sorting_rule: str) -> None:
    promo = promotion(client, h, "Many", [tier(f"T{n}", 100 + n * 7 % 50) for n in range(13)])
    everything = ids(qualify(client, h, options={"limit": 50, "sorting_rule": sorting_rule}))
    seen: list[str] = []
    options: dict[str, Any] = {"limit": 4, "sorting_rule": sorting_rule}
    for _ in range(10):
        page = qualify(client, h, options=options)["redeemables"]
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        options = {**options, "starting_after": page["more_starting_after"]}
    assert seen == everything and len(seen) == len(set(seen)) == 13
    assert set(seen) == {t["id"] for t in promo["promotion"]["tiers"]}


def test_filters_narrow_the_candidates(client: TestClient, h: dict[str, str]) -> None:
    first = promotion(client, h, "First", [tier("A", 100)])
    promotion(client, h, "Second", [tier("B", 200)])
    only_first = qualify(
        client, h, options={"limit": 10, "filters": {"campaign_id": {"conditions": {"$is": [first["id"]]}}}}
    )
    assert ids(only_first) == [first["promotion"]["tiers"][0]["id"]]
    no_tiers = qualify(
        client, h, options={"filters": {"resource_type": {"conditions": {"$is_not": ["promotion_tier"]}}}}
    )
    assert ids(no_tiers) == []


def test_rules_exclude_what_does_not_apply_and_a_result_validates(client: TestClient, h: dict[str, str]) -> None:
    rule = client.post(
        "/v1/validation-rules",
        json={"name": "big carts", "rules": {"1": {"name": "order.amount", "conditions": {"$more_than": [50000]}}}},
        headers=h,
    ).json()
    promo = promotion(client, h, "Rules", [tier("Big cart", 700, validation_rules=[rule["id"]]), tier("Any", 300)])
    big_cart, any_cart = (t["id"] for t in promo["promotion"]["tiers"])
    assert ids(qualify(client, h)) == [any_cart]
    assert set(ids(qualify(client, h, order={"amount": 60000}))) == {big_cart, any_cart}

    validation = client.post(
        "/v1/validations",
        json={"redeemables": [{"object": "promotion_tier", "id": any_cart}], "order": {"amount": 10000}},
        headers=h,
    ).json()
    assert validation["valid"] is True and validation["order"]["total_discount_amount"] == 300


def test_customer_wallet_holds_published_codes(client: TestClient, h: dict[str, str]) -> None:
    campaign = client.post(
        "/v1/campaigns",
        json={
            "name": "Wallet",
            "campaign_type": "DISCOUNT_COUPONS",
            "type": "AUTO_UPDATE",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 250}},
        },
        headers=h,
    ).json()
    published = client.post(
        "/v1/publications", json={"customer": {"source_id": "walt"}, "campaign": {"name": campaign["name"]}}, headers=h
    )
    assert published.status_code == 200, published.text
    code = published.json()["voucher"]["code"]
    promotion(client, h, "Not in wallet", [tier("T", 100)])

    wallet = qualify(client, h, customer={"source_id": "walt"}, scenario="CUSTOMER_WALLET", options={"limit": 10})
    assert ids(wallet) == [code]
    [item] = wallet["redeemables"]["data"]
    assert item["object"] == "voucher" and item["order"]["total_applied_discount_amount"] == 250
    everyone = qualify(client, h, customer={"source_id": "walt"}, options={"limit": 10})
    assert code in ids(everyone) and campaign["id"] in ids(everyone)
    stranger = qualify(client, h, customer={"source_id": "nobody"}, scenario="CUSTOMER_WALLET")
    assert ids(stranger) == []
    # Qualifying an unknown customer does not create them.
    assert client.get("/v1/customers/nobody", headers=h).status_code == 404


def test_bad_options_are_400(client: TestClient, h: dict[str, str]) -> None:
    for options in ({"limit": 51}, {"sorting_rule": "RANDOM"}, {"filters": {"colour": {"conditions": {"$is": ["x"]}}}}):
        assert_error(client.post("/v1/qualifications", json={"options": options}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/qualifications", json={"scenario": "EVERYTHING"}, headers=h), 400, "invalid_payload")


def test_paging_over_many_chunks_with_a_wallet_in_between(client: TestClient, h: dict[str, str]) -> None:
    old = promotion(client, h, "Old", [tier(f"O{n}", 100 + n) for n in range(90)])
    campaign = client.post(
        "/v1/campaigns",
        json={
            "name": "Between",
            "campaign_type": "DISCOUNT_COUPONS",
            "type": "AUTO_UPDATE",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 50}},
        },
        headers=h,
    ).json()
    code = client.post(
        "/v1/publications", json={"customer": {"source_id": "pat"}, "campaign": {"id": campaign["id"]}}, headers=h
    ).json()["voucher"]["code"]
    new = promotion(client, h, "New", [tier(f"N{n}", 100 + n) for n in range(70)])

    seen: list[str] = []
    options: dict[str, Any] = {"limit": 50}
    for _ in range(10):
        page = qualify(client, h, customer={"source_id": "pat"}, options=options)["redeemables"]
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        options = {"limit": 50, "starting_after": page["more_starting_after"]}
    newest_first = [t["id"] for t in reversed(new["promotion"]["tiers"])]
    oldest = [t["id"] for t in reversed(old["promotion"]["tiers"])]
    # The newer promotions, then the campaign and the code published after the old ones, then the old ones.
    assert seen == [*newest_first, code, campaign["id"], *oldest]
