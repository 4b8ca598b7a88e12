"""Metadata schemas: management CRUD, ``/v1/metadata-schemas``, and enforcement of ``allow_defined_only``."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error

STRICT_CUSTOMER = {
    "related_object": "customer",
    "allow_defined_only": True,
    "properties": {
        "tier": {"type": "string", "array": False, "optional": True, "eq": ["gold", "silver"]},
        "age": {"type": "number", "optional": True, "gte": 0},
        "tags": {"type": "string", "array": True},
        "vip": {"type": "boolean"},
        "joined": {"type": "date"},
    },
}


def _schemas_path(project: ProjectKeys) -> str:
    return f"/management/v1/projects/{project.project_id}/metadata-schemas"


def test_management_crud(client: TestClient, project: ProjectKeys, management_headers: dict[str, str]) -> None:
    m = management_headers
    path = _schemas_path(project)
    created = client.post(path, json=STRICT_CUSTOMER, headers=m)
    assert created.status_code == 200, created.text
    schema = created.json()
    assert schema["id"].startswith("ms_") and schema["object"] == "metadata_schema"
    assert schema["related_object"] == "customer" and schema["allow_defined_only"] is True
    assert schema["properties"]["tier"] == {
        "type": "string",
        "array": False,
        "optional": True,
        "eq": ["gold", "silver"],
    }
    assert schema["properties"]["vip"] == {"type": "boolean", "array": False, "optional": True}
    assert_error(client.post(path, json=STRICT_CUSTOMER, headers=m), 409, "duplicate_found")

    listing = client.get(path, headers=m).json()
    assert listing["data_ref"] == "data" and [s["id"] for s in listing["data"]] == [schema["id"]]
    assert client.get(f"{path}/{schema['id']}", headers=m).json()["related_object"] == "customer"

    updated = client.put(
        f"{path}/{schema['id']}",
        json={"allow_defined_only": False, "properties": {"score": {"type": "number"}}},
        headers=m,
    ).json()
    assert updated["allow_defined_only"] is False and set(updated["properties"]) == {
        *STRICT_CUSTOMER["properties"],
        "score",
    }
    assert updated["updated_at"] is not None

    v1 = client.get("/v1/metadata-schemas", headers=project.headers).json()
    assert v1["object"] == "list" and v1["data_ref"] == "schemas" and v1["total"] == 1
    assert client.get("/v1/metadata-schemas/customer", headers=project.headers).json()["id"] == schema["id"]
    assert_error(client.get("/v1/metadata-schemas/order", headers=project.headers), 404, "not_found")

    assert client.delete(f"{path}/{schema['id']}", headers=m).status_code == 204
    assert_error(client.get(f"{path}/{schema['id']}", headers=m), 404, "not_found")
    assert_error(client.get("/management/v1/projects/proj_nope/metadata-schemas", headers=m), 404, "not_found")
    # Application keys do not open the management API.
    assert_error(client.get(path, headers=project.headers), 401, "unauthorized")


def test_invalid_schemas(client: TestClient, project: ProjectKeys, management_headers: dict[str, str]) -> None:
    path = _schemas_path(project)
    for body in (
        {"properties": {}},
        {"related_object": "customer", "properties": {"x": {"type": "float"}}},
        {"related_object": "customer", "properties": {"x": "string"}},
        {"related_object": "customer", "allow_defined_only": "yes", "properties": {}},
        {"related_object": "customer", "properties": {"x": {"type": "string", "array": "no"}}},
    ):
        assert_error(client.post(path, json=body, headers=management_headers), 400, "invalid_payload")


def test_allow_defined_only_rejects_bad_metadata(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    h = project.headers
    client.post(_schemas_path(project), json=STRICT_CUSTOMER, headers=management_headers)
    good = {"tier": "gold", "age": 30, "tags": ["a", "b"], "vip": True, "joined": "2020-01-02"}
    ok = client.post("/v1/customers", json={"source_id": "ok", "metadata": good}, headers=h)
    assert ok.status_code == 200 and ok.json()["metadata"] == good
    bad: list[dict[str, Any]] = [
        {"unknown": 1},
        {"tier": "bronze"},
        {"tier": 5},
        {"age": "30"},
        {"age": -1},
        {"tags": "a"},
        {"tags": [1]},
        {"vip": "true"},
        {"joined": "02/01/2020"},
    ]
    for metadata in bad:
        response = client.post("/v1/customers", json={"source_id": "bad", "metadata": metadata}, headers=h)
        assert_error(response, 400, "metadata_validation_failed")
    assert_error(
        client.put("/v1/customers/ok", json={"metadata": {"nope": 1}}, headers=h), 400, "metadata_validation_failed"
    )
    assert client.get("/v1/customers/ok", headers=h).json()["metadata"] == good
    assert_error(client.get("/v1/customers/bad", headers=h), 404, "not_found")
    # Events and orders upsert customers through the same check.
    event = {"event": "e", "customer": {"source_id": "ev", "metadata": {"nope": 1}}}
    assert_error(client.post("/v1/events", json=event, headers=h), 400, "metadata_validation_failed")


def test_schemas_of_orders_and_products(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    h = project.headers
    for related in ("order", "product"):
        body = {"related_object": related, "allow_defined_only": True, "properties": {"channel": {"type": "string"}}}
        assert client.post(_schemas_path(project), json=body, headers=management_headers).status_code == 200
    assert client.post("/v1/orders", json={"metadata": {"channel": "web"}}, headers=h).status_code == 200
    assert_error(client.post("/v1/orders", json={"metadata": {"x": 1}}, headers=h), 400, "metadata_validation_failed")
    assert client.post("/v1/products", json={"name": "p", "metadata": {"channel": "x"}}, headers=h).status_code == 200
    assert_error(
        client.post("/v1/products", json={"name": "p", "metadata": {"channel": 1}}, headers=h),
        400,
        "metadata_validation_failed",
    )
    # A schema without allow_defined_only restricts nothing.
    client.post(
        _schemas_path(project),
        json={"related_object": "customer", "properties": {"a": {"type": "number"}}},
        headers=management_headers,
    )
    assert client.post("/v1/customers", json={"metadata": {"a": "text", "b": 1}}, headers=h).status_code == 200
