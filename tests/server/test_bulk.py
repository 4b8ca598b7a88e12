"""Bulk and metadata updates (``/bulk/async``, ``/metadata/async``): answered at once with 202, run by the worker
to DONE, good rows applied, bad rows reported with their reason and never stopping the rest."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.catalog import segments
from voucherd.platform.settings import Settings

STRICT_PRODUCT = {
    "related_object": "product",
    "allow_defined_only": True,
    "properties": {"color": {"type": "string", "optional": True}, "size": {"type": "number", "optional": True}},
}


def run(client: TestClient, project: ProjectKeys, settings: Settings, response: Any) -> dict[str, Any]:
    """The result of the action a bulk endpoint answered with, after the worker ran it."""
    assert response.status_code == 202, response.text
    action_id = response.json()["async_action_id"]
    assert action_id.startswith("aa_")
    drain_worker(settings)
    action: dict[str, Any] = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    assert action["status"] == "DONE", action
    assert action["operation_status"] == "SUCCESS" and action["progress"] == 100
    result: dict[str, Any] = action["result"]
    return result


def reasons(result: dict[str, Any], ref: str) -> dict[Any, str]:
    return {e[ref]: e["key"] for e in result["errors"]}


def test_customers_bulk_upserts_by_source_id_and_reports_bad_rows(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    client.post("/v1/customers", headers=h, json={"source_id": "known", "name": "Old", "metadata": {"a": 1}})
    body = [
        {"source_id": "known", "name": "New"},
        {"source_id": "fresh", "email": "fresh@example.com", "metadata": {"tier": "gold"}},
        {"name": "no source id"},
        "not an object",
        {"source_id": "bad-email", "email": 42},
    ]
    response = client.post("/v1/customers/bulk/async", headers=h, json=body)
    action = client.get(f"/v1/async-actions/{response.json()['async_action_id']}", headers=h).json()
    assert action["type"] == "CUSTOMERS.BULK_UPDATE" and action["status"] in ("ENQUEUED", "IN_PROGRESS")
    result = run(client, project, settings, response)
    assert result["done_count"] == 2 and result["failed_count"] == 3, result
    assert reasons(result, "source_id") == {None: "invalid_payload", "bad-email": "invalid_payload"}
    assert all(e["message"] for e in result["errors"])
    known = client.get("/v1/customers/known", headers=h).json()
    assert known["name"] == "New" and known["metadata"] == {"a": 1}
    fresh = client.get("/v1/customers/fresh", headers=h).json()
    assert fresh["email"] == "fresh@example.com" and fresh["metadata"] == {"tier": "gold"}
    assert client.get("/v1/customers/bad-email", headers=h).status_code == 404


def test_customers_metadata_merges_into_every_named_customer(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    for source_id in ("c1", "c2"):
        client.post("/v1/customers", headers=h, json={"source_id": source_id, "metadata": {"keep": 1, "drop": 2}})
    response = client.post(
        "/v1/customers/metadata/async",
        headers=h,
        json={"source_ids": ["c1", "c2", "ghost"], "metadata": {"added": "yes", "drop": None}},
    )
    result = run(client, project, settings, response)
    assert result["done_count"] == 2 and reasons(result, "source_id") == {"ghost": "not_found"}
    for source_id in ("c1", "c2"):
        assert client.get(f"/v1/customers/{source_id}", headers=h).json()["metadata"] == {"keep": 1, "added": "yes"}


def test_a_metadata_update_moves_customers_between_segments(
    client: TestClient, project: ProjectKeys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customers are re-evaluated a batch at a time (``REFRESH_BATCH``); each one's segments follow."""
    h = project.headers
    monkeypatch.setattr(segments, "REFRESH_BATCH", 2)
    gold = {"metadata.tier": {"conditions": {"$is": "gold"}}}
    segment = client.post("/v1/segments", headers=h, json={"name": "Gold", "type": "auto-update", "filter": gold})
    assert segment.status_code == 200, segment.text
    for i in range(5):
        tier = "gold" if i < 2 else "silver"
        client.post("/v1/customers", headers=h, json={"source_id": f"m{i}", "metadata": {"tier": tier}})
    response = client.post(
        "/v1/customers/metadata/async",
        headers=h,
        json={"source_ids": ["m0", "m2", "m3", "m4"], "metadata": {"tier": "gold", "seen": True}},
    )
    assert run(client, project, settings, response)["done_count"] == 4
    for i in range(5):
        names = [s["name"] for s in client.get(f"/v1/customers/m{i}/segments", headers=h).json()["data"]]
        assert names == ["Gold"], i  # m1 was gold before and was not named
    response = client.post(
        "/v1/customers/metadata/async", headers=h, json={"source_ids": ["m0", "m1"], "metadata": {"tier": "none"}}
    )
    assert run(client, project, settings, response)["done_count"] == 2
    listed = client.get(f"/v1/customers?segment_id={segment.json()['id']}", headers=h).json()
    assert sorted(c["source_id"] for c in listed["customers"]) == ["m2", "m3", "m4"]


def test_products_bulk_and_metadata_respect_the_metadata_schema(
    client: TestClient, project: ProjectKeys, settings: Settings, management_headers: dict[str, str]
) -> None:
    h = project.headers
    schema = client.post(
        f"/management/v1/projects/{project.project_id}/metadata-schemas",
        headers=management_headers,
        json=STRICT_PRODUCT,
    )
    assert schema.status_code == 200, schema.text
    client.post("/v1/products", headers=h, json={"source_id": "shirt", "name": "Shirt", "price": 1000})
    response = client.post(
        "/v1/products/bulk/async",
        headers=h,
        json=[
            {"source_id": "shirt", "price": 1500},
            {"source_id": "hat", "name": "Hat", "metadata": {"color": "red"}},
            {"source_id": "mug", "name": "Mug", "metadata": {"undeclared": 1}},
            {"name": "nameless"},
        ],
    )
    result = run(client, project, settings, response)
    assert result["done_count"] == 2 and result["failed_count"] == 2, result
    assert reasons(result, "source_id") == {"mug": "metadata_validation_failed", None: "invalid_payload"}
    assert client.get("/v1/products/shirt", headers=h).json()["price"] == 1500
    assert client.get("/v1/products/hat", headers=h).json()["metadata"] == {"color": "red"}
    assert client.get("/v1/products/mug", headers=h).status_code == 404

    response = client.post(
        "/v1/products/metadata/async",
        headers=h,
        json={"source_ids": ["shirt", "hat", "nowhere"], "metadata": {"size": 3}},
    )
    result = run(client, project, settings, response)
    assert result["done_count"] == 2 and reasons(result, "source_id") == {"nowhere": "not_found"}
    assert client.get("/v1/products/hat", headers=h).json()["metadata"] == {"color": "red", "size": 3}

    response = client.post(
        "/v1/products/metadata/async", headers=h, json={"source_ids": ["shirt"], "metadata": {"size": "big"}}
    )
    result = run(client, project, settings, response)
    assert result["done_count"] == 0 and reasons(result, "source_id") == {"shirt": "metadata_validation_failed"}


def test_vouchers_bulk_and_metadata_update_codes_that_validate_at_once(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    for code in ("V1", "V2"):
        created = client.post(
            f"/v1/vouchers/{code}",
            headers=h,
            json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}, "metadata": {"x": 1}},
        )
        assert created.status_code == 200, created.text
    response = client.post(
        "/v1/vouchers/bulk/async",
        headers=h,
        json=[
            {"code": "V1", "metadata": {"region": "EU"}},
            {"code": "V2", "metadata": {"region": "US"}},
            {"code": "MISSING", "metadata": {"region": "EU"}},
            {"code": "V1", "metadata": "not an object"},
            {"metadata": {"region": "EU"}},
        ],
    )
    result = run(client, project, settings, response)
    assert result["done_count"] == 2 and result["failed_count"] == 3, result
    assert reasons(result, "code") == {"MISSING": "not_found", "V1": "invalid_payload", None: "invalid_payload"}
    assert client.get("/v1/vouchers/V1", headers=h).json()["metadata"] == {"x": 1, "region": "EU"}
    assert client.get("/v1/vouchers/V2", headers=h).json()["metadata"] == {"x": 1, "region": "US"}

    response = client.post(
        "/v1/vouchers/metadata/async", headers=h, json={"codes": ["V1", "V2", "GONE"], "metadata": {"batch": 7}}
    )
    result = run(client, project, settings, response)
    assert result["done_count"] == 2 and reasons(result, "code") == {"GONE": "not_found"}
    assert client.get("/v1/vouchers/V2", headers=h).json()["metadata"] == {"x": 1, "region": "US", "batch": 7}
    # The codes still validate with the hot path's copy of their definition rewritten.
    body = {"redeemables": [{"object": "voucher", "id": "V1"}], "order": {"amount": 1000}}
    assert client.post("/v1/validations", headers=h, json=body).json()["valid"] is True


def test_bad_bulk_bodies_get_a_clear_400(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for path in ("/v1/customers/bulk/async", "/v1/products/bulk/async", "/v1/vouchers/bulk/async"):
        assert_error(client.post(path, headers=h, json={"not": "an array"}), 400, "invalid_payload")
    assert_error(
        client.post("/v1/customers/metadata/async", headers=h, json={"source_ids": "c1", "metadata": {}}),
        400,
        "invalid_payload",
    )
    assert_error(
        client.post("/v1/vouchers/metadata/async", headers=h, json={"codes": ["V1"], "metadata": [1]}),
        400,
        "invalid_payload",
    )
