"""The console's operations pages in a real browser, against a real server and worker: a redemption made
through the API moves the live page; a customer CSV import started from the console finishes in the
async-action monitor; a webhook created in the console records its delivery attempt; an export downloads;
a customer's wallet shows their points. Each page is screenshotted (docs/console/ after `make screenshots`)."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import Console

Shoot = Callable[[Any, str], Path]
WORKER_WAIT_MS = 30_000


def api(console_server: Console, method: str, path: str, json: Any = None) -> Any:
    """One call to the test server's real HTTP API with the project's application key."""
    answer = httpx.request(method, console_server.url + path, json=json, headers=console_server.project.headers)
    assert answer.status_code in (200, 201, 202), answer.text
    return answer.json()


def make_code(console_server: Console, code: str) -> None:
    api(
        console_server,
        "POST",
        f"/v1/vouchers/{code}",
        {"type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 10}},
    )


def redeem(console_server: Console, code: str, customer: str = "walk-in") -> None:
    body = {
        "redeemables": [{"object": "voucher", "id": code}],
        "order": {"amount": 2500},
        "customer": {"source_id": customer},
    }
    api(console_server, "POST", "/v1/redemptions", body)


def log_in_management(page: Any, management: dict[str, str], project_id: str, target: str) -> None:
    page.goto(f"/console/login?next={target}")
    form = page.get_by_test_id("login-management")
    form.get_by_label("Management id").fill(management["X-Management-Id"])
    form.get_by_label("Management token").fill(management["X-Management-Token"])
    form.get_by_label("Project id").fill(project_id)
    form.get_by_role("button", name="Log in").click()
    page.wait_for_url("**" + target)


class Receiver:
    """A tiny local HTTP server that takes webhook posts and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        received = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/voucherd"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    got.thread.start()
    try:
        yield got
    finally:
        got.server.shutdown()
        got.server.server_close()


def test_a_redemption_through_the_api_moves_the_live_page(
    console: Any, console_server: Console, screenshot: Shoot
) -> None:
    make_code(console_server, "LIVE-10")
    console.goto("/console/live")
    expect(console.locator("#live-status")).to_contain_text("updated")
    total = console.get_by_test_id("redemptions-total")
    expect(total).to_have_text("0")
    # A few seconds of redemptions, so the rate line has a shape.
    for _ in range(6):
        for _ in range(4):
            redeem(console_server, "LIVE-10")
        time.sleep(0.5)
    expect(total).to_have_text("24")
    console.wait_for_function(
        "Number(document.getElementById('redemptions-rate').dataset.peak) > 0", timeout=WORKER_WAIT_MS
    )
    expect(console.get_by_test_id("legend-p95")).to_contain_text(re.compile(r"POST /v1/redemptions: [\d.]+ ms"))
    assert console.locator("#chart-rate path[data-series]").count() == 1
    console.wait_for_timeout(1500)  # one more poll: the lines reach the right-hand edge
    screenshot(console, "live")


def test_a_customer_import_started_in_the_console_finishes_in_the_monitor(
    console: Any, console_server: Console, screenshot: Shoot
) -> None:
    console.goto("/console/async-actions")
    rows = "source_id,name,email,birthdate,city\n" + "".join(
        f"shop-{i},Customer {i},c{i}@example.com,{'1990-05-17' if i != 7 else '17/05/1990'},Oslo\n"
        for i in range(1, 41)
    )
    form = console.get_by_test_id("form-import-customers")
    form.get_by_label("CSV file").set_input_files(
        files=[{"name": "customers.csv", "mimeType": "text/csv", "buffer": b"no header;only\xff"}]
    )
    form.get_by_role("button", name="Start the import").click()
    expect(console.get_by_test_id("error-file")).to_contain_text("not UTF-8")
    form = console.get_by_test_id("form-import-customers")
    form.get_by_label("CSV file").set_input_files(
        files=[{"name": "customers.csv", "mimeType": "text/csv", "buffer": rows.encode()}]
    )
    form.get_by_role("button", name="Start the import").click()
    console.wait_for_url("**/console/async-actions?started=*")
    action_id = console.url.split("started=")[1]
    row = console.locator(f'tr[data-action-id="{action_id}"]')
    expect(row.get_by_test_id("status")).to_have_text("done", timeout=WORKER_WAIT_MS)
    expect(row.get_by_test_id("done-count")).to_have_text("39")
    expect(row.get_by_test_id("failed-count")).to_have_text("1")
    expect(console.get_by_test_id("actions")).to_have_attribute("data-running", "no")
    assert row.get_by_test_id("processing-time").inner_text().endswith(("ms", " s"))
    screenshot(console, "async-actions")
    row.get_by_role("link", name=action_id).click()
    expect(console.get_by_test_id("failed-rows")).to_contain_text("birthdate should be a YYYY-MM-DD date")
    screenshot(console, "async-action")
    console.goto("/console/customers?q=shop-1")
    expect(console.get_by_test_id("customers-total")).to_have_text("11 customers")  # shop-1, shop-10 … shop-19


def test_a_webhook_created_in_the_console_shows_its_delivery_attempt(
    management_headers: dict[str, str], page: Any, console_server: Console, receiver: Receiver, screenshot: Shoot
) -> None:
    log_in_management(page, management_headers, console_server.project.project_id, "/console/webhooks")
    form = page.get_by_test_id("form-webhook")
    form.get_by_label("Target URL").fill("ftp://wrong")
    form.get_by_label("redemption.succeeded").check()
    form.get_by_role("button", name="Create").click()
    expect(page.get_by_test_id("error-target_url")).to_contain_text("http(s) URL")
    form = page.get_by_test_id("form-webhook")
    expect(form.get_by_label("redemption.succeeded")).to_be_checked()
    form.get_by_label("Target URL").fill(receiver.url)
    form.get_by_role("button", name="Create").click()
    page.wait_for_url("**/console/webhooks/wh_*")
    make_code(console_server, "HOOKED")
    redeem(console_server, "HOOKED", customer="hooked-customer")
    delivery = page.get_by_test_id("deliveries").locator("tr[data-delivery-id]")
    expect(delivery.get_by_test_id("response-code")).to_have_text("200", timeout=WORKER_WAIT_MS)
    expect(delivery.get_by_test_id("tries")).to_have_text("1")
    expect(delivery.get_by_test_id("delivery-status")).to_have_text("succeeded")
    expect(page.get_by_test_id("attempt")).to_contain_text("try 1: HTTP 200")
    assert len(receiver.posts) == 1 and "x-voucherify-signature" in receiver.posts[0][0]
    screenshot(page, "webhook")
    page.goto("/console/webhooks")
    expect(page.get_by_test_id("webhooks").locator("tr[data-webhook-id]")).to_have_count(1)
    screenshot(page, "webhooks")


def test_an_export_made_in_the_console_downloads(console: Any, console_server: Console, screenshot: Shoot) -> None:
    for i in range(3):
        api(
            console_server,
            "POST",
            "/v1/customers",
            {"source_id": f"exp-{i}", "name": f"Export {i}", "email": f"e{i}@example.com"},
        )
    console.goto("/console/exports")
    form = console.get_by_test_id("form-export")
    form.get_by_label("Exported object").select_option("voucher")
    expect(form.locator('fieldset[data-object="customer"]')).to_be_hidden()
    form.get_by_label("Exported object").select_option("customer")
    expect(form.locator('fieldset[data-object="voucher"]')).to_be_hidden()
    form.locator('fieldset[data-object="customer"]').get_by_label("email").check()
    form.get_by_role("button", name="Start the export").click()
    link = console.get_by_test_id("exports").get_by_test_id("download")
    expect(link).to_be_visible(timeout=WORKER_WAIT_MS)
    screenshot(console, "exports")
    with console.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename.startswith("customer-exp_")
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0] == "Name,Email,Source ID"  # the order the form lists them in
    assert sorted(lines[1:]) == [f"Export {i},e{i}@example.com,exp-{i}" for i in range(3)]


def test_a_customers_wallet_shows_their_points(console: Any, console_server: Console, screenshot: Shoot) -> None:
    api(
        console_server,
        "POST",
        "/v1/customers",
        {"source_id": "ola-n", "name": "Ola Nordmann", "email": "ola@example.com"},
    )
    api(
        console_server,
        "POST",
        "/v1/customers",
        {"source_id": "kari-n", "name": "Kari Nordmann", "email": "kari@example.com"},
    )
    program = api(
        console_server,
        "POST",
        "/v1/loyalties",
        {"name": "Shop club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
    )
    card = api(console_server, "POST", f"/v1/loyalties/{program['id']}/members", {"customer": {"source_id": "ola-n"}})
    api(console_server, "POST", f"/v1/loyalties/members/{card['code']}/balance", {"points": 1200})
    api(console_server, "POST", "/v1/vouchers/OLA-GIFT", {"type": "GIFT_VOUCHER", "gift": {"amount": 7500}})
    api(console_server, "POST", "/v1/publications", {"customer": {"source_id": "ola-n"}, "voucher": "OLA-GIFT"})
    make_code(console_server, "OLA-10")
    api(console_server, "POST", "/v1/publications", {"customer": {"source_id": "ola-n"}, "voucher": "OLA-10"})
    console.goto("/console/customers")
    console.get_by_test_id("customer-search").get_by_role("searchbox").fill("nordmann")
    console.get_by_role("button", name="Search").click()
    expect(console.get_by_test_id("customers-total")).to_have_text("2 customers")
    screenshot(console, "customers")
    console.get_by_role("link", name="Ola Nordmann").click()
    expect(console.get_by_test_id("customer-points")).to_have_text("1200", timeout=WORKER_WAIT_MS)
    expect(console.get_by_test_id(f"balance-{card['code']}")).to_have_text("1200 points")
    expect(console.get_by_test_id("balance-OLA-GIFT")).to_have_text("75.00 of 75.00")
    expect(console.get_by_test_id("balance-OLA-10")).to_have_text("10% off")
    screenshot(console, "customer")
