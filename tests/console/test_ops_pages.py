"""The console's operations pages through the ASGI app (no browser): customers and their wallets, the
async-action monitor and the customer CSV import, exports and their download, webhooks, the live figures.
Forms go through the API's domain functions: a refused one shows its reason beside the field and writes
nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from voucherd.platform.settings import Settings


def log_in(client: TestClient, project: ProjectKeys) -> None:
    data = {"kind": "application", "key_id": project.app_id, "token": project.app_token, "next": ""}
    assert client.post("/console/login", data=data, follow_redirects=False).status_code == 303


def log_in_management(client: TestClient, management_headers: dict[str, str], project: ProjectKeys) -> None:
    data = {
        "kind": "management",
        "key_id": management_headers["X-Management-Id"],
        "token": management_headers["X-Management-Token"],
        "project_id": project.project_id,
        "next": "",
    }
    assert client.post("/console/login", data=data, follow_redirects=False).status_code == 303


def ok(response: Any) -> Any:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def count(settings: Settings, sql: str, *args: Any) -> int:
    async def fetch() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def rows_of(html: str, attribute: str) -> list[str]:
    return re.findall(rf'{attribute}="([^"]+)"', html)


# --- customers ---


def test_the_customer_search_finds_a_fragment_of_name_email_or_source_id(
    client: TestClient, project: ProjectKeys
) -> None:
    for source_id, name, email in (
        ("cust-anna", "Anna Berg", "anna@example.com"),
        ("cust-joanna", "Joanna Lind", "jl@shop.example"),
        ("vip_100%", "Bo Ek", "bo@example.com"),
    ):
        ok(
            client.post(
                "/v1/customers", json={"source_id": source_id, "name": name, "email": email}, headers=project.headers
            )
        )
    log_in(client, project)
    assert sorted(rows_of(client.get("/console/customers").text, "data-customer")) == [
        "cust-anna",
        "cust-joanna",
        "vip_100%",
    ]
    assert sorted(rows_of(client.get("/console/customers?q=ANNA").text, "data-customer")) == [
        "cust-anna",
        "cust-joanna",
    ]
    assert rows_of(client.get("/console/customers?q=shop.exa").text, "data-customer") == ["cust-joanna"]
    # LIKE's wildcards are matched literally.
    assert rows_of(client.get("/console/customers?q=_100%25").text, "data-customer") == ["vip_100%"]
    assert rows_of(client.get("/console/customers?q=%25").text, "data-customer") == ["vip_100%"]
    nothing = client.get("/console/customers?q=nobody")
    assert rows_of(nothing.text, "data-customer") == [] and "No customer matches" in nothing.text
    refused = client.get("/console/customers?q=" + "x" * 201)
    assert refused.status_code == 400
    assert 'data-testid="error-q"' in refused.text and "longer than 200" in refused.text


def test_a_customers_page_shows_their_wallet_with_balances_and_points(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    customer = ok(client.post("/v1/customers", json={"source_id": "walleted", "name": "Wanda"}, headers=h))
    program = ok(
        client.post(
            "/v1/loyalties",
            json={"name": "Club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
            headers=h,
        )
    )
    card = ok(
        client.post(f"/v1/loyalties/{program['id']}/members", json={"customer": {"source_id": "walleted"}}, headers=h)
    )
    ok(client.post(f"/v1/loyalties/members/{card['code']}/balance", json={"points": 350}, headers=h))
    gift = {"type": "GIFT_VOUCHER", "gift": {"amount": 5000}}
    ok(client.post("/v1/vouchers/GIFT-WANDA", json=gift, headers=h))
    ok(
        client.post(
            "/v1/publications", json={"customer": {"source_id": "walleted"}, "voucher": "GIFT-WANDA"}, headers=h
        )
    )
    drain_worker(settings)
    log_in(client, project)
    page = client.get(f"/console/customers/{customer['id']}")
    assert page.status_code == 200, page.text
    assert re.search(r'data-testid="customer-points">350<', page.text)
    assert re.search(r'data-testid="customer-gift-balance">50.00<', page.text)
    assert sorted(rows_of(page.text, "data-code")) == sorted([card["code"], "GIFT-WANDA"])
    assert re.search(rf'data-testid="balance-{card["code"]}">350 points<', page.text)
    assert re.search(r'data-testid="balance-GIFT-WANDA">50.00 of 50.00<', page.text)
    # By source_id too, as the API allows; an unknown customer is the error page with its status.
    assert client.get("/console/customers/walleted").status_code == 200
    assert client.get("/console/customers/nobody").status_code == 404


# --- async actions and the customer import ---

CSV = "source_id,name,email,birthdate\nimp-1,Ida,ida@example.com,1990-01-02\nimp-2,Per,,not-a-date\n"


def _upload(client: TestClient, data: bytes, name: str = "customers.csv") -> Any:
    return client.post(
        "/console/async-actions/import-customers",
        files={"file": (name, data, "text/csv")},
        follow_redirects=False,
    )


def test_a_customer_import_starts_from_the_console_and_its_result_shows_in_the_monitor(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    log_in(client, project)
    started = _upload(client, CSV.encode())
    assert started.status_code == 303, started.text
    action_id = started.headers["location"].split("started=")[1]
    assert (
        count(settings, "SELECT count(*) FROM async_actions WHERE id = $1 AND type = 'CUSTOMERS.IMPORT_CSV'", action_id)
        == 1
    )
    waiting = client.get(started.headers["location"])
    assert f'data-action-id="{action_id}"' in waiting.text
    assert f"Customer import started ({action_id})." in waiting.text
    assert 'data-running="yes"' in waiting.text and 'hx-trigger="every 1s"' in waiting.text
    drain_worker(settings)
    done = client.get("/console/async-actions/table")
    assert 'data-running="no"' in done.text and "hx-trigger" not in done.text
    assert re.search(r'data-testid="done-count">1<', done.text)
    assert re.search(r'data-testid="failed-count" class="bad">1<', done.text)
    assert "not-a-date" not in done.text  # the failed rows are on the action's own page, not in the list
    detail = client.get(f"/console/async-actions/{action_id}")
    assert 'data-status="DONE"' in detail.text
    assert "birthdate should be a YYYY-MM-DD date, got not-a-date" in detail.text
    assert count(settings, "SELECT count(*) FROM customers WHERE source_id = 'imp-1'") == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"name,email\nAnna,a@example.com\n", ""),  # a header without source_id is fine: rows are new customers
        (b"\xff\xfe not text", "not UTF-8"),
        (b"", "empty"),
        (b"source_id,name,name\nx,y,z\n", "repeats the column"),
    ],
)
def test_a_refused_file_is_shown_beside_the_field_and_starts_nothing(
    client: TestClient, project: ProjectKeys, settings: Settings, data: bytes, reason: str
) -> None:
    log_in(client, project)
    answer = _upload(client, data)
    if not reason:
        assert answer.status_code == 303
        return
    assert answer.status_code == 400
    assert 'data-testid="error-file"' in answer.text and reason in answer.text
    assert count(settings, "SELECT count(*) FROM async_actions") == 0


def test_an_upload_without_a_file_is_refused(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    log_in(client, project)
    answer = client.post("/console/async-actions/import-customers", data={"x": "1"})
    assert answer.status_code == 400 and "Choose a CSV file" in answer.text
    assert count(settings, "SELECT count(*) FROM async_actions") == 0


# --- exports ---


def test_an_export_is_made_and_downloaded_with_the_console_session_only(
    client: TestClient, project: ProjectKeys, settings: Settings, make_project: Callable[..., ProjectKeys]
) -> None:
    ok(
        client.post(
            "/v1/customers",
            json={"source_id": "exp-1", "name": "Eva", "email": "eva@example.com"},
            headers=project.headers,
        )
    )
    log_in(client, project)
    form = {"exported_object": "customer", "fields.customer": ["source_id", "email"], "fields.voucher": ["code"]}
    created = client.post("/console/exports", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    export_id = rows_of(client.get("/console/exports").text, "data-export-id")[0]
    drain_worker(settings)
    listed = client.get("/console/exports/table").text
    assert f'href="/console/exports/{export_id}/download"' in listed
    assert "source_id, email" in listed
    download = client.get(f"/console/exports/{export_id}/download")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="customer-{export_id}.csv"'
    assert download.text.splitlines() == ["Source ID,Email", "exp-1,eva@example.com"]
    # Another project's session does not see it; no session goes to the login page.
    other = make_project("Other")
    with TestClient(client.app, raise_server_exceptions=False) as stranger:
        log_in(stranger, other)
        assert stranger.get(f"/console/exports/{export_id}/download").status_code == 404
    with TestClient(client.app, raise_server_exceptions=False) as anonymous:
        assert anonymous.get(f"/console/exports/{export_id}/download", follow_redirects=False).status_code == 303


def test_a_refused_export_names_the_field_and_writes_nothing(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    log_in(client, project)
    bad_field = client.post("/console/exports", data={"exported_object": "customer", "fields.customer": ["shoe_size"]})
    assert bad_field.status_code == 400
    assert 'data-testid="error-parameters.fields"' in bad_field.text and "shoe_size is not a field" in bad_field.text
    bad_object = client.post("/console/exports", data={"exported_object": "planet"})
    assert bad_object.status_code == 400 and 'data-testid="error-exported_object"' in bad_object.text
    assert count(settings, "SELECT count(*) FROM exports") == 0
    assert count(settings, "SELECT count(*) FROM async_actions") == 0


# --- webhooks ---


def test_webhooks_need_a_management_key_session(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    log_in(client, project)
    page = client.get("/console/webhooks")
    assert page.status_code == 403 and 'data-testid="management-only"' in page.text
    posted = client.post("/console/webhooks", data={"target_url": "http://x.example/", "events": "voucher.created"})
    assert posted.status_code == 403
    assert count(settings, "SELECT count(*) FROM webhooks") == 0


def test_webhooks_are_created_refused_beside_the_field_and_deleted(
    client: TestClient, project: ProjectKeys, settings: Settings, management_headers: dict[str, str]
) -> None:
    log_in_management(client, management_headers, project)
    refused = client.post("/console/webhooks", data={"target_url": "ftp://nope", "events": ["voucher.created"]})
    assert refused.status_code == 400
    assert 'data-testid="error-target_url"' in refused.text and "http(s) URL" in refused.text
    assert 'value="voucher.created" checked' in refused.text  # what was chosen stays chosen
    no_events = client.post("/console/webhooks", data={"target_url": "https://shop.example/hook", "active": "on"})
    assert no_events.status_code == 400 and 'data-testid="error-events"' in no_events.text
    assert count(settings, "SELECT count(*) FROM webhooks") == 0
    created = client.post(
        "/console/webhooks",
        data={
            "target_url": "https://shop.example/hook",
            "events": ["redemption.succeeded", "customer.created"],
            "active": "on",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    webhook_id = created.headers["location"].rsplit("/", 1)[1]
    shown = client.get(created.headers["location"])
    assert "Webhook created." in shown.text and "No deliveries yet" in shown.text
    assert 'hx-get="/console/webhooks/' + webhook_id + '/deliveries"' in shown.text
    assert rows_of(client.get("/console/webhooks").text, "data-webhook-id") == [webhook_id]
    deleted = client.post(f"/console/webhooks/{webhook_id}/delete")
    assert deleted.status_code == 200 and f"Webhook {webhook_id} deleted." in deleted.text
    assert count(settings, "SELECT count(*) FROM webhooks") == 0


# --- live ---


def test_the_live_figures_move_with_redemptions_and_need_a_session(client: TestClient, project: ProjectKeys) -> None:
    assert client.get("/console/live/figures", follow_redirects=False).status_code == 303
    log_in(client, project)
    assert 'data-figures-url="/console/live/figures"' in client.get("/console/live").text
    before = ok(client.get("/console/live/figures"))
    voucher = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    ok(client.post("/v1/vouchers/LIVE-1", json=voucher, headers=project.headers))
    body = {"redeemables": [{"object": "voucher", "id": "LIVE-1"}], "order": {"amount": 1000}}
    for _ in range(2):
        ok(client.post("/v1/redemptions", json=body, headers=project.headers))
    after = ok(client.get("/console/live/figures"))
    assert after["redemptions"]["succeeded"] - before["redemptions"]["succeeded"] == 2
    assert after["at"] >= before["at"]
    calls = {c["call"]: c for c in after["calls"]}
    assert calls["POST /v1/redemptions"]["p95_ms"] > 0
    assert not any(name.split(" ", 1)[1].startswith("/console") for name in calls)
    assert isinstance(after["streams"], list)


def test_a_nul_character_in_a_path_is_not_found_not_an_error(client: TestClient, project: ProjectKeys) -> None:
    log_in(client, project)
    for path in ("/console/customers/a%00b", "/console/async-actions/a%00b", "/console/exports/a%00b/download"):
        assert client.get(path).status_code == 404, path


def test_a_nul_character_in_a_form_is_refused_as_the_api_refuses_it(
    client: TestClient, project: ProjectKeys, settings: Settings, management_headers: dict[str, str]
) -> None:
    log_in_management(client, management_headers, project)
    nul_url = {"target_url": "https://x.example/\x00", "events": ["voucher.created"]}
    hook = client.post("/console/webhooks", data=nul_url)
    assert hook.status_code == 400 and 'data-testid="error-target_url"' in hook.text
    export = client.post("/console/exports", data={"exported_object": "customer", "fields.customer": ["name\x00"]})
    assert export.status_code == 400 and "NUL" in export.text
    assert count(settings, "SELECT count(*) FROM webhooks") + count(settings, "SELECT count(*) FROM exports") == 0
