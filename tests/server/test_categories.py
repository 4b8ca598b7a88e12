"""``/v1/categories`` over HTTP."""

from __future__ import annotations

import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.platform import keys
from voucherd.platform.settings import Settings


def test_category_lifecycle(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    created = client.post("/v1/categories", json={"name": "Exclusive", "hierarchy": 2}, headers=h)
    assert created.status_code == 200
    category = created.json()
    assert category["id"].startswith("cat_")
    assert category["object"] == "category" and category["hierarchy"] == 2 and category["updated_at"] is None
    assert category["created_at"].endswith("Z")

    updated = client.put(f"/v1/categories/{category['id']}", json={"hierarchy": 5}, headers=h).json()
    assert updated["hierarchy"] == 5 and updated["name"] == "Exclusive" and updated["updated_at"] is not None

    client.post("/v1/categories", json={"name": "First", "hierarchy": 0}, headers=h)
    listing = client.get("/v1/categories", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "data" and listing["total"] == 2
    assert [c["name"] for c in listing["data"]] == ["First", "Exclusive"]

    assert client.delete(f"/v1/categories/{category['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/categories/{category['id']}", headers=h), 404, "not_found")

    # Each change moved the project's definitions version (create, update, create, delete).
    version = redis.Redis.from_url(settings.redis_url).get(keys.definitions_version(project.project_id))
    assert version == b"4"


def test_duplicate_name_is_409(client: TestClient, project: ProjectKeys) -> None:
    client.post("/v1/categories", json={"name": "Same", "hierarchy": 1}, headers=project.headers)
    again = client.post("/v1/categories", json={"name": "Same", "hierarchy": 3}, headers=project.headers)
    assert_error(again, 409, "duplicate_found")


def test_invalid_fields_are_400(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    assert_error(client.post("/v1/categories", json={"hierarchy": 1}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/categories", json={"name": "x", "hierarchy": -1}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/categories", json={"name": "x", "hierarchy": 1.5}, headers=h), 400, "invalid_payload")
    assert_error(
        client.post("/v1/categories", json={"name": "x", "hierarchy": True}, headers=h), 400, "invalid_payload"
    )
    assert_error(client.post("/v1/categories", headers=h), 400, "invalid_payload")
    assert client.get("/v1/categories", headers=h).json()["total"] == 0
