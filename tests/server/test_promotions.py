"""``/v1/promotions``: promotion tiers and stacks over HTTP, and the functions the campaigns module calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.definitions import promotions
from voucherd.platform import db, keys
from voucherd.platform.ids import new_id
from voucherd.platform.settings import Settings

TEN_OFF = {"discount": {"type": "AMOUNT", "amount_off": 1000, "effect": "APPLY_TO_ORDER"}}


def run_sql(settings: Settings, query: str, *args: Any) -> Any:
    async def go() -> Any:
        conn = await db.connect(settings.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def make_campaign(settings: Settings, project: ProjectKeys) -> Callable[..., str]:
    """Insert a campaign row as the campaigns module stores it; returns its id."""

    def make(name: str = "Promo", campaign_type: str = "PROMOTION", who: ProjectKeys = project, **columns: Any) -> str:
        campaign_id = new_id("camp")
        fields = {"id": campaign_id, "project_id": who.project_id, "name": name, "campaign_type": campaign_type}
        fields.update({"type": "STATIC", **columns})
        placeholders = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
        run_sql(settings, f"INSERT INTO campaigns ({', '.join(fields)}) VALUES ({placeholders})", *fields.values())
        return campaign_id

    return make


def tier_body(name: str = "10 off", **extra: Any) -> dict[str, Any]:
    return {"name": name, "action": TEN_OFF, **extra}


def test_tier_lifecycle(
    client: TestClient, project: ProjectKeys, settings: Settings, make_campaign: Callable[..., str]
) -> None:
    h = project.headers
    start = datetime(2020, 1, 1, tzinfo=UTC)
    campaign_id = make_campaign("Promo", start_date=start, category_id=None)
    category = client.post("/v1/categories", json={"name": "Cart", "hierarchy": 1}, headers=h).json()
    rule = client.post("/v1/validation-rules", json={"name": "r"}, headers=h).json()

    response = client.post(
        "/v1/promotions/Promo/tiers",
        json=tier_body(banner="Save 10", category="Cart", validation_rules=[rule["id"]], metadata={"k": 1}),
        headers=h,
    )
    assert response.status_code == 200, response.text
    tier = response.json()
    assert tier["id"].startswith("promo_") and tier["object"] == "promotion_tier"
    assert tier["name"] == "10 off" and tier["banner"] == "Save 10" and tier["action"] == TEN_OFF
    assert tier["metadata"] == {"k": 1} and tier["hierarchy"] == 1 and tier["active"] is True
    assert tier["campaign_id"] == campaign_id and tier["promotion_id"] == campaign_id
    assert tier["campaign"] == {
        "id": campaign_id,
        "start_date": "2020-01-01T00:00:00.000Z",
        "expiration_date": None,
        "validity_timeframe": None,
        "validity_day_of_week": None,
        "validity_hours": None,
        "active": True,
        "category_id": None,
        "object": "campaign",
    }
    assert tier["category_id"] == category["id"] and tier["categories"] == [category]
    assignments = tier["validation_rule_assignments"]
    assert assignments["object"] == "list" and assignments["data_ref"] == "data" and assignments["total"] == 1
    assert assignments["data"][0]["rule_id"] == rule["id"]
    assert assignments["data"][0]["related_object_id"] == tier["id"]
    assert assignments["data"][0]["related_object_type"] == "promotion_tier"

    # The next tier takes the next hierarchy.
    second = client.post(f"/v1/promotions/{campaign_id}/tiers", json=tier_body("second"), headers=h).json()
    assert second["hierarchy"] == 2 and second["categories"] == [] and second["category_id"] is None

    assert client.get(f"/v1/promotions/tiers/{tier['id']}", headers=h).json() == tier

    updated = client.put(
        f"/v1/promotions/tiers/{tier['id']}",
        json={
            "banner": None,
            "hierarchy": 5,
            "action": {"discount": {"type": "PERCENT", "percent_off": 15, "amount_limit": 2000}},
            "expiration_date": "2999-01-01",
            "validity_day_of_week": [1, 2],
        },
        headers=h,
    ).json()
    assert updated["banner"] is None and updated["hierarchy"] == 5 and updated["name"] == "10 off"
    assert updated["action"]["discount"]["percent_off"] == 15
    assert updated["expiration_date"] == "2999-01-01T00:00:00.000Z" and updated["validity_day_of_week"] == [1, 2]
    assert updated["updated_at"] is not None and updated["category_id"] == category["id"]

    disabled = client.post(f"/v1/promotions/tiers/{tier['id']}/disable", headers=h).json()
    assert disabled["active"] is False and disabled["id"] == tier["id"]
    assert client.post(f"/v1/promotions/tiers/{tier['id']}/enable", headers=h).json()["active"] is True

    listing = client.get("/v1/promotions/Promo/tiers", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "tiers" and listing["total"] == 2
    assert listing["has_more"] is False
    assert [t["id"] for t in listing["tiers"]] == [second["id"], tier["id"]]  # hierarchy 2, then 5

    assert client.delete(f"/v1/promotions/tiers/{tier['id']}", headers=h).status_code == 204
    body = assert_error(client.get(f"/v1/promotions/tiers/{tier['id']}", headers=h), 404, "not_found")
    assert body["resource_id"] == tier["id"] and body["resource_type"] == "promotion_tier"
    for call in (
        lambda: client.put(f"/v1/promotions/tiers/{tier['id']}", json={"name": "x"}, headers=h),
        lambda: client.delete(f"/v1/promotions/tiers/{tier['id']}", headers=h),
        lambda: client.post(f"/v1/promotions/tiers/{tier['id']}/enable", headers=h),
        lambda: client.post(f"/v1/promotions/tiers/{tier['id']}/disable", headers=h),
    ):
        assert_error(call(), 404, "not_found")
    # The tier's rule assignment went with it.
    assert client.get(f"/v1/validation-rules/{rule['id']}", headers=h).json()["assignments_count"] == 0

    with redis.Redis.from_url(settings.redis_url) as r:
        version = int(r.get(keys.definitions_version(project.project_id)) or 0)
    # category, rule, tier, tier, update, disable, enable, delete
    assert version == 8


def test_campaign_must_exist_and_be_a_promotion(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str]
) -> None:
    h = project.headers
    make_campaign("Coupons", campaign_type="DISCOUNT_COUPONS")
    body = assert_error(client.post("/v1/promotions/Nope/tiers", json=tier_body(), headers=h), 404, "not_found")
    assert body["resource_type"] == "campaign" and body["resource_id"] == "Nope"
    assert_error(client.get("/v1/promotions/Nope/tiers", headers=h), 404, "not_found")
    assert_error(client.post("/v1/promotions/Coupons/tiers", json=tier_body(), headers=h), 400, "invalid_campaign")
    assert_error(client.get("/v1/promotions/Nope/stacks", headers=h), 404, "not_found")
    stack = {"name": "s", "tiers": {"ids": ["promo_1"]}}
    assert_error(client.post("/v1/promotions/Coupons/stacks", json=stack, headers=h), 400, "invalid_campaign")


def test_deleted_campaign_hides_its_tiers(
    client: TestClient, project: ProjectKeys, settings: Settings, make_campaign: Callable[..., str]
) -> None:
    campaign_id = make_campaign("Gone")
    tier = client.post("/v1/promotions/Gone/tiers", json=tier_body(), headers=project.headers).json()
    run_sql(settings, "UPDATE campaigns SET deleted_at = now() WHERE id = $1", campaign_id)
    assert_error(client.get(f"/v1/promotions/tiers/{tier['id']}", headers=project.headers), 404, "not_found")
    assert client.get("/v1/promotions/tiers", headers=project.headers).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"action": TEN_OFF}, id="no-name"),
        pytest.param({"name": " ", "action": TEN_OFF}, id="blank-name"),
        pytest.param({"name": "t"}, id="no-action"),
        pytest.param({"name": "t", "action": {}}, id="no-discount"),
        pytest.param({"name": "t", "action": {"discount": {"type": "SHIPPING"}}}, id="discount-type"),
        pytest.param({"name": "t", "action": {"discount": {"type": "AMOUNT"}}}, id="no-amount"),
        pytest.param({"name": "t", "action": {"discount": {"type": "AMOUNT", "amount_off": -1}}}, id="negative"),
        pytest.param({"name": "t", "action": {"discount": {"type": "PERCENT", "percent_off": 101}}}, id="percent"),
        pytest.param(
            {"name": "t", "action": {"discount": {"type": "PERCENT", "percent_off": 5, "effect": "ADD_NEW_ITEMS"}}},
            id="effect",
        ),
        pytest.param({"name": "t", "action": {"discount": {"type": "UNIT", "unit_off": 1}}}, id="unit-type"),
        pytest.param(
            {"name": "t", "action": {"discount": {"type": "UNIT", "unit_off": 1.5, "unit_type": "prod_1"}}},
            id="unit-off",
        ),
        pytest.param(
            {"name": "t", "action": {"discount": {"type": "UNIT", "effect": "ADD_MANY_ITEMS", "units": []}}},
            id="units",
        ),
        pytest.param(tier_body(start_date="yesterday"), id="date"),
        pytest.param(tier_body(start_date="2030-01-02", expiration_date="2030-01-01"), id="window"),
        pytest.param(tier_body(validity_timeframe={"interval": "P1D", "duration": "PT1H"}), id="timeframe-no-start"),
        pytest.param(tier_body(start_date="2030-01-01", validity_timeframe={"interval": "1 day"}), id="duration"),
        pytest.param(tier_body(validity_day_of_week=[7]), id="day"),
        pytest.param(
            tier_body(validity_hours={"daily": [{"start_time": "25:00", "expiration_time": "26:00"}]}), id="hours"
        ),
        pytest.param(tier_body(hierarchy=-1), id="hierarchy"),
        pytest.param(tier_body(active="yes"), id="active"),
        pytest.param(tier_body(metadata=[1]), id="metadata"),
        pytest.param(tier_body(validation_rules="val_1"), id="rules"),
    ],
)
def test_invalid_tiers_are_400(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str], body: dict[str, Any]
) -> None:
    make_campaign("Promo")
    assert_error(client.post("/v1/promotions/Promo/tiers", json=body, headers=project.headers), 400, "invalid_payload")
    assert client.get("/v1/promotions/Promo/tiers", headers=project.headers).json()["total"] == 0


def test_unknown_references_in_a_tier_are_404(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str]
) -> None:
    make_campaign("Promo")
    h = project.headers
    for body, resource_type in (
        (tier_body(category_id="cat_missing"), "category"),
        (tier_body(category="Missing"), "category"),
        (tier_body(validation_rules=["val_missing"]), "validation_rules"),
    ):
        error = assert_error(client.post("/v1/promotions/Promo/tiers", json=body, headers=h), 404, "not_found")
        assert error["resource_type"] == resource_type
    # Nothing half-created.
    assert client.get("/v1/promotions/Promo/tiers", headers=h).json()["total"] == 0


def test_discount_shapes_are_accepted(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str]
) -> None:
    make_campaign("Promo")
    discounts = [
        {"type": "AMOUNT", "amount_off_formula": "ORDER_AMOUNT / 10", "effect": "APPLY_TO_ITEMS_PROPORTIONALLY"},
        {"type": "FIXED", "fixed_amount": 500, "effect": "APPLY_TO_ITEMS"},
        {"type": "UNIT", "unit_off": 1, "unit_type": "prod_5h1pp1ng", "effect": "ADD_MISSING_ITEMS"},
        {
            "type": "UNIT",
            "effect": "ADD_MANY_ITEMS",
            "units": [{"unit_off": 1, "unit_type": "prod_1", "effect": "ADD_NEW_ITEMS"}],
        },
    ]
    for discount in discounts:
        response = client.post(
            "/v1/promotions/Promo/tiers", json={"name": "t", "action": {"discount": discount}}, headers=project.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["action"]["discount"] == discount


def test_update_checks_the_merged_window(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str]
) -> None:
    make_campaign("Promo")
    h = project.headers
    tier = client.post("/v1/promotions/Promo/tiers", json=tier_body(start_date="2030-01-10"), headers=h).json()
    early = client.put(f"/v1/promotions/tiers/{tier['id']}", json={"expiration_date": "2030-01-01"}, headers=h)
    assert_error(early, 400, "invalid_payload")
    assert_error(
        client.put(f"/v1/promotions/tiers/{tier['id']}", json={"action": "none"}, headers=h), 400, "invalid_payload"
    )
    # A tier cannot lose its action; a null one (the contract's nullable) is "not given" (issue 17).
    kept = client.put(f"/v1/promotions/tiers/{tier['id']}", json={"action": None}, headers=h)
    assert kept.status_code == 200 and kept.json()["action"] == tier["action"]
    assert client.get(f"/v1/promotions/tiers/{tier['id']}", headers=h).json()["expiration_date"] is None


def test_list_all_tiers_with_availability_and_paging(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str]
) -> None:
    h = project.headers
    now = datetime.now(UTC)
    make_campaign("Live")
    make_campaign("Off", active=False)
    make_campaign("Over", expiration_date=now - timedelta(days=1))
    make_campaign("Soon", start_date=now + timedelta(days=1))
    available = client.post("/v1/promotions/Live/tiers", json=tier_body("available"), headers=h).json()
    disabled = client.post("/v1/promotions/Live/tiers", json=tier_body("disabled"), headers=h).json()
    client.post(f"/v1/promotions/tiers/{disabled['id']}/disable", headers=h)
    yesterday = (now - timedelta(days=1)).isoformat()
    client.post("/v1/promotions/Live/tiers", json=tier_body("expired", expiration_date=yesterday), headers=h)
    tomorrow = (now + timedelta(days=1)).isoformat()
    client.post("/v1/promotions/Live/tiers", json=tier_body("future", start_date=tomorrow), headers=h)
    for campaign in ("Off", "Over", "Soon"):
        client.post(f"/v1/promotions/{campaign}/tiers", json=tier_body(campaign), headers=h)

    everything = client.get("/v1/promotions/tiers?limit=100", headers=h).json()
    assert everything["data_ref"] == "tiers" and everything["total"] == 7 and everything["has_more"] is False
    only = client.get("/v1/promotions/tiers?is_available=true", headers=h).json()
    assert only["total"] == 1 and [t["id"] for t in only["tiers"]] == [available["id"]]

    page1 = client.get("/v1/promotions/tiers?limit=3&page=1", headers=h).json()
    page3 = client.get("/v1/promotions/tiers?limit=3&page=3", headers=h).json()
    assert len(page1["tiers"]) == 3 and page1["has_more"] is True
    assert len(page3["tiers"]) == 1 and page3["has_more"] is False
    assert page1["tiers"][0]["id"] == available["id"]  # oldest first by default
    newest = client.get("/v1/promotions/tiers?order=-created_at&limit=1", headers=h).json()
    assert newest["tiers"][0]["name"] == "Soon"
    assert_error(client.get("/v1/promotions/tiers?order=name", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/promotions/tiers?is_available=sometimes", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/promotions/tiers?limit=500", headers=h), 400, "invalid_query_params")


def test_stack_lifecycle(
    client: TestClient, project: ProjectKeys, settings: Settings, make_campaign: Callable[..., str]
) -> None:
    h = project.headers
    campaign_id = make_campaign("Promo")
    make_campaign("Other")
    tiers = [client.post("/v1/promotions/Promo/tiers", json=tier_body(f"t{i}"), headers=h).json() for i in range(3)]
    foreign = client.post("/v1/promotions/Other/tiers", json=tier_body(), headers=h).json()
    category = client.post("/v1/categories", json={"name": "Stacks", "hierarchy": 0}, headers=h).json()

    response = client.post(
        "/v1/promotions/Promo/stacks",
        json={"name": "Combo", "tiers": {"ids": [tiers[1]["id"], tiers[0]["id"]]}, "category_id": category["id"]},
        headers=h,
    )
    assert response.status_code == 200, response.text
    stack = response.json()
    assert stack["id"].startswith("stack_") and stack["object"] == "promotion_stack"
    assert stack["name"] == "Combo" and stack["campaign_id"] == campaign_id
    assert stack["tiers"] == {"ids": [tiers[1]["id"], tiers[0]["id"]], "hierarchy_mode": "MANUAL"}
    assert stack["category_id"] == category["id"] and stack["categories"] == [category]
    assert stack["created_at"].endswith("Z") and stack["updated_at"] is None

    url = f"/v1/promotions/{campaign_id}/stacks/{stack['id']}"
    assert client.get(url, headers=h).json() == stack
    assert client.get(f"/v1/promotions/Promo/stacks/{stack['id']}", headers=h).json() == stack
    # Another campaign's path does not find it.
    assert_error(client.get(f"/v1/promotions/Other/stacks/{stack['id']}", headers=h), 404, "not_found")

    updated = client.put(url, json={"tiers": {"ids": [tiers[2]["id"], tiers[0]["id"]]}}, headers=h).json()
    assert updated["tiers"]["ids"] == [tiers[2]["id"], tiers[0]["id"]] and updated["name"] == "Combo"
    assert updated["updated_at"] is not None
    renamed = client.put(url, json={"name": "Duo", "category_id": None}, headers=h).json()
    assert renamed["name"] == "Duo" and renamed["category_id"] is None and renamed["categories"] == []

    second = client.post(
        "/v1/promotions/Promo/stacks", json={"name": "One", "tiers": {"ids": [tiers[0]["id"]]}}, headers=h
    )
    assert second.status_code == 200
    in_campaign = client.get("/v1/promotions/Promo/stacks", headers=h).json()
    assert in_campaign["data_ref"] == "data" and in_campaign["total"] == 2
    assert [s["id"] for s in in_campaign["data"]] == [stack["id"], second.json()["id"]]
    everywhere = client.get("/v1/promotions/stacks?limit=1&order=name", headers=h).json()
    assert everywhere["total"] == 2 and [s["name"] for s in everywhere["data"]] == ["Duo"]
    assert client.get("/v1/promotions/stacks?created_at[before]=2000-01-01", headers=h).json()["total"] == 0
    assert client.get("/v1/promotions/stacks?created_at[after]=2000-01-01", headers=h).json()["total"] == 2
    assert_error(client.get("/v1/promotions/stacks?order=hierarchy", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/promotions/stacks?created_at[before]=soon", headers=h), 400, "invalid_query_params")

    # Deleting a tier takes it out of its stacks; a stack left empty goes too.
    client.delete(f"/v1/promotions/tiers/{tiers[0]['id']}", headers=h)
    assert client.get(url, headers=h).json()["tiers"]["ids"] == [tiers[2]["id"]]
    assert_error(client.get(f"/v1/promotions/Promo/stacks/{second.json()['id']}", headers=h), 404, "not_found")

    assert client.delete(url, headers=h).status_code == 204
    body = assert_error(client.get(url, headers=h), 404, "not_found")
    assert body["resource_type"] == "promotion_stack" and body["resource_id"] == stack["id"]
    assert_error(client.put(url, json={"name": "x"}, headers=h), 404, "not_found")
    assert_error(client.delete(url, headers=h), 404, "not_found")

    # A foreign tier is refused; an unknown one is 404.
    refused = client.post(
        "/v1/promotions/Promo/stacks", json={"name": "x", "tiers": {"ids": [foreign["id"]]}}, headers=h
    )
    assert_error(refused, 400, "invalid_payload")
    unknown = client.post("/v1/promotions/Promo/stacks", json={"name": "x", "tiers": {"ids": ["promo_no"]}}, headers=h)
    assert assert_error(unknown, 404, "not_found")["resource_type"] == "promotion_tier"


StackBody = Callable[[str], dict[str, Any]]


@pytest.mark.parametrize(
    "make_body",
    [
        pytest.param(lambda t: {"tiers": {"ids": [t]}}, id="no-name"),
        pytest.param(lambda t: {"name": "s"}, id="no-tiers"),
        pytest.param(lambda t: {"name": "s", "tiers": {"ids": []}}, id="empty"),
        pytest.param(lambda t: {"name": "s", "tiers": {"ids": [t, t]}}, id="repeat"),
        pytest.param(lambda t: {"name": "s", "tiers": {"ids": [t], "hierarchy_mode": "AUTO"}}, id="mode"),
        pytest.param(lambda t: {"name": "s", "tiers": [t]}, id="shape"),
        pytest.param(lambda t: {"name": "s", "tiers": {"ids": [t, *(f"promo_{i}" for i in range(30))]}}, id="over-30"),
    ],
)
def test_invalid_stacks_are_400(
    client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str], make_body: StackBody
) -> None:
    make_campaign("Promo")
    h = project.headers
    tier_id = client.post("/v1/promotions/Promo/tiers", json=tier_body(), headers=h).json()["id"]
    response = client.post("/v1/promotions/Promo/stacks", json=make_body(tier_id), headers=h)
    assert_error(response, 400, "invalid_payload")
    assert client.get("/v1/promotions/Promo/stacks", headers=h).json()["total"] == 0


def test_thirty_tiers_make_a_stack(client: TestClient, project: ProjectKeys, make_campaign: Callable[..., str]) -> None:
    make_campaign("Promo")
    h = project.headers
    ids = [client.post("/v1/promotions/Promo/tiers", json=tier_body(), headers=h).json()["id"] for _ in range(30)]
    response = client.post("/v1/promotions/Promo/stacks", json={"name": "All", "tiers": {"ids": ids}}, headers=h)
    assert response.status_code == 200 and response.json()["tiers"]["ids"] == ids


def test_projects_are_isolated(
    client: TestClient,
    project: ProjectKeys,
    make_project: Callable[..., ProjectKeys],
    make_campaign: Callable[..., str],
) -> None:
    other = make_project("Other")
    campaign_id = make_campaign("Promo")
    tier = client.post("/v1/promotions/Promo/tiers", json=tier_body(), headers=project.headers).json()
    stack = client.post(
        "/v1/promotions/Promo/stacks", json={"name": "s", "tiers": {"ids": [tier["id"]]}}, headers=project.headers
    ).json()
    oh = other.headers
    assert_error(client.get(f"/v1/promotions/tiers/{tier['id']}", headers=oh), 404, "not_found")
    assert_error(client.post(f"/v1/promotions/tiers/{tier['id']}/disable", headers=oh), 404, "not_found")
    assert_error(client.get(f"/v1/promotions/{campaign_id}/tiers", headers=oh), 404, "not_found")
    assert_error(client.get(f"/v1/promotions/{campaign_id}/stacks/{stack['id']}", headers=oh), 404, "not_found")
    assert client.get("/v1/promotions/tiers", headers=oh).json()["total"] == 0
    assert client.get("/v1/promotions/stacks", headers=oh).json()["total"] == 0
    # Project B's own campaign cannot take A's tier into a stack.
    make_campaign("Theirs", who=other)
    stolen = client.post("/v1/promotions/Theirs/stacks", json={"name": "s", "tiers": {"ids": [tier["id"]]}}, headers=oh)
    assert_error(stolen, 404, "not_found")


def test_functions_the_campaigns_module_calls(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    rule = client.post("/v1/validation-rules", json={"name": "r"}, headers=project.headers).json()
    start = datetime(2024, 5, 1, tzinfo=UTC)

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        conn = await db.connect(settings.database_url)
        try:
            async with conn.transaction():
                campaign = {
                    "id": new_id("camp"),
                    "name": "Spring",
                    "start_date": start,
                    "expiration_date": None,
                    "active": True,
                    "category_id": None,
                }
                await conn.execute(
                    "INSERT INTO campaigns (id, project_id, name, campaign_type, type, start_date) "
                    "VALUES ($1, $2, $3, 'PROMOTION', 'STATIC', $4)",
                    campaign["id"],
                    project.project_id,
                    campaign["name"],
                    start,
                )
                created = await promotions.create_tiers(
                    conn,
                    project.project_id,
                    campaign,
                    [tier_body("first", validation_rules=[rule["id"]]), tier_body("second", hierarchy=7)],
                )
                listed = await promotions.list_tiers(conn, project.project_id, campaign["id"])
            with pytest.raises(Exception) as raised:
                async with conn.transaction():
                    await promotions.create_tiers(conn, project.project_id, campaign, [{"name": "no action"}])
            assert getattr(raised.value, "key", None) == "invalid_payload"
            after = await promotions.list_tiers(conn, project.project_id, campaign["id"])
            return created, listed, after
        finally:
            await conn.close()

    created, listed, after = asyncio.run(go())
    assert [t["name"] for t in created] == ["first", "second"]
    assert [t["hierarchy"] for t in created] == [1, 7]
    assert created[0]["campaign"]["start_date"] == "2024-05-01T00:00:00.000Z"
    assert created[0]["validation_rule_assignments"]["data"][0]["rule_id"] == rule["id"]
    assert listed == created and after == created
    # The HTTP view of the same tier matches what the campaign view embeds.
    assert client.get(f"/v1/promotions/tiers/{created[0]['id']}", headers=project.headers).json() == created[0]
