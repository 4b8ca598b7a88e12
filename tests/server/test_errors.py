"""Every error path answers with the Voucherify error object and a request id."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from server.app import ROUTES, build_app
from tests.conftest import ProjectKeys, assert_error
from voucherd.platform.settings import Settings


def test_unknown_route_is_404(client: TestClient, project: ProjectKeys) -> None:
    body = assert_error(client.get("/v1/no-such-thing", headers=project.headers), 404, "not_found")
    assert "/v1/no-such-thing" in body["details"]


def test_unknown_route_outside_the_api_is_404_without_keys(client: TestClient) -> None:
    assert_error(client.get("/nowhere"), 404, "not_found")


def test_wrong_method_is_405_with_allow_header(client: TestClient, project: ProjectKeys) -> None:
    response = client.patch("/v1/categories", headers=project.headers)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


def test_malformed_json_is_400_invalid_payload(client: TestClient, project: ProjectKeys) -> None:
    response = client.post(
        "/v1/categories", content=b'{"name": ', headers={**project.headers, "Content-Type": "application/json"}
    )
    body = assert_error(response, 400, "invalid_payload")
    assert "JSON" in body["details"]


def test_non_object_body_is_400(client: TestClient, project: ProjectKeys) -> None:
    assert_error(client.post("/v1/categories", json=[1, 2], headers=project.headers), 400, "invalid_payload")


def test_body_over_the_limit_is_413(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    big = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
    response = client.post(
        "/v1/categories", content=big, headers={**project.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "query_too_large")


def test_wrong_content_type_is_415(client: TestClient, project: ProjectKeys) -> None:
    response = client.post(
        "/v1/categories",
        content=b"name=x",
        headers={**project.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_unexpected_exception_is_500_logged_and_leaks_nothing(
    settings: Settings, project: ProjectKeys, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: Request) -> None:
        raise RuntimeError("secret-internal-detail")

    app = build_app(settings, routes=[*ROUTES, Route("/v1/boom", boom)])
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get("/v1/boom", headers=project.headers)
    body = assert_error(response, 500, "internal_error")
    assert "secret-internal-detail" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret-internal-detail" in str(logged[0].exc_info[1])
    assert body["request_id"] in logged[0].getMessage()


def test_every_response_carries_a_fresh_request_id(client: TestClient) -> None:
    first = client.get("/health").headers["x-request-id"]
    second = client.get("/health").headers["x-request-id"]
    assert first.startswith("v-") and second.startswith("v-") and first != second
