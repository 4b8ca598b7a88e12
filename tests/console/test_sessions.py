"""The console's login check and sessions, through the ASGI app (no browser): what a page does without a
session, what logging in stores and sends, and that the API keys' paths are untouched by the console."""

from __future__ import annotations

import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from voucherd.platform.settings import Settings


def _log_in(client: TestClient, project: ProjectKeys) -> None:
    response = client.post(
        "/console/login",
        data={"kind": "application", "key_id": project.app_id, "token": project.app_token, "next": ""},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_a_page_without_a_session_goes_to_the_login_page(client: TestClient) -> None:
    response = client.get("/console/campaigns?page=2", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/campaigns%3Fpage%3D2"
    htmx = client.get("/console/campaigns", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["hx-redirect"].startswith("/console/login")


def test_the_login_page_and_static_files_need_no_session(client: TestClient) -> None:
    page = client.get("/console/login")
    assert page.status_code == 200
    assert 'name="token"' in page.text
    script = client.get("/console/static/htmx.min.js")
    assert script.status_code == 200
    assert script.text.startswith("/*! htmx 2.0.11")


def test_a_wrong_key_is_refused_and_opens_no_session(client: TestClient, project: ProjectKeys) -> None:
    response = client.post("/console/login", data={"kind": "application", "key_id": project.app_id, "token": "wrong"})
    assert response.status_code == 401
    assert "The key id or its secret is wrong." in response.text
    assert "set-cookie" not in response.headers


def test_logging_in_keeps_the_session_in_redis_not_the_secret(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    response = client.post(
        "/console/login",
        data={"kind": "application", "key_id": project.app_id, "token": project.app_token, "next": "/console/x"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/x"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    token = client.cookies["voucherd_console"]
    assert project.app_token not in cookie
    store = redis.Redis.from_url(settings.redis_url)
    try:
        stored = store.get(f"vd:console:{{{token}}}")
        ttl = store.ttl(f"vd:console:{{{token}}}")
    finally:
        store.close()
    assert stored is not None
    assert project.project_id.encode() in stored
    assert project.app_token.encode() not in stored
    assert 0 < ttl <= 8 * 3600


def test_logging_out_ends_the_session(client: TestClient, project: ProjectKeys) -> None:
    _log_in(client, project)
    assert client.get("/console/", follow_redirects=False).status_code == 303
    assert client.post("/console/logout", follow_redirects=False).status_code == 303
    client.cookies.clear()
    response = client.get("/console/campaigns", follow_redirects=False)
    assert response.headers["location"].startswith("/console/login")


def test_a_management_key_opens_the_project_it_names(
    client: TestClient, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    form = {
        "kind": "management",
        "key_id": management_headers["X-Management-Id"],
        "token": management_headers["X-Management-Token"],
    }
    refused = client.post("/console/login", data={**form, "project_id": "proj_nope"})
    assert refused.status_code == 401
    response = client.post("/console/login", data={**form, "project_id": project.project_id}, follow_redirects=False)
    assert response.status_code == 303
    assert "voucherd_console" in client.cookies


def test_a_cross_site_post_is_refused(client: TestClient, project: ProjectKeys) -> None:
    response = client.post(
        "/console/login",
        data={"kind": "application", "key_id": project.app_id, "token": project.app_token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_the_api_still_wants_its_keys(client: TestClient, project: ProjectKeys) -> None:
    _log_in(client, project)  # a console cookie opens nothing in the API
    assert client.get("/v1/campaigns").status_code == 401
    assert client.get("/v1/campaigns", headers=project.headers).status_code == 200


def test_console_paths_without_a_page_are_an_html_404_behind_the_login(
    client: TestClient, project: ProjectKeys
) -> None:
    assert client.get("/console/nothing-here", follow_redirects=False).status_code == 303
    _log_in(client, project)
    response = client.get("/console/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no console page at /console/nothing-here." in response.text
    assert client.get("/console", follow_redirects=True).url.path == "/console/campaigns"


def test_a_poll_does_not_take_the_next_pages_messages(client: TestClient, project: ProjectKeys) -> None:
    _log_in(client, project)
    body = {"name": "Solo", "campaign_type": "DISCOUNT_COUPONS", "vouchers_count": 1,
            "voucher": {"discount": {"type": "AMOUNT", "amount_off": 500}}}  # fmt: skip
    created = client.post("/v1/campaigns", json=body, headers=project.headers).json()
    client.post(f"/console/campaigns/{created['id']}/disable", follow_redirects=False)
    poll = client.get(f"/console/campaigns/{created['id']}/progress", headers={"HX-Request": "true"})
    assert poll.headers["hx-refresh"] == "true"  # the campaign is made: the page reloads whole
    assert "disabled" not in poll.text
    assert "Campaign Solo disabled." in client.get("/console/campaigns").text
