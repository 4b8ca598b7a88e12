"""Projects are sealed from each other: a key of project A never reads, changes, deletes, validates,
redeems, lists or publishes anything of project B, and keys stay in their own family.

Project B is filled with one of everything; every call A makes on B's ids answers 404 and carries
nothing of B (B's names and metadata hold a marker that must never appear in A's answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform.settings import Settings

MARK = "bsecretmark"  # in B's names and metadata; never in any answer to A
DISCOUNT = {"type": "AMOUNT", "amount_off": 500}


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def seed(client: TestClient, b: ProjectKeys, management: dict[str, str]) -> dict[str, str]:
    """One of every resource in project B; returns the ids that A will aim at."""
    h = b.headers
    post: Callable[[str, Any], dict[str, Any]] = lambda path, body: _ok(client.post(path, json=body, headers=h))  # noqa: E731
    meta = {"note": MARK}
    ids: dict[str, str] = {}
    ids["category"] = post("/v1/categories", {"name": f"{MARK}-cat", "hierarchy": 1})["id"]
    campaign = post(
        "/v1/campaigns",
        {"name": f"{MARK}-camp", "voucher": {"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT}, "metadata": meta},
    )
    ids["campaign"], ids["campaign_name"] = campaign["id"], campaign["name"]
    ids["campaign_code"] = post(f"/v1/campaigns/{campaign['id']}/vouchers/BCAMPCODE", None)["code"]
    ids["async_action"] = _ok(client.post(f"/v1/campaigns/{campaign['id']}/vouchers?vouchers_count=2", headers=h))[
        "async_action_id"
    ]
    ids["code"] = post("/v1/vouchers/BCODE", {"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT, "metadata": meta})[
        "code"
    ]
    ids["gift"] = post("/v1/vouchers/BGIFT", {"type": "GIFT_VOUCHER", "gift": {"amount": 10_000}, "metadata": meta})[
        "code"
    ]
    promo = post(
        "/v1/campaigns",
        {
            "name": f"{MARK}-promo",
            "campaign_type": "PROMOTION",
            "promotion": {"tiers": [{"name": f"{MARK}-tier", "action": {"discount": DISCOUNT}}]},
        },
    )
    ids["promo"] = promo["id"]
    ids["tier"] = promo["promotion"]["tiers"][0]["id"]
    ids["stack"] = post(
        f"/v1/promotions/{promo['id']}/stacks", {"name": f"{MARK}-stack", "tiers": {"ids": [ids["tier"]]}}
    )["id"]
    ids["rule"] = post("/v1/validation-rules", {"name": f"{MARK}-rule"})["id"]
    ids["assignment"] = post(
        f"/v1/validation-rules/{ids['rule']}/assignments",
        {"related_object_type": "campaign", "related_object_id": campaign["id"]},
    )["id"]
    customer = post("/v1/customers", {"source_id": "bcust", "name": f"{MARK}-cust", "metadata": meta})
    ids["customer"], ids["customer_source"] = customer["id"], customer["source_id"]
    ids["product"] = post("/v1/products", {"source_id": "bprod", "name": f"{MARK}-prod", "price": 1000})["id"]
    ids["sku"] = post(f"/v1/products/{ids['product']}/skus", {"source_id": "bsku", "sku": f"{MARK}-sku", "price": 900})[
        "id"
    ]
    ids["collection"] = post(
        "/v1/product-collections",
        {"type": "STATIC", "name": f"{MARK}-coll", "products": [{"id": ids["product"], "object": "product"}]},
    )["id"]
    ids["order"] = post("/v1/orders", {"source_id": "border", "amount": 1000, "metadata": meta})["id"]
    ids["segment"] = post("/v1/segments", {"name": f"{MARK}-seg", "type": "static", "customers": [ids["customer"]]})[
        "id"
    ]
    post("/v1/events", {"event": f"{MARK}-event", "customer": {"source_id": "bcust"}, "metadata": meta})
    post("/v1/publications", {"voucher": ids["campaign_code"], "customer": {"source_id": "bcust"}, "metadata": meta})
    redeemed = post(
        "/v1/redemptions",
        {
            "redeemables": [{"object": "voucher", "id": "BCODE"}, {"object": "promotion_tier", "id": ids["tier"]}],
            "order": {"amount": 2000},
            "metadata": meta,
        },
    )
    ids["redemption"] = redeemed["redemptions"][0]["id"]
    ids["parent_redemption"] = redeemed["parent_redemption"]["id"]
    mp = f"/management/v1/projects/{b.project_id}"
    ids["schema"] = _ok(
        client.post(
            f"{mp}/metadata-schemas",
            json={"related_object": "order", "allow_defined_only": False, "properties": {MARK: {"type": "string"}}},
            headers=management,
        )
    )["id"]
    ids["stacking_rules"] = _ok(
        client.post(f"{mp}/stacking-rules", json={"redeemables_application_mode": "ALL"}, headers=management)
    )["id"]
    ids["webhook"] = _ok(
        client.post(
            f"{mp}/webhooks",
            json={"target_url": f"https://{MARK}.example/hook", "events": ["customer.created"]},
            headers=management,
        )
    )["id"]
    return ids


# (resource, method, path, body): A's key aimed at B's ids. Paths under /management name A's project.
CALLS: list[tuple[str, str, str, Any]] = [
    ("categories", "GET", "/v1/categories/{category}", None),
    ("categories", "PUT", "/v1/categories/{category}", {"name": "mine"}),
    ("categories", "DELETE", "/v1/categories/{category}", None),
    ("campaigns", "GET", "/v1/campaigns/{campaign}", None),
    ("campaigns", "GET", "/v1/campaigns/{campaign_name}", None),
    ("campaigns", "PUT", "/v1/campaigns/{campaign}", {"description": "mine"}),
    ("campaigns", "DELETE", "/v1/campaigns/{campaign}", None),
    ("campaigns", "POST", "/v1/campaigns/{campaign}/enable", None),
    ("campaigns", "POST", "/v1/campaigns/{campaign}/disable", None),
    ("campaigns", "GET", "/v1/campaigns/{campaign}/summary", None),
    ("campaigns", "POST", "/v1/campaigns/{campaign}/vouchers", None),
    ("campaigns", "POST", "/v1/campaigns/{campaign}/vouchers/MINE", None),
    ("campaigns", "POST", "/v1/campaigns/{campaign}/import", [{"code": "MINE2"}]),
    ("vouchers", "GET", "/v1/vouchers/{code}", None),
    ("vouchers", "PUT", "/v1/vouchers/{code}", {"metadata": {"x": 1}}),
    ("vouchers", "DELETE", "/v1/vouchers/{code}", None),
    ("vouchers", "POST", "/v1/vouchers/{code}/enable", None),
    ("vouchers", "POST", "/v1/vouchers/{code}/disable", None),
    ("vouchers", "POST", "/v1/vouchers/{gift}/balance", {"amount": 100}),
    ("vouchers", "GET", "/v1/vouchers/{gift}/transactions", None),
    ("vouchers", "GET", "/v1/vouchers/{code}/redemption", None),
    ("promotion_tiers", "GET", "/v1/promotions/tiers/{tier}", None),
    ("promotion_tiers", "PUT", "/v1/promotions/tiers/{tier}", {"name": "mine"}),
    ("promotion_tiers", "DELETE", "/v1/promotions/tiers/{tier}", None),
    ("promotion_tiers", "POST", "/v1/promotions/tiers/{tier}/enable", None),
    ("promotion_tiers", "POST", "/v1/promotions/tiers/{tier}/disable", None),
    ("promotion_tiers", "GET", "/v1/promotions/{promo}/tiers", None),
    ("promotion_tiers", "POST", "/v1/promotions/{promo}/tiers", {"name": "mine", "action": {"discount": DISCOUNT}}),
    ("promotion_stacks", "GET", "/v1/promotions/{promo}/stacks", None),
    ("promotion_stacks", "POST", "/v1/promotions/{promo}/stacks", {"name": "mine", "tiers": {"ids": ["{tier}"]}}),
    ("promotion_stacks", "GET", "/v1/promotions/{promo}/stacks/{stack}", None),
    ("promotion_stacks", "PUT", "/v1/promotions/{promo}/stacks/{stack}", {"name": "mine"}),
    ("promotion_stacks", "DELETE", "/v1/promotions/{promo}/stacks/{stack}", None),
    ("validation_rules", "GET", "/v1/validation-rules/{rule}", None),
    ("validation_rules", "PUT", "/v1/validation-rules/{rule}", {"name": "mine"}),
    ("validation_rules", "DELETE", "/v1/validation-rules/{rule}", None),
    ("validation_rules", "GET", "/v1/validation-rules/{rule}/assignments", None),
    (
        "validation_rules",
        "POST",
        "/v1/validation-rules/{rule}/assignments",
        {"related_object_type": "campaign", "related_object_id": "{campaign}"},
    ),
    ("validation_rules", "DELETE", "/v1/validation-rules/{rule}/assignments/{assignment}", None),
    ("customers", "GET", "/v1/customers/{customer}", None),
    ("customers", "GET", "/v1/customers/{customer_source}", None),
    ("customers", "PUT", "/v1/customers/{customer}", {"name": "mine"}),
    ("customers", "DELETE", "/v1/customers/{customer}", None),
    ("customers", "POST", "/v1/customers/{customer}/permanent-deletion", None),
    ("customers", "GET", "/v1/customers/{customer}/activity", None),
    ("customers", "GET", "/v1/customers/{customer}/segments", None),
    ("customers", "GET", "/v1/customers/{customer}/redeemables", None),
    ("products", "GET", "/v1/products/{product}", None),
    ("products", "PUT", "/v1/products/{product}", {"price": 1}),
    ("products", "DELETE", "/v1/products/{product}", None),
    ("skus", "GET", "/v1/products/{product}/skus", None),
    ("skus", "POST", "/v1/products/{product}/skus", {"source_id": "mine", "price": 1}),
    ("skus", "GET", "/v1/products/{product}/skus/{sku}", None),
    ("skus", "PUT", "/v1/products/{product}/skus/{sku}", {"price": 1}),
    ("skus", "DELETE", "/v1/products/{product}/skus/{sku}", None),
    ("skus", "GET", "/v1/skus/{sku}", None),
    ("collections", "GET", "/v1/product-collections/{collection}", None),
    ("collections", "DELETE", "/v1/product-collections/{collection}", None),
    ("collections", "GET", "/v1/product-collections/{collection}/products", None),
    ("orders", "GET", "/v1/orders/{order}", None),
    ("orders", "PUT", "/v1/orders/{order}", {"status": "CANCELED"}),
    ("segments", "GET", "/v1/segments/{segment}", None),
    ("segments", "DELETE", "/v1/segments/{segment}", None),
    ("redemptions", "GET", "/v1/redemptions/{redemption}", None),
    ("redemptions", "GET", "/v1/redemptions/{parent_redemption}", None),
    ("redemptions", "POST", "/v1/redemptions/{redemption}/rollback", None),
    ("redemptions", "POST", "/v1/redemptions/{parent_redemption}/rollbacks", None),
    ("async_actions", "GET", "/v1/async-actions/{async_action}", None),
    ("metadata_schemas", "GET", "/management/v1/projects/{a}/metadata-schemas/{schema}", None),
    ("metadata_schemas", "PUT", "/management/v1/projects/{a}/metadata-schemas/{schema}", {"allow_defined_only": True}),
    ("metadata_schemas", "DELETE", "/management/v1/projects/{a}/metadata-schemas/{schema}", None),
    ("stacking_rules", "GET", "/management/v1/projects/{a}/stacking-rules/{stacking_rules}", None),
    ("stacking_rules", "PUT", "/management/v1/projects/{a}/stacking-rules/{stacking_rules}", {"redeemables_limit": 5}),
    ("stacking_rules", "DELETE", "/management/v1/projects/{a}/stacking-rules/{stacking_rules}", None),
    ("webhooks", "GET", "/management/v1/projects/{a}/webhooks/{webhook}", None),
    ("webhooks", "PUT", "/management/v1/projects/{a}/webhooks/{webhook}", {"active": False}),
    ("webhooks", "DELETE", "/management/v1/projects/{a}/webhooks/{webhook}", None),
    ("webhooks", "GET", "/management/v1/projects/{a}/webhooks/{webhook}/deliveries", None),
]

# What B can still read afterwards, unchanged: proof that none of A's writes landed.
B_READS = {
    "categories": ("/v1/categories/{category}", "name", f"{MARK}-cat"),
    "campaigns": ("/v1/campaigns/{campaign}", "active", True),
    "vouchers": ("/v1/vouchers/{code}", "active", True),
    "promotion_tiers": ("/v1/promotions/tiers/{tier}", "name", f"{MARK}-tier"),
    "promotion_stacks": ("/v1/promotions/{promo}/stacks/{stack}", "name", f"{MARK}-stack"),
    "validation_rules": ("/v1/validation-rules/{rule}", "name", f"{MARK}-rule"),
    "customers": ("/v1/customers/{customer}", "name", f"{MARK}-cust"),
    "products": ("/v1/products/{product}", "price", 1000),
    "skus": ("/v1/skus/{sku}", "price", 900),
    "collections": ("/v1/product-collections/{collection}", "name", f"{MARK}-coll"),
    "orders": ("/v1/orders/{order}", "status", "CREATED"),
    "segments": ("/v1/segments/{segment}", "name", f"{MARK}-seg"),
    "redemptions": ("/v1/redemptions/{redemption}", "result", "SUCCESS"),
    "async_actions": ("/v1/async-actions/{async_action}", "object", "async_action"),
}


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ids) for v in template]
    return template


@pytest.fixture
def a(make_project: Callable[..., ProjectKeys]) -> ProjectKeys:
    return make_project("Project A")


@pytest.fixture
def b(make_project: Callable[..., ProjectKeys]) -> ProjectKeys:
    return make_project(f"Project {MARK}")


@pytest.fixture
def ids(
    client: TestClient, a: ProjectKeys, b: ProjectKeys, management_headers: dict[str, str], settings: Settings
) -> dict[str, str]:
    seeded = seed(client, b, management_headers)
    drain_worker(settings)  # redemptions, publications and events reach PostgreSQL
    return {**seeded, "a": a.project_id}


def _unechoed(text: str, path: str) -> str:
    """The answer without what A itself sent in the path (a 404 may name the id it was asked for)."""
    for part in sorted(path.split("/"), key=len, reverse=True):
        if len(part) > 3:
            text = text.replace(part, "")
    return text


def _as_a(client: TestClient, a: ProjectKeys, management: dict[str, str], method: str, path: str, body: Any) -> Any:
    headers = management if path.startswith("/management/") else a.headers
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("resource", sorted({call[0] for call in CALLS}))
def test_a_cannot_touch_b(
    client: TestClient,
    a: ProjectKeys,
    b: ProjectKeys,
    management_headers: dict[str, str],
    ids: dict[str, str],
    resource: str,
) -> None:
    for _resource, method, template, body in (c for c in CALLS if c[0] == resource):
        path = _fill(template, ids)
        response = _as_a(client, a, management_headers, method, path, _fill(body, ids))
        assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
        assert response.json()["key"] == "not_found", f"{method} {path}: {response.text}"
        assert MARK not in _unechoed(response.text, path), f"{method} {path} leaked: {response.text}"
    if resource in B_READS:
        template, field, expected = B_READS[resource]
        still = client.get(_fill(template, ids), headers=b.headers)
        assert still.status_code == 200, still.text
        assert still.json()[field] == expected


LISTS = [
    "/v1/categories",
    "/v1/campaigns",
    "/v1/vouchers",
    "/v1/vouchers?campaign_id={campaign}",
    "/v1/promotions/tiers",
    "/v1/promotions/stacks",
    "/v1/validation-rules",
    "/v1/validation-rules-assignments",
    "/v1/customers",
    "/v1/products",
    "/v1/product-collections",
    "/v1/orders",
    "/v1/publications",
    "/v1/redemptions",
    "/v1/async-actions",
    "/v1/metadata-schemas",
    "/v1/metadata-schemas/order",
    "/management/v1/projects/{a}/metadata-schemas",
    "/management/v1/projects/{a}/stacking-rules",
    "/management/v1/projects/{a}/webhooks",
]


def test_lists_show_nothing_of_b(
    client: TestClient, a: ProjectKeys, management_headers: dict[str, str], ids: dict[str, str]
) -> None:
    b_ids = {v for k, v in ids.items() if k != "a"}
    for template in LISTS:
        path = _fill(template, ids)
        response = _as_a(client, a, management_headers, "GET", path, None)
        assert response.status_code in (200, 404), f"{path}: {response.text}"
        assert MARK not in response.text, f"{path} leaked: {response.text}"
        leaked = sorted(i for i in b_ids if i in response.text)
        assert not leaked, f"{path} leaked ids {leaked}: {response.text}"


def test_a_cannot_validate_redeem_qualify_or_publish_b(
    client: TestClient, a: ProjectKeys, b: ProjectKeys, ids: dict[str, str]
) -> None:
    h = a.headers
    order = {"amount": 2000}
    for redeemable in (
        {"object": "voucher", "id": ids["campaign_code"]},
        {"object": "voucher", "id": ids["gift"], "gift": {"credits": 100}},
        {"object": "promotion_tier", "id": ids["tier"]},
        {"object": "promotion_stack", "id": ids["stack"]},
    ):
        body = {"redeemables": [redeemable], "order": order}
        validated = client.post("/v1/validations", json=body, headers=h)
        assert validated.status_code == 200, validated.text
        answer = validated.json()
        assert answer["valid"] is False
        assert answer["inapplicable_redeemables"][0]["result"]["error"]["code"] == 404
        assert MARK not in validated.text
        redeemed = client.post("/v1/redemptions", json=body, headers=h)
        assert redeemed.status_code in (400, 404), redeemed.text
        assert redeemed.json()["key"] == "not_found" and MARK not in redeemed.text
    legacy = {"order": order}
    validated = client.post(f"/v1/vouchers/{ids['campaign_code']}/validate", json=legacy, headers=h)
    assert validated.status_code == 200 and validated.json()["valid"] is False, validated.text
    assert validated.json()["error"]["code"] == 404 and MARK not in validated.text
    redeemed = client.post(f"/v1/vouchers/{ids['campaign_code']}/redemption", json=legacy, headers=h)
    assert redeemed.status_code in (400, 404) and redeemed.json()["key"] == "not_found", redeemed.text

    # A session lock of B's survives A's attempt to release it.
    _ok(
        client.post("/v1/vouchers/BLOCK", json={"discount": DISCOUNT, "redemption": {"quantity": 1}}, headers=b.headers)
    )
    lock = {"redeemables": [{"object": "voucher", "id": "BLOCK"}], "order": order, "session": {"type": "LOCK"}}
    session_key = _ok(client.post("/v1/validations", json=lock, headers=b.headers))["session"]["key"]
    assert client.delete(f"/v1/vouchers/BLOCK/sessions/{session_key}", headers=h).status_code in (204, 404)
    unlocked = {"redeemables": [{"object": "voucher", "id": "BLOCK"}], "order": order}
    still_locked = _ok(client.post("/v1/validations", json=unlocked, headers=b.headers))
    assert still_locked["valid"] is False
    assert still_locked["inapplicable_redeemables"][0]["result"]["error"]["key"] == "quantity_exceeded"

    qualified = client.post("/v1/qualifications", json={"scenario": "ALL", "order": order}, headers=h)
    assert qualified.status_code == 200, qualified.text
    assert qualified.json()["redeemables"]["data"] == [] and MARK not in qualified.text

    for publication in (
        {"voucher": ids["campaign_code"], "customer": {"source_id": "acust"}},
        {"campaign": {"id": ids["campaign"]}, "customer": {"source_id": "acust"}},
        {"campaign": {"name": ids["campaign_name"]}, "customer": {"source_id": "acust"}},
    ):
        published = client.post("/v1/publications", json=publication, headers=h)
        assert published.status_code == 404, published.text
        assert MARK not in published.text.replace(ids["campaign_name"], "")  # A named it itself
    by_get = client.get(f"/v1/publications/create?voucher={ids['campaign_code']}&customer=acust", headers=h)
    assert by_get.status_code == 404 and MARK not in by_get.text

    # B's codes are untouched: only B's own redemption counted, no publication from A.
    code = client.get(f"/v1/vouchers/{ids['campaign_code']}", headers=b.headers).json()
    assert code["redemption"]["redeemed_quantity"] == 0
    assert code["publish"]["count"] == 1
    gift = client.get(f"/v1/vouchers/{ids['gift']}", headers=b.headers).json()
    assert gift["gift"]["balance"] == 10_000


def test_client_keys_and_app_keys_stay_in_their_family(
    client: TestClient, a: ProjectKeys, management_headers: dict[str, str]
) -> None:
    client_as_app = {"X-App-Id": a.client_id, "X-App-Token": a.client_token}
    client_headers = {"X-Client-Application-Id": a.client_id, "X-Client-Token": a.client_token, "Origin": "https://x"}
    for path in ("/v1/vouchers", "/v1/customers", "/v1/campaigns", "/v1/redemptions"):
        assert_error(client.get(path, headers=client_as_app), 401, "unauthorized")
        assert_error(client.get(path, headers=client_headers), 401, "unauthorized")
    assert_error(client.post("/v1/vouchers/X", json={}, headers=client_headers), 401, "unauthorized")
    # Server paths under the client prefix do not exist.
    for path in ("/client/v1/vouchers", "/client/v1/customers", "/client/v1/campaigns"):
        assert client.get(path, headers=client_headers).status_code in (401, 403, 404)
    app_as_management = {"X-Management-Id": a.app_id, "X-Management-Token": a.app_token}
    for headers in (a.headers, app_as_management):
        assert_error(client.get("/management/v1/projects", headers=headers), 401, "unauthorized")
        assert_error(
            client.get(f"/management/v1/projects/{a.project_id}/stacking-rules", headers=headers), 401, "unauthorized"
        )
    # A management key does not open the application API.
    management_as_app = {
        "X-App-Id": management_headers["X-Management-Id"],
        "X-App-Token": management_headers["X-Management-Token"],
    }
    assert_error(client.get("/v1/vouchers", headers=management_as_app), 401, "unauthorized")
