"""Logging in and out of the console in a real browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.console.conftest import Console, log_in

LOGIN_WITH_NEXT = re.compile(r"/console/login\?next=/console/campaigns$")


def test_logging_in_opens_the_console_and_logging_out_closes_it(
    page: Any, console_server: Console, screenshot: Callable[[Any, str], Path]
) -> None:
    page.goto("/console/campaigns")
    page.wait_for_url(LOGIN_WITH_NEXT)
    screenshot(page, "login")
    form = page.get_by_test_id("login-application")
    form.get_by_label("Application id").fill(console_server.project.app_id)
    form.get_by_label("Secret key").fill("not the secret")
    form.get_by_role("button", name="Log in").click()
    assert page.get_by_test_id("login-error").inner_text() == "The key id or its secret is wrong."

    log_in(page, console_server.project)
    assert page.get_by_role("heading", name="Campaigns").is_visible()
    nav = [link.inner_text() for link in page.locator("header nav a").all()]
    assert nav == ["Campaigns", "Validation rules", "Customers", "Async actions", "Exports", "Webhooks", "Live"]
    cookie = next(c for c in page.context.cookies() if c["name"] == "voucherd_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/console/login")
    page.goto("/console/campaigns")
    page.wait_for_url(LOGIN_WITH_NEXT)
