"""Creating a validation rule in a real browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import Console, count_rows


def test_create_a_validation_rule_and_see_a_refusal_beside_its_field(
    console: Any, console_server: Console, screenshot: Callable[[Any, str], Path]
) -> None:
    page = console
    page.get_by_role("link", name="Validation rules").click()
    page.wait_for_url("**/console/validation-rules")
    form = page.get_by_test_id("form-validation-rule")
    form.get_by_label("Name", exact=True).fill("Bad rules")
    form.get_by_label("Rules (JSON)").fill('{"1": {"name": "order.amount", "conditions": {"$huge": [1]}}}')
    form.get_by_role("button", name="Create validation rule").click()
    expect(page.get_by_test_id("error-rules")).to_have_text("rules.1.conditions: '$huge' is not a known operator")
    screenshot(page, "validation-rules-refused")
    assert count_rows(console_server.settings, "SELECT count(*) FROM validation_rules") == 0

    form.get_by_label("Name", exact=True).fill("Orders over 100")
    form.get_by_label("Rules (JSON)").fill("")
    form.get_by_label("Order amount more than").fill("100")
    form.get_by_label("Message when the rule is not met").fill("Spend more than 100.00")
    form.get_by_role("button", name="Create validation rule").click()
    expect(page.get_by_role("status")).to_have_text("Validation rule Orders over 100 created.")
    row = page.locator("tr[data-rule='Orders over 100']")
    expect(row).to_contain_text('"$more_than": [10000]')
    expect(page.get_by_test_id("error-rules")).to_have_count(0)
    screenshot(page, "validation-rules")
    assert count_rows(console_server.settings, "SELECT count(*) FROM validation_rules") == 1
