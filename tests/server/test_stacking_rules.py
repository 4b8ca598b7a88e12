"""``/management/v1/projects/{projectId}/stacking-rules`` over HTTP, and the effective rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.definitions import stacking_rules
from voucherd.platform import db, keys
from voucherd.platform.settings import Settings

RECOMMENDED = {
    "redeemables_limit": 30,
    "applicable_redeemables_limit": 5,
    "applicable_redeemables_per_category_limit": 1,
    "applicable_redeemables_category_limits": {},
    "applicable_exclusive_redeemables_limit": 1,
    "applicable_exclusive_redeemables_per_category_limit": 1,
    "exclusive_categories": [],
    "joint_categories": [],
    "redeemables_application_mode": "PARTIAL",
    "redeemables_sorting_rule": "REQUESTED_ORDER",
    "redeemables_products_application_mode": "STACK",
    "redeemables_no_effect_rule": "REDEEM_ANYWAY",
    "no_effect_skip_categories": [],
    "no_effect_redeem_anyway_categories": [],
    "redeemables_rollback_order_mode": "WITH_ORDER",
    "discount_calculation_mode": "DISCOUNTED_AMOUNT",
    "initial_amount_mode_categories": [],
    "discounted_amount_mode_categories": [],
}


def effective(settings: Settings, project_id: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        conn = await db.connect(settings.database_url)
        try:
            return await stacking_rules.effective(conn, project_id)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_lifecycle(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str], settings: Settings
) -> None:
    h = management_headers
    base = f"/management/v1/projects/{project.project_id}/stacking-rules"
    empty = client.get(base, headers=h).json()
    assert empty == {"object": "list", "data_ref": "data", "data": [], "total": 0}
    assert effective(settings, project.project_id) == {
        **RECOMMENDED,
        "grouped_redeemables_sorting_rule": "JOINT_ALWAYS_LAST",
    }

    response = client.post(base, json={"applicable_redeemables_limit": 3, "exclusive_categories": ["cat_a"]}, headers=h)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["id"].startswith("stk_") and created["created_at"].endswith("Z") and created["updated_at"] is None
    assert {k: created[k] for k in RECOMMENDED} == {
        **RECOMMENDED,
        "applicable_redeemables_limit": 3,
        "exclusive_categories": ["cat_a"],
    }
    assert_error(client.post(base, json={}, headers=h), 409, "stacking_rules_exist")

    assert client.get(f"{base}/{created['id']}", headers=h).json() == created
    listing = client.get(base, headers=h).json()
    assert listing["total"] == 1 and listing["data"] == [created]

    updated = client.put(
        f"{base}/{created['id']}",
        json={"redeemables_application_mode": "ALL", "applicable_redeemables_category_limits": {"cat_b": 10}},
        headers=h,
    ).json()
    assert updated["redeemables_application_mode"] == "ALL" and updated["applicable_redeemables_limit"] == 3
    assert updated["applicable_redeemables_category_limits"] == {"cat_b": 10} and updated["updated_at"] is not None

    # An explicit null puts a field back to its default.
    reset = client.put(base, json={"applicable_redeemables_limit": None}, headers=h).json()
    assert reset["id"] == created["id"] and reset["applicable_redeemables_limit"] == 5
    now = effective(settings, project.project_id)
    assert now["redeemables_application_mode"] == "ALL" and now["applicable_redeemables_limit"] == 5
    assert now["exclusive_categories"] == ["cat_a"] and now["redeemables_limit"] == 30

    assert client.delete(f"{base}/{created['id']}", headers=h).status_code == 204
    body = assert_error(client.get(f"{base}/{created['id']}", headers=h), 404, "not_found")
    assert body["resource_id"] == created["id"] and body["resource_type"] == "stacking_rules"
    assert_error(client.put(f"{base}/{created['id']}", json={}, headers=h), 404, "not_found")
    assert_error(client.delete(base, headers=h), 404, "not_found")
    assert effective(settings, project.project_id)["redeemables_application_mode"] == "PARTIAL"

    # The collection path takes PUT and DELETE too; a new object can be created after a delete.
    again = client.post(base, headers=h)
    assert again.status_code == 200 and again.json()["id"] != created["id"]
    assert client.delete(base, headers=h).status_code == 204

    with redis.Redis.from_url(settings.redis_url) as r:
        version = r.get(keys.definitions_version(project.project_id))
    assert version == b"6"  # create, update, update, delete, create, delete


@pytest.mark.parametrize(
    "body",
    [
        {"redeemables_limit": 0},
        {"redeemables_limit": 31},
        {"applicable_redeemables_limit": 31},
        {"applicable_redeemables_per_category_limit": 0},
        {"applicable_exclusive_redeemables_limit": 6},
        {"applicable_exclusive_redeemables_per_category_limit": 6},
        {"redeemables_limit": 2.5},
        {"redeemables_limit": "3"},
        {"redeemables_limit": True},
        {"applicable_redeemables_category_limits": {"cat_a": 11}},
        {"applicable_redeemables_category_limits": {"cat_a": 0}},
        {"applicable_redeemables_category_limits": [1]},
        {"redeemables_application_mode": "SOME"},
        {"redeemables_sorting_rule": "RANDOM"},
        {"redeemables_products_application_mode": "TWICE"},
        {"redeemables_no_effect_rule": "SKIP_ALL"},
        {"redeemables_rollback_order_mode": "LATER"},
        {"discount_calculation_mode": "FINAL_AMOUNT"},
        {"exclusive_categories": "cat_a"},
        {"joint_categories": [1]},
        {"exclusive_categories": ["cat_a"], "joint_categories": ["cat_a"]},
        {"no_effect_skip_categories": ["cat_a"], "no_effect_redeem_anyway_categories": ["cat_a"]},
        {"initial_amount_mode_categories": ["cat_a"], "discounted_amount_mode_categories": ["cat_a"]},
    ],
)
def test_out_of_range_values_are_400(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str], body: dict[str, Any]
) -> None:
    base = f"/management/v1/projects/{project.project_id}/stacking-rules"
    assert_error(client.post(base, json=body, headers=management_headers), 400, "invalid_payload")
    assert client.get(base, headers=management_headers).json()["total"] == 0


def test_update_keeps_lists_disjoint(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    base = f"/management/v1/projects/{project.project_id}/stacking-rules"
    client.post(base, json={"joint_categories": ["cat_a"]}, headers=management_headers)
    clash = client.put(base, json={"exclusive_categories": ["cat_a"]}, headers=management_headers)
    assert_error(clash, 400, "invalid_payload")
    assert_error(client.put(base, json={"redeemables_limit": 99}, headers=management_headers), 400, "invalid_payload")


def test_unknown_project_and_keys(client: TestClient, project: ProjectKeys, management_headers: dict[str, str]) -> None:
    missing = client.get("/management/v1/projects/proj_missing/stacking-rules", headers=management_headers)
    body = assert_error(missing, 404, "not_found")
    assert body["resource_type"] == "project" and body["resource_id"] == "proj_missing"
    assert_error(
        client.post("/management/v1/projects/proj_missing/stacking-rules", json={}, headers=management_headers),
        404,
        "not_found",
    )
    # Application keys do not open the management API.
    base = f"/management/v1/projects/{project.project_id}/stacking-rules"
    assert_error(client.get(base, headers=project.headers), 401, "unauthorized")
