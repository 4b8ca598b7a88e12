"""Campaigns in a real browser against a real server and worker: create a coupon campaign and watch its
generated codes appear, a refused form, enabling and disabling, the other create forms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.console.conftest import Console, count_rows

CODES = 120


def _fill(page: Any, values: dict[str, str]) -> None:
    for label, value in values.items():
        field = page.get_by_label(label, exact=True)
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def test_a_coupon_campaign_shows_its_codes_once_generated(
    console: Any, console_server: Console, screenshot: Callable[[Any, str], Path]
) -> None:
    page = console
    screenshot(page, "campaigns-empty")
    page.get_by_role("link", name="New coupon campaign").click()
    page.wait_for_url("**/console/campaigns/new/coupon")
    _fill(
        page,
        {
            "Name": "Black Friday",
            "Discount type": "PERCENT",
            "Percent off": "25",
            "Redemptions per code": "2",
            "Number of codes": str(CODES),
            "Code prefix": "BF-",
            "Code length": "8",
        },
    )
    screenshot(page, "campaign-new-coupon")
    page.get_by_role("button", name="Create coupon campaign").click()
    page.wait_for_url("**/console/campaigns/camp_*")
    expect(page.get_by_role("status")).to_contain_text("Campaign Black Friday created.")
    if page.get_by_test_id("generation").is_visible():
        screenshot(page, "campaign-generating")
    # the page polls the generation and reloads itself when it is done
    expect(page.get_by_test_id("codes-total")).to_have_text(f"{CODES} codes · page 1 of 3", timeout=60_000)
    expect(page.get_by_test_id("creation-status")).to_have_text("DONE")
    expect(page.get_by_test_id("generation")).to_have_count(0)
    rows = page.locator("[data-testid=codes] tbody tr")
    expect(rows).to_have_count(50)
    first = rows.first.get_attribute("data-code") or ""
    assert first.startswith("BF-")
    assert len(first) == len("BF-") + 8
    assert rows.first.get_by_test_id("redeemed").inner_text() == "0"
    assert rows.first.locator("td").nth(3).inner_text() == "2"
    screenshot(page, "campaign-codes")

    page.get_by_role("link", name="Next →").click()
    expect(page.get_by_test_id("codes-total")).to_have_text(f"{CODES} codes · page 2 of 3")

    page.get_by_placeholder("Search by code").fill(first[3:])
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-code") == first

    # a redemption through the API shows in the code's count at once (the count is the live one)
    redeemed = httpx.post(
        f"{console_server.url}/v1/redemptions",
        json={"redeemables": [{"object": "voucher", "id": first}], "order": {"amount": 10_000}},
        headers=console_server.project.headers,
        timeout=10,
    )
    assert redeemed.status_code == 200, redeemed.text
    page.reload()
    expect(rows.first.get_by_test_id("redeemed")).to_have_text("1")

    page.get_by_role("link", name="Campaigns").first.click()
    row = page.locator("tr[data-campaign='Black Friday']")
    expect(row.locator("td").nth(3)).to_have_text(str(CODES))
    screenshot(page, "campaigns")
    assert count_rows(console_server.settings, "SELECT count(*) FROM vouchers") == CODES


def test_a_refused_form_shows_the_error_beside_the_field_and_writes_nothing(
    console: Any, console_server: Console, screenshot: Callable[[Any, str], Path]
) -> None:
    page = console
    page.goto("/console/campaigns/new/coupon")
    _fill(page, {"Name": "Too generous", "Discount type": "PERCENT", "Percent off": "150", "Number of codes": "5"})
    page.get_by_role("button", name="Create coupon campaign").click()
    error = page.get_by_test_id("error-voucher.discount.percent_off")
    expect(error).to_have_text("Property .voucher.discount.percent_off should be at most 100")
    # beside its field: inside the same field block, right under the input
    block = page.locator("[data-field='voucher.discount.percent_off']")
    expect(block.locator(".field-error")).to_have_count(1)
    expect(page.locator(".field-error")).to_have_count(1)
    expect(page.get_by_label("Name", exact=True)).to_have_value("Too generous")
    screenshot(page, "campaign-new-refused")
    settings = console_server.settings
    assert count_rows(settings, "SELECT count(*) FROM campaigns") == 0
    assert count_rows(settings, "SELECT count(*) FROM vouchers") == 0
    assert count_rows(settings, "SELECT count(*) FROM async_actions") == 0


def test_enable_and_disable_a_campaign(console: Any, console_server: Console) -> None:
    page = console
    page.goto("/console/campaigns/new/gift")
    _fill(page, {"Name": "Gift cards", "Card balance": "50.00", "Number of codes": "1"})
    page.get_by_role("button", name="Create gift cards").click()
    page.wait_for_url("**/console/campaigns/camp_*")
    expect(page.get_by_test_id("codes-total")).to_have_text("1 code")
    assert page.locator("[data-testid=codes] tbody tr td").nth(4).inner_text() == "50.00"
    page.get_by_role("link", name="Campaigns").first.click()
    row = page.locator("tr[data-campaign='Gift cards']")
    expect(row.get_by_test_id("active")).to_have_text("active")
    row.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_have_text("Campaign Gift cards disabled.")
    expect(row.get_by_test_id("active")).to_have_text("inactive")
    assert count_rows(console_server.settings, "SELECT count(*) FROM campaigns WHERE active") == 0
    row.get_by_role("button", name="Enable").click()
    expect(row.get_by_test_id("active")).to_have_text("active")
    assert count_rows(console_server.settings, "SELECT count(*) FROM campaigns WHERE active") == 1


def test_a_promotion_with_tiers_and_a_loyalty_program(
    console: Any, console_server: Console, screenshot: Callable[[Any, str], Path]
) -> None:
    page = console
    page.goto("/console/campaigns/new/promotion")
    _fill(
        page,
        {
            "Name": "Spend more",
            "Tier name": "Over 100",
            "Banner": "10% off orders over 100",
            "Discount type": "PERCENT",
            "Percent off": "10",
            "Second tier name": "Over 200",
            "Second tier discount (JSON)": '{"type": "AMOUNT", "amount_off": 3000}',
        },
    )
    screenshot(page, "campaign-new-promotion")
    page.get_by_role("button", name="Create promotion").click()
    page.wait_for_url("**/console/campaigns/camp_*")
    expect(page.locator("dl.facts")).to_contain_text("Over 100 (10% off orders over 100), Over 200")
    assert count_rows(console_server.settings, "SELECT count(*) FROM promotion_tiers") == 2

    page.goto("/console/campaigns/new/loyalty")
    _fill(page, {"Name": "Points club", "Points on a new card": "100", "Number of codes": "3"})
    screenshot(page, "campaign-new-loyalty")
    page.get_by_role("button", name="Create loyalty program").click()
    page.wait_for_url("**/console/campaigns/camp_*")
    expect(page.get_by_test_id("codes-total")).to_have_text("3 codes", timeout=60_000)
    expect(page.locator("[data-testid=codes] tbody tr").first.locator("td").nth(4)).to_have_text("100")
    screenshot(page, "campaign-loyalty")
