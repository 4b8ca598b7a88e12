"""Management webhooks (CRUD), the metadata key purge, and /metrics."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform.settings import Settings


def test_webhook_crud(client: TestClient, project: ProjectKeys, management_headers: dict[str, str]) -> None:
    base = f"/management/v1/projects/{project.project_id}/webhooks"
    body = {"target_url": "https://example.com/hook", "events": ["redemption.succeeded", "campaign.vouchers.aded"]}
    created = client.post(base, headers=management_headers, json=body).json()
    assert created["id"].startswith("wh_") and created["object"] == "webhook" and created["active"] is True
    assert created["events"] == body["events"]
    listed = client.get(base, headers=management_headers).json()
    assert listed["data_ref"] == "data" and [w["id"] for w in listed["data"]] == [created["id"]]
    updated = client.put(f"{base}/{created['id']}", headers=management_headers, json={**body, "active": False}).json()
    assert updated["active"] is False
    bad = client.post(base, headers=management_headers, json={"target_url": "ftp://x", "events": ["nope"]})
    assert_error(bad, 400, "invalid_payload")
    assert client.delete(f"{base}/{created['id']}", headers=management_headers).status_code == 204
    assert_error(client.get(f"{base}/{created['id']}", headers=management_headers), 404, "not_found")


def test_metadata_key_purge(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str], settings: Settings
) -> None:
    client.post("/v1/customers", headers=project.headers, json={"source_id": "a", "metadata": {"old": 1, "keep": 2}})
    path = f"/management/v1/projects/{project.project_id}/metadata/customers/old"
    response = client.delete(path, headers=management_headers)
    assert response.status_code == 202, response.text
    drain_worker(settings)
    action = client.get(f"/v1/async-actions/{response.json()['async_action_id']}", headers=project.headers).json()
    assert action["type"] == "CUSTOMERS.METADATA_KEY_PURGE" and action["result"]["done_count"] == 1
    assert client.get("/v1/customers/a", headers=project.headers).json()["metadata"] == {"keep": 2}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "voucherd_task_enqueue_to_done_seconds" in metrics.text
