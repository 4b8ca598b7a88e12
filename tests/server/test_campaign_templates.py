"""Campaign templates (issue 17): made from a campaign or a tier, then campaigns and tiers made from them."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error

TEN_OFF = {"type": "AMOUNT", "amount_off": 1000}


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def source_campaign(client: TestClient, h: dict[str, str]) -> dict[str, Any]:
    rule = ok(
        client.post(
            "/v1/validation-rules",
            json={"name": "Big carts", "rules": {"1": {"name": "order.amount", "conditions": {"$more_than": [5000]}}}},
            headers=h,
        )
    )
    body = {
        "name": "Autumn",
        "description": "every autumn",
        "type": "AUTO_UPDATE",
        "join_once": True,
        "voucher": {
            "type": "DISCOUNT_VOUCHER",
            "discount": TEN_OFF,
            "redemption": {"quantity": 3},
            "code_config": {"pattern": "AU-####"},
        },
        "metadata": {"season": "autumn"},
        "validation_rules": [rule["id"]],
    }
    campaign: dict[str, Any] = ok(client.post("/v1/campaigns", json=body, headers=h))
    return campaign


def validate(client: TestClient, h: dict[str, str], code: str, amount: int) -> dict[str, Any]:
    body = {"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": amount}}
    result: dict[str, Any] = ok(client.post("/v1/validations", json=body, headers=h))
    return result


def test_template_crud(client: TestClient, h: dict[str, str]) -> None:
    campaign = source_campaign(client, h)
    template = ok(
        client.post("/v1/templates/campaigns", json={"name": "Seasonal", "campaign_id": campaign["id"]}, headers=h)
    )
    assert template["id"].startswith("camp_tpl_") and template["object"] == "campaign_template"
    assert template["campaign_type"] == "DISCOUNT_COUPONS" and template["name"] == "Seasonal"
    assert template["description"] is None and template["updated_at"] is None

    got = ok(client.get(f"/v1/templates/campaigns/{template['id']}?expand=json_template", headers=h))
    assert got["json_template"]["voucher"]["discount"] == TEN_OFF
    assert got["json_template"]["validation_rule"]["name"] == "Big carts"

    updated = ok(client.put(f"/v1/templates/campaigns/{template['id']}", json={"description": "Q4"}, headers=h))
    assert updated["description"] == "Q4" and updated["name"] == "Seasonal" and updated["updated_at"] is not None

    second = ok(
        client.post("/v1/templates/campaigns", json={"name": "Another", "campaign_id": campaign["id"]}, headers=h)
    )
    named = ok(client.get("/v1/templates/campaigns?filters[name][conditions][$is]=Another", headers=h))
    assert [t["id"] for t in named["data"]] == [second["id"]]
    listed = ok(client.get("/v1/templates/campaigns?limit=1&include_total=true", headers=h))
    assert listed["object"] == "list" and listed["data_ref"] == "data" and listed["total"] == 2
    assert listed["has_more"] is True and len(listed["data"]) == 1
    rest = ok(client.get(f"/v1/templates/campaigns?starting_after_id={listed['more_starting_after']}", headers=h))
    assert {t["id"] for t in listed["data"] + rest["data"]} == {template["id"], second["id"]}
    assert rest["has_more"] is False

    assert client.delete(f"/v1/templates/campaigns/{second['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/templates/campaigns/{second['id']}", headers=h), 404, "not_found")


def test_template_errors(client: TestClient, h: dict[str, str]) -> None:
    campaign = source_campaign(client, h)
    path = "/v1/templates/campaigns"
    assert_error(client.post(path, json={"campaign_id": campaign["id"]}, headers=h), 400, "invalid_payload")
    assert_error(client.post(path, json={"name": "x"}, headers=h), 400, "invalid_payload")
    both = {"name": "x", "campaign_id": campaign["id"], "promotion_tier_id": "promo_x"}
    assert_error(client.post(path, json=both, headers=h), 400, "invalid_payload")
    assert_error(client.post(path, json={"name": "x", "campaign_id": "camp_nope"}, headers=h), 404, "not_found")
    assert_error(client.post(path, json={"name": "x", "promotion_tier_id": "promo_nope"}, headers=h), 404, "not_found")
    loyalty = ok(
        client.post(
            "/v1/loyalties",
            json={"name": "Club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
            headers=h,
        )
    )
    assert_error(client.post(path, json={"name": "x", "campaign_id": loyalty["id"]}, headers=h), 400, "invalid_payload")
    ok(client.post(path, json={"name": "Same", "campaign_id": campaign["id"]}, headers=h))
    assert_error(
        client.post(path, json={"name": "Same", "campaign_id": campaign["id"]}, headers=h), 409, "duplicate_found"
    )
    assert_error(client.get(f"{path}/camp_tpl_nope", headers=h), 404, "not_found")
    assert_error(client.put(f"{path}/camp_tpl_nope", json={"name": "y"}, headers=h), 404, "not_found")
    assert_error(client.delete(f"{path}/camp_tpl_nope", headers=h), 404, "not_found")
    assert_error(client.get(f"{path}?order=name", headers=h), 400, "invalid_query_params")
    assert_error(client.get(f"{path}?limit=500", headers=h), 400, "invalid_query_params")
    assert_error(client.post(f"{path}/camp_tpl_nope/campaign-setup", json={"name": "n"}, headers=h), 404, "not_found")


def test_campaign_setup_makes_a_campaign_with_a_new_rule_set(client: TestClient, h: dict[str, str]) -> None:
    campaign = source_campaign(client, h)
    template = ok(
        client.post("/v1/templates/campaigns", json={"name": "Seasonal", "campaign_id": campaign["id"]}, headers=h)
    )
    setup = ok(
        client.post(
            f"/v1/templates/campaigns/{template['id']}/campaign-setup",
            json={"name": "Autumn 2027", "vouchers_count": 1, "metadata": {"season": "late"}},
            headers=h,
        )
    )
    assert setup["object"] == "campaign_setup"
    [resource] = setup["created_resources"]
    assert resource["object"] == "validation_rules" and resource["id"].startswith("val_")
    made = setup["campaign"]
    assert made["name"] == "Autumn 2027" and made["campaign_type"] == "DISCOUNT_COUPONS" and made["join_once"] is True
    assert made["voucher"]["discount"] == TEN_OFF and made["voucher"]["redemption"]["quantity"] == 3
    assert made["metadata"] == {"season": "late"} and made["description"] == "every autumn"
    rule_ids = [a["rule_id"] for a in made["validation_rules_assignments"]["data"]]
    assert rule_ids == [resource["id"]]
    code = ok(client.get(f"/v1/vouchers?campaign_id={made['id']}", headers=h))["vouchers"][0]["code"]
    assert code.startswith("AU-")
    assert validate(client, h, code, 9000)["valid"] is True
    assert validate(client, h, code, 1000)["valid"] is False  # the copied rule set holds

    again = client.post(
        f"/v1/templates/campaigns/{template['id']}/campaign-setup", json={"name": "Autumn 2027"}, headers=h
    )
    assert_error(again, 409, "duplicate_found")
    assert_error(
        client.post(f"/v1/templates/campaigns/{template['id']}/campaign-setup", json={}, headers=h),
        400,
        "invalid_payload",
    )


def test_tier_templates_and_tier_setup(client: TestClient, h: dict[str, str]) -> None:
    promo = ok(client.post("/v1/campaigns", json={"name": "Promo", "campaign_type": "PROMOTION"}, headers=h))
    tier = ok(
        client.post(
            f"/v1/promotions/{promo['id']}/tiers", json={"name": "ten", "action": {"discount": TEN_OFF}}, headers=h
        )
    )
    template = ok(
        client.post("/v1/templates/campaigns", json={"name": "From tier", "promotion_tier_id": tier["id"]}, headers=h)
    )
    assert template["campaign_type"] == "DISCOUNT_COUPONS"

    setup = ok(
        client.post(
            f"/v1/templates/campaigns/{template['id']}/tier-setup",
            json={"campaign_id": promo["id"], "name": "ten again", "metadata": {"x": 1}},
            headers=h,
        )
    )
    assert setup["object"] == "promotion_tier_setup" and setup["created_resources"] == []
    made = setup["promotion_tier"]
    assert (
        made["name"] == "ten again" and made["action"] == {"discount": TEN_OFF} and made["campaign_id"] == promo["id"]
    )
    tiers = ok(client.get(f"/v1/promotions/{promo['id']}/tiers", headers=h))["tiers"]
    assert {t["name"] for t in tiers} == {"ten", "ten again"}

    setup_path = f"/v1/templates/campaigns/{template['id']}/tier-setup"
    assert_error(client.post(setup_path, json={"name": "n"}, headers=h), 400, "invalid_payload")
    assert_error(client.post(setup_path, json={"campaign_id": promo["id"]}, headers=h), 400, "invalid_payload")
    assert_error(client.post(setup_path, json={"campaign_id": "camp_nope", "name": "n"}, headers=h), 404, "not_found")
    gift = ok(
        client.post(
            "/v1/campaigns",
            json={"name": "Cards", "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 100}}},
            headers=h,
        )
    )
    gift_template = ok(
        client.post("/v1/templates/campaigns", json={"name": "Gift", "campaign_id": gift["id"]}, headers=h)
    )
    assert gift_template["campaign_type"] == "GIFT_VOUCHERS"
    gift_setup = f"/v1/templates/campaigns/{gift_template['id']}/tier-setup"
    assert_error(
        client.post(gift_setup, json={"campaign_id": promo["id"], "name": "n"}, headers=h), 400, "invalid_payload"
    )


def test_management_lists_and_copies_templates(
    client: TestClient, h: dict[str, str], project: ProjectKeys, make_project: Any, management_headers: dict[str, str]
) -> None:
    campaign = source_campaign(client, h)
    template = ok(
        client.post("/v1/templates/campaigns", json={"name": "Seasonal", "campaign_id": campaign["id"]}, headers=h)
    )
    base = f"/management/v1/projects/{project.project_id}/templates/campaigns"
    listed = ok(client.get(base, headers=management_headers))
    assert listed["data_ref"] == "data" and [t["id"] for t in listed["data"]] == [template["id"]]

    other = make_project("Other")
    copied = ok(
        client.post(
            f"{base}/{template['id']}/copy",
            json={"name": "Seasonal copy", "destination_project_id": other.project_id},
            headers=management_headers,
        )
    )
    assert (
        copied["id"] != template["id"]
        and copied["name"] == "Seasonal copy"
        and copied["campaign_type"] == "DISCOUNT_COUPONS"
    )
    there = ok(client.get("/v1/templates/campaigns", headers=other.headers))["data"]
    assert [t["id"] for t in there] == [copied["id"]]
    # Used there, it makes the rule set in the destination project.
    setup = ok(
        client.post(
            f"/v1/templates/campaigns/{copied['id']}/campaign-setup", json={"name": "Made there"}, headers=other.headers
        )
    )
    rule_id = setup["created_resources"][0]["id"]
    assert ok(client.get(f"/v1/validation-rules/{rule_id}", headers=other.headers))["name"] == "Big carts"
    assert_error(client.get(f"/v1/validation-rules/{rule_id}", headers=h), 404, "not_found")

    copy_path = f"{base}/{template['id']}/copy"
    assert_error(client.post(copy_path, json={"name": "x"}, headers=management_headers), 400, "invalid_payload")
    missing = {"name": "x", "destination_project_id": "proj_nope"}
    assert_error(client.post(copy_path, json=missing, headers=management_headers), 404, "not_found")
    again = {"name": "Seasonal copy", "destination_project_id": other.project_id}
    assert_error(client.post(copy_path, json=again, headers=management_headers), 409, "duplicate_found")
    assert_error(client.post(f"{base}/camp_tpl_nope/copy", json=again, headers=management_headers), 404, "not_found")
    assert_error(
        client.get("/management/v1/projects/proj_nope/templates/campaigns", headers=management_headers),
        404,
        "not_found",
    )
    assert_error(client.get(base, headers=h), 401, "unauthorized")
