"""``GET /health`` reports Redis and PostgreSQL, without authentication."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.app import build_app
from tests.conftest import ProjectKeys, assert_error
from voucherd.platform.localstack import free_port
from voucherd.platform.settings import Settings


def test_health_is_200_when_both_answer(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": "ok", "postgres": "ok"}


def test_health_is_503_when_redis_is_down(settings: Settings) -> None:
    dead = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(build_app(dead), raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing" and body["redis"].startswith("failing") and body["postgres"] == "ok"


def test_a_request_while_redis_is_down_is_a_503_in_the_error_shape(settings: Settings, project: ProjectKeys) -> None:
    dead = settings.with_(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = {"redeemables": [{"object": "voucher", "id": "ANY"}], "order": {"amount": 1000}}
    with TestClient(build_app(dead), raise_server_exceptions=False) as client:
        response = client.post("/v1/validations", json=body, headers=project.headers)
    error = assert_error(response, 503, "service_unavailable")
    assert "Traceback" not in response.text and "redis://" not in response.text
    assert error["message"] == "Service Unavailable"
