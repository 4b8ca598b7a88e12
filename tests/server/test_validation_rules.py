"""``/v1/validation-rules``, assignments and ``/v1/validation-rules-assignments`` over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.definitions import validation_rules
from voucherd.platform import db, keys
from voucherd.platform.errors import NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.settings import Settings

SEGMENT_RULE: dict[str, Any] = {
    "name": "New customers, once",
    "error": {"message": "Only for new customers."},
    "rules": {
        "1": {"name": "customer.segment", "conditions": {"$is": ["seg_n3vVcU5t0m3rs4rEPr3C1oU5"]}},
        "2": {"name": "redemption.count.per_customer", "conditions": {"$less_than_or_equal": [1]}},
        "logic": "1 and 2",
    },
}
# The create example of the Voucherify reference: nested rules without their own logic, an alias
# operator, product operands as objects, a rule the logic does not mention.
DOCS_EXAMPLE: dict[str, Any] = {
    "name": "Set of Validation Rules",
    "error": {"message": "Your order does not meet at least one of the required criteria."},
    "applicable_to": {
        "included_all": False,
        "excluded": [{"object": "product", "id": "prod_0bae45ffc7003ffc52", "source_id": "second_product"}],
        "included": [
            {
                "object": "products_collection",
                "id": "pc_4ndRX",
                "effect": "APPLY_TO_MOST_EXPENSIVE",
                "quantity_limit": 1,
            }
        ],
    },
    "rules": {
        "1": {
            "name": "order.metadata",
            "property": "location",
            "rules": {},
            "conditions": {"$is": ["Santorini"]},
            "error": {"message": "Your order must be placed at one of our Santorini shops."},
        },
        "2": {
            "name": "custom_event.metadata",
            "property": "test",
            "rules": {},
            "conditions": {"$greater_than_or_equal": [1]},
        },
        "3": {
            "name": "order.items.every",
            "rules": {
                "1": {"name": "order.items.metadata", "property": "test", "conditions": {"$more_than_equal": [1]}}
            },
            "conditions": {"$is": [{"id": "prod_1", "effect": "APPLY_TO_EVERY", "object": "product"}]},
        },
        "logic": "(1 or 2)",
    },
    "type": "advanced",
    "context_type": "campaign.discount_coupons.discount.apply_to_items",
}


def run_sql(settings: Settings, query: str, *args: Any) -> Any:
    async def go() -> Any:
        conn = await db.connect(settings.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def insert_campaign(settings: Settings, project: ProjectKeys, name: str, campaign_type: str = "PROMOTION") -> str:
    """A campaign row as the campaigns module stores it (only the columns this test needs)."""
    campaign_id = new_id("camp")
    run_sql(
        settings,
        "INSERT INTO campaigns (id, project_id, name, campaign_type, type) VALUES ($1, $2, $3, $4, 'STATIC')",
        campaign_id,
        project.project_id,
        name,
        campaign_type,
    )
    return campaign_id


def defs_version(settings: Settings, project: ProjectKeys) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return int(client.get(keys.definitions_version(project.project_id)) or 0)
    finally:
        client.close()


def test_rule_set_lifecycle(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    response = client.post("/v1/validation-rules", json=SEGMENT_RULE, headers=h)
    assert response.status_code == 200, response.text
    rule = response.json()
    assert rule["id"].startswith("val_") and rule["object"] == "validation_rules"
    assert rule["name"] == SEGMENT_RULE["name"] and rule["rules"] == SEGMENT_RULE["rules"]
    assert rule["error"] == {"message": "Only for new customers."}
    assert rule["bundle_rules"] == {}
    assert rule["applicable_to"] == {"excluded": [], "included": [], "included_all": False}
    assert rule["type"] == "expression" and rule["context_type"] == "global"
    assert rule["assignments_count"] == 0
    assert rule["created_at"].endswith("Z") and rule["updated_at"] is None

    assert client.get(f"/v1/validation-rules/{rule['id']}", headers=h).json() == rule

    bundle = {"1": {"name": "product.id", "conditions": {"$is": [{"id": "prod_1", "object": "product"}]}}, "logic": "1"}
    updated = client.put(
        f"/v1/validation-rules/{rule['id']}", json={"name": "Renamed", "bundle_rules": bundle}, headers=h
    ).json()
    assert updated["name"] == "Renamed" and updated["bundle_rules"] == bundle
    assert updated["rules"] == SEGMENT_RULE["rules"] and updated["error"] == rule["error"]
    assert updated["updated_at"] is not None

    cleared = client.put(
        f"/v1/validation-rules/{rule['id']}", json={"bundle_rules": None, "error": None}, headers=h
    ).json()
    assert cleared["bundle_rules"] == {} and "error" not in cleared and cleared["name"] == "Renamed"

    assert client.delete(f"/v1/validation-rules/{rule['id']}", headers=h).status_code == 204
    body = assert_error(client.get(f"/v1/validation-rules/{rule['id']}", headers=h), 404, "not_found")
    assert body["resource_id"] == rule["id"] and body["resource_type"] == "validation_rules"
    assert_error(client.put(f"/v1/validation-rules/{rule['id']}", json={}, headers=h), 404, "not_found")
    assert_error(client.delete(f"/v1/validation-rules/{rule['id']}", headers=h), 404, "not_found")
    # create, update, update, delete
    assert defs_version(settings, project) == 4


def test_documentation_example_is_accepted(client: TestClient, project: ProjectKeys) -> None:
    response = client.post("/v1/validation-rules", json=DOCS_EXAMPLE, headers=project.headers)
    assert response.status_code == 200, response.text
    rule = response.json()
    assert rule["rules"] == DOCS_EXAMPLE["rules"]
    assert rule["type"] == "advanced" and rule["context_type"] == DOCS_EXAMPLE["context_type"]
    # Items without an effect get the default one (the SDK requires the field).
    assert rule["applicable_to"]["excluded"][0]["effect"] == "APPLY_TO_EVERY"
    assert rule["applicable_to"]["included"][0]["effect"] == "APPLY_TO_MOST_EXPENSIVE"
    assert rule["applicable_to"]["included"][0]["quantity_limit"] == 1


def test_empty_rule_set_is_allowed(client: TestClient, project: ProjectKeys) -> None:
    response = client.post(
        "/v1/validation-rules",
        json={"name": "Only some products", "rules": {"logic": ""}, "applicable_to": {"included_all": True}},
        headers=project.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["rules"] == {"logic": ""}
    assert response.json()["applicable_to"] == {"excluded": [], "included": [], "included_all": True}


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param({"1": {"name": "order.unknown_thing", "conditions": {"$is": [1]}}, "logic": "1"}, id="name"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$bigger": [1]}}, "logic": "1"}, id="operator"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": 1}}, "logic": "1"}, id="scalar-operand"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": "1 and 2"}, id="missing-key"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": "(1 and"}, id="syntax"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": "1 xor 1"}, id="word"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": "(1"}, id="paren"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": "1 1"}, id="two-operands"),
        pytest.param({"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": 1}, id="logic-type"),
        pytest.param({"a": {"name": "order.amount", "conditions": {"$is": [1]}}}, id="key"),
        pytest.param({"0": {"name": "order.amount", "conditions": {"$is": [1]}}}, id="zero-key"),
        pytest.param({"1": {"name": "order.metadata", "conditions": {"$is": ["x"]}}}, id="property"),
        pytest.param({"1": {"conditions": {"$is": ["x"]}}}, id="no-name"),
        pytest.param({"1": "order.amount"}, id="rule-type"),
        pytest.param(
            {"1": {"name": "order.items.any", "rules": {"1": {"name": "nope"}, "logic": "1"}}, "logic": "1"},
            id="nested",
        ),
        pytest.param(["order.amount"], id="not-an-object"),
    ],
)
def test_malformed_rules_are_400(client: TestClient, project: ProjectKeys, rules: Any) -> None:
    response = client.post("/v1/validation-rules", json={"name": "bad", "rules": rules}, headers=project.headers)
    assert_error(response, 400, "invalid_validation_rules")
    assert client.get("/v1/validation-rules", headers=project.headers).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"type": "fancy"}, id="type"),
        pytest.param({"context_type": "voucher.anything"}, id="context_type"),
        pytest.param({"applicable_to": {"included": [{"object": "product", "id": "p", "effect": "X"}]}}, id="effect"),
        pytest.param({"applicable_to": {"included": [{"object": "thing", "id": "p"}]}}, id="object"),
        pytest.param({"applicable_to": {"included": [{"object": "product"}]}}, id="no-id"),
        pytest.param({"applicable_to": {"included": [{"id": "p", "quantity_limit": 1.5}]}}, id="limit"),
        pytest.param({"applicable_to": {"included": "all"}}, id="included"),
        pytest.param({"name": 5}, id="name"),
        pytest.param({"error": "message"}, id="error"),
    ],
)
def test_invalid_fields_are_400(client: TestClient, project: ProjectKeys, body: dict[str, Any]) -> None:
    assert_error(client.post("/v1/validation-rules", json=body, headers=project.headers), 400, "invalid_payload")


def test_update_validates_rules(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    rule = client.post("/v1/validation-rules", json=SEGMENT_RULE, headers=h).json()
    bad = {"rules": {"1": {"name": "order.amount", "conditions": {"$is": [1]}}, "logic": "1 or 3"}}
    assert_error(client.put(f"/v1/validation-rules/{rule['id']}", json=bad, headers=h), 400, "invalid_validation_rules")
    assert client.get(f"/v1/validation-rules/{rule['id']}", headers=h).json()["rules"] == SEGMENT_RULE["rules"]


def test_list_pages_and_orders(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    ids = [client.post("/v1/validation-rules", json={"name": f"r{i}"}, headers=h).json()["id"] for i in range(3)]
    listing = client.get("/v1/validation-rules?limit=2", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "data" and listing["total"] == 3
    assert [r["id"] for r in listing["data"]] == [ids[2], ids[1]]  # newest first by default
    second = client.get("/v1/validation-rules?limit=2&page=2", headers=h).json()
    assert [r["id"] for r in second["data"]] == [ids[0]]
    by_name = client.get("/v1/validation-rules?order=name", headers=h).json()
    assert [r["name"] for r in by_name["data"]] == ["r0", "r1", "r2"]
    later = client.get("/v1/validation-rules?start_date=2999-01-01", headers=h).json()
    assert later["total"] == 0 and later["data"] == []
    assert_error(client.get("/v1/validation-rules?limit=0", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/validation-rules?limit=101", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/validation-rules?page=x", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/validation-rules?order=id", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/validation-rules?start_date=never", headers=h), 400, "invalid_query_params")


def test_assignments(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    campaign_id = insert_campaign(settings, project, "Summer")
    rule = client.post("/v1/validation-rules", json=SEGMENT_RULE, headers=h).json()
    base = f"/v1/validation-rules/{rule['id']}/assignments"

    # By campaign name: the assignment records the campaign id.
    response = client.post(base, json={"related_object_type": "campaign", "related_object_id": "Summer"}, headers=h)
    assert response.status_code == 200, response.text
    assignment = response.json()
    assert assignment["id"].startswith("asgm_") and assignment["object"] == "validation_rules_assignment"
    assert assignment["rule_id"] == rule["id"] and assignment["related_object_id"] == campaign_id
    assert assignment["related_object_type"] == "campaign" and assignment["created_at"].endswith("Z")
    assert client.get(f"/v1/validation-rules/{rule['id']}", headers=h).json()["assignments_count"] == 1

    again = client.post(base, json={"related_object_type": "campaign", "related_object_id": campaign_id}, headers=h)
    assert_error(again, 409, "duplicate_found")
    forced = client.post(
        f"{base}?force=true", json={"related_object_type": "campaign", "related_object_id": campaign_id}, headers=h
    )
    assert forced.status_code == 200 and forced.json()["id"] != assignment["id"]
    assignment = forced.json()

    # Objects voucherd does not store yet are taken by id.
    earning = client.post(base, json={"related_object_type": "earning_rule", "related_object_id": "ern_1"}, headers=h)
    assert earning.status_code == 200

    listing = client.get(base, headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "data" and listing["total"] == 2
    assert {a["id"] for a in listing["data"]} == {assignment["id"], earning.json()["id"]}

    everywhere = client.get(f"/v1/validation-rules-assignments?related_object_id={campaign_id}", headers=h).json()
    assert everywhere["total"] == 1 and everywhere["data"] == [assignment]
    by_rule = client.get(f"/v1/validation-rules-assignments?rule={rule['id']}&limit=1", headers=h).json()
    assert by_rule["total"] == 2 and len(by_rule["data"]) == 1
    assert client.get("/v1/validation-rules-assignments?rule=val_none", headers=h).json()["total"] == 0

    assert client.delete(f"{base}/{assignment['id']}", headers=h).status_code == 204
    gone = assert_error(client.delete(f"{base}/{assignment['id']}", headers=h), 404, "not_found")
    assert gone["resource_id"] == assignment["id"]
    assert client.get(f"/v1/validation-rules/{rule['id']}", headers=h).json()["assignments_count"] == 1

    # Deleting the rule set deletes its assignments.
    client.delete(f"/v1/validation-rules/{rule['id']}", headers=h)
    assert client.get("/v1/validation-rules-assignments", headers=h).json()["total"] == 0


def test_assignment_errors(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    insert_campaign(settings, project, "Summer")
    rule = client.post("/v1/validation-rules", json=SEGMENT_RULE, headers=h).json()
    base = f"/v1/validation-rules/{rule['id']}/assignments"
    unknown_rule = client.post(
        "/v1/validation-rules/val_missing/assignments",
        json={"related_object_type": "campaign", "related_object_id": "Summer"},
        headers=h,
    )
    assert assert_error(unknown_rule, 404, "not_found")["resource_type"] == "validation_rules"
    for object_type in ("campaign", "voucher", "promotion_tier"):
        missing = client.post(base, json={"related_object_type": object_type, "related_object_id": "nope"}, headers=h)
        body = assert_error(missing, 404, "not_found")
        assert body["resource_type"] == object_type and body["resource_id"] == "nope"
    bad_type = client.post(base, json={"related_object_type": "order", "related_object_id": "x"}, headers=h)
    assert_error(bad_type, 400, "invalid_payload")
    assert_error(client.post(base, json={"related_object_type": "campaign"}, headers=h), 400, "invalid_payload")
    assert_error(client.post(base, headers=h), 400, "invalid_payload")
    bad_force = client.post(
        f"{base}?force=maybe", json={"related_object_type": "campaign", "related_object_id": "Summer"}, headers=h
    )
    assert_error(bad_force, 400, "invalid_query_params")
    assert_error(client.get("/v1/validation-rules/val_missing/assignments", headers=h), 404, "not_found")
    assert_error(client.delete(f"{base}/asgm_missing", headers=h), 404, "not_found")
    assert_error(client.get(f"{base}?order=name", headers=h), 400, "invalid_query_params")


def test_projects_are_isolated(
    client: TestClient, project: ProjectKeys, make_project: Callable[..., ProjectKeys]
) -> None:
    other = make_project("Other")
    rule = client.post("/v1/validation-rules", json=SEGMENT_RULE, headers=project.headers).json()
    assert_error(client.get(f"/v1/validation-rules/{rule['id']}", headers=other.headers), 404, "not_found")
    assert_error(client.delete(f"/v1/validation-rules/{rule['id']}", headers=other.headers), 404, "not_found")
    assigned = client.post(
        f"/v1/validation-rules/{rule['id']}/assignments",
        json={"related_object_type": "earning_rule", "related_object_id": "ern_1"},
        headers=other.headers,
    )
    assert_error(assigned, 404, "not_found")
    assert client.get("/v1/validation-rules", headers=other.headers).json()["total"] == 0


def test_domain_functions_for_campaigns_and_the_hot_path(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    first = client.post("/v1/validation-rules", json=SEGMENT_RULE, headers=h).json()
    second = client.post("/v1/validation-rules", json=DOCS_EXAMPLE, headers=h).json()

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
        conn = await db.connect(settings.database_url)
        try:
            async with conn.transaction():
                # As the campaigns module does while it creates a campaign with validation_rules.
                campaign_id = new_id("camp")
                await conn.execute(
                    "INSERT INTO campaigns (id, project_id, name, campaign_type, type) "
                    "VALUES ($1, $2, 'C', 'DISCOUNT_COUPONS', 'STATIC')",
                    campaign_id,
                    project.project_id,
                )
                made = await validation_rules.assign(conn, project.project_id, first["id"], "campaign", campaign_id)
                await validation_rules.assign(conn, project.project_id, second["id"], "campaign", campaign_id)
                with pytest.raises(NotFound):
                    await validation_rules.assign(conn, project.project_id, "val_missing", "campaign", campaign_id)
            found = await validation_rules.rules_for(conn, project.project_id, [campaign_id, "v_other"])
            listed = await validation_rules.assignments_for(conn, project.project_id, [campaign_id])
            removed = await validation_rules.unassign_all(conn, project.project_id, [campaign_id])
            return made, found, listed, removed
        finally:
            await conn.close()

    made, found, listed, removed = asyncio.run(go())
    campaign_id = made["related_object_id"]
    assert made["rule_id"] == first["id"] and made["related_object_type"] == "campaign"
    assert [r["id"] for r in found[campaign_id]] == [first["id"], second["id"]]
    assert found[campaign_id][1]["rules"] == DOCS_EXAMPLE["rules"]
    assert found[campaign_id][1]["applicable_to"]["included"][0]["effect"] == "APPLY_TO_MOST_EXPENSIVE"
    assert found["v_other"] == []
    assert [a["rule_id"] for a in listed[campaign_id]] == [first["id"], second["id"]]
    assert removed == 2
