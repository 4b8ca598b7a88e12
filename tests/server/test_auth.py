"""Application and management keys: hashing, rejection, project isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.platform import projects
from voucherd.platform.settings import Settings


def test_missing_keys_are_401(client: TestClient) -> None:
    body = assert_error(client.get("/v1/categories"), 401, "unauthorized")
    assert "x-app-id" in body["details"]


def test_wrong_token_is_401(client: TestClient, project: ProjectKeys) -> None:
    wrong = project.app_token[:-1] + ("1" if project.app_token.endswith("0") else "0")  # never the real one
    headers = {"X-App-Id": project.app_id, "X-App-Token": wrong}
    assert_error(client.get("/v1/categories", headers=headers), 401, "unauthorized")


def test_unknown_app_id_is_401(client: TestClient, project: ProjectKeys) -> None:
    headers = {"X-App-Id": "not-a-key", "X-App-Token": project.app_token}
    assert_error(client.get("/v1/categories", headers=headers), 401, "unauthorized")


def test_client_key_cannot_open_the_server_api(client: TestClient, project: ProjectKeys) -> None:
    headers = {"X-App-Id": project.client_id, "X-App-Token": project.client_token}
    assert_error(client.get("/v1/categories", headers=headers), 401, "unauthorized")


def test_app_key_cannot_open_the_management_api(client: TestClient, project: ProjectKeys) -> None:
    headers = {"X-Management-Id": project.app_id, "X-Management-Token": project.app_token}
    assert_error(client.get("/management/v1/projects", headers=headers), 401, "unauthorized")


def test_tokens_are_stored_only_as_hashes(settings: Settings, project: ProjectKeys) -> None:
    async def stored() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetch("SELECT key_id, token_hash::text AS digest_hex, token_hash FROM api_keys")
        finally:
            await conn.close()

    rows = asyncio.run(stored())
    assert {r["key_id"] for r in rows} == {project.app_id, project.client_id}
    for row in rows:
        assert project.app_token not in row["digest_hex"] and project.client_token not in row["digest_hex"]
        assert len(row["token_hash"]) == 32
    by_id = {r["key_id"]: bytes(r["token_hash"]) for r in rows}
    assert projects.token_matches(project.app_token, by_id[project.app_id])
    assert not projects.token_matches(project.client_token, by_id[project.app_id])


def test_projects_do_not_see_each_other(client: TestClient, make_project: Callable[..., ProjectKeys]) -> None:
    a, b = make_project("A"), make_project("B")
    created = client.post("/v1/categories", json={"name": "Premium", "hierarchy": 1}, headers=a.headers).json()
    category_id = created["id"]

    assert client.get(f"/v1/categories/{category_id}", headers=a.headers).status_code == 200
    body = assert_error(client.get(f"/v1/categories/{category_id}", headers=b.headers), 404, "not_found")
    assert body["resource_type"] == "category" and body["resource_id"] == category_id
    assert client.get("/v1/categories", headers=b.headers).json()["data"] == []
    assert_error(client.put(f"/v1/categories/{category_id}", json={"name": "x"}, headers=b.headers), 404, "not_found")
    assert_error(client.delete(f"/v1/categories/{category_id}", headers=b.headers), 404, "not_found")
    # The same name is free in the other project.
    assert client.post("/v1/categories", json={"name": "Premium", "hierarchy": 1}, headers=b.headers).status_code == 200
    assert client.get(f"/v1/categories/{category_id}", headers=a.headers).json()["name"] == "Premium"
