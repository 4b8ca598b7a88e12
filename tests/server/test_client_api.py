"""The client-side API: client keys, trusted origins, CORS, project flags and the per-IP limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.app import build_app
from tests.conftest import ProjectKeys, assert_error
from voucherd.platform.settings import Settings

ORIGIN = "https://shop.example"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(client_rate_limit=1000)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def configure(client: TestClient, management: dict[str, str], project: ProjectKeys, **fields: object) -> None:
    response = client.put(f"/management/v1/projects/{project.project_id}", json=fields, headers=management)
    assert response.status_code == 200, response.text


def client_headers(project: ProjectKeys, origin: str = ORIGIN) -> dict[str, str]:
    return {"X-Client-Application-Id": project.client_id, "X-Client-Token": project.client_token, "Origin": origin}


def make_code(client: TestClient, project: ProjectKeys, code: str) -> None:
    body = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 500}}
    assert client.post(f"/v1/vouchers/{code}", json=body, headers=project.headers).status_code == 200


BODY = {"redeemables": [{"object": "voucher", "id": "WEB"}], "order": {"amount": 2000}}


def test_a_trusted_origin_validates_with_a_client_key(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    configure(client, management_headers, project, client_trusted_domains=[ORIGIN])
    make_code(client, project, "WEB")
    response = client.post("/client/v1/validations", json=BODY, headers=client_headers(project))
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_an_untrusted_origin_is_403(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    configure(client, management_headers, project, client_trusted_domains=[ORIGIN])
    response = client.post("/client/v1/validations", json=BODY, headers=client_headers(project, "https://evil.example"))
    assert_error(response, 403, "forbidden")


def test_keys_stay_in_their_family(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    configure(client, management_headers, project, client_trusted_domains=["*"])
    app_key_on_client = {
        "X-Client-Application-Id": project.app_id,
        "X-Client-Token": project.app_token,
        "Origin": ORIGIN,
    }
    assert_error(client.post("/client/v1/validations", json=BODY, headers=app_key_on_client), 401, "unauthorized")
    client_key_on_server = {"X-App-Id": project.client_id, "X-App-Token": project.client_token}
    assert_error(client.post("/v1/validations", json=BODY, headers=client_key_on_server), 401, "unauthorized")
    # A client key cannot reach server-only resources, even under /client.
    assert_error(client.get("/client/v1/vouchers", headers=client_headers(project)), 404, "not_found")


def test_client_redemption_needs_the_project_flag(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    configure(client, management_headers, project, client_trusted_domains=[ORIGIN])
    make_code(client, project, "WEB")
    assert_error(client.post("/client/v1/redemptions", json=BODY, headers=client_headers(project)), 403, "forbidden")
    configure(client, management_headers, project, client_redeem_enabled=True)
    # The key cache keeps the old flags for a few seconds in other processes; this one re-reads on a new app.
    with TestClient(build_app(client.app.state.ctx.settings), raise_server_exceptions=False) as fresh:
        response = fresh.post("/client/v1/redemptions", json=BODY, headers=client_headers(project))
    assert response.status_code == 200, response.text


def test_preflight_is_answered(client: TestClient) -> None:
    response = client.options(
        "/client/v1/validations",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-client-token",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "X-Client-Token" in response.headers["access-control-allow-headers"]


def test_the_per_ip_limit_holds_across_server_processes(
    settings: Settings, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    limited = settings.with_(client_rate_limit=5, client_rate_window_ms=60_000)
    with (
        TestClient(build_app(limited), raise_server_exceptions=False) as first,
        TestClient(build_app(limited), raise_server_exceptions=False) as second,
    ):
        configure(first, management_headers, project, client_trusted_domains=["*"])
        statuses = [
            (first if n % 2 else second).post("/client/v1/qualifications", json={}, headers=client_headers(project))
            for n in range(7)
        ]
    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 2
    body = statuses[-1].json()
    assert body["code"] == 429 and body["message"] == "Too many requests hit the API too quickly."
    assert int(statuses[-1].headers["retry-after"]) >= 1
