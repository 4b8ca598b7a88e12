"""``/management/v1/projects``: each new project gets working keys of its own."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import assert_error


def test_project_lifecycle(client: TestClient, management_headers: dict[str, str]) -> None:
    m = management_headers
    created = client.post("/management/v1/projects", json={"name": "Shop EU", "timezone": "Europe/Warsaw"}, headers=m)
    assert created.status_code == 200
    project = created.json()
    assert project["id"].startswith("proj_") and project["timezone"] == "Europe/Warsaw"
    assert project["client_redeem_enabled"] is False
    server_key = project["server_side_key"]
    app_headers = {"X-App-Id": server_key["app_id"], "X-App-Token": server_key["app_token"]}

    # The new keys open the new project.
    assert client.post("/v1/categories", json={"name": "c", "hierarchy": 0}, headers=app_headers).status_code == 200

    got = client.get(f"/management/v1/projects/{project['id']}", headers=m).json()
    assert got["name"] == "Shop EU" and "server_side_key" not in got
    updated = client.put(
        f"/management/v1/projects/{project['id']}", json={"name": "Shop PL", "client_redeem_enabled": True}, headers=m
    ).json()
    assert updated["name"] == "Shop PL" and updated["client_redeem_enabled"] is True
    assert updated["timezone"] == "Europe/Warsaw"
    listing = client.get("/management/v1/projects", headers=m).json()
    assert [p["id"] for p in listing["data"]] == [project["id"]] and listing["total"] == 1

    assert client.delete(f"/management/v1/projects/{project['id']}", headers=m).status_code == 204
    assert_error(client.get(f"/management/v1/projects/{project['id']}", headers=m), 404, "not_found")
    # Its keys stop working with it.
    assert_error(client.get("/v1/categories", headers=app_headers), 401, "unauthorized")


def test_management_api_needs_management_keys(client: TestClient) -> None:
    assert_error(client.get("/management/v1/projects"), 401, "unauthorized")
    bad = {"X-Management-Id": "nope", "X-Management-Token": "nope"}
    assert_error(client.get("/management/v1/projects", headers=bad), 401, "unauthorized")


def test_create_project_needs_a_name(client: TestClient, management_headers: dict[str, str]) -> None:
    response = client.post("/management/v1/projects", json={"description": "x"}, headers=management_headers)
    assert_error(response, 400, "invalid_payload")
