"""The console's browser tests: a real voucherd (granian server + worker processes) on free ports, against
the session's Redis and PostgreSQL, driven by Playwright in Debian's headless Chromium.

Playwright's own browser download is not possible here, so the tests run the system's ``chromium``
(``scripts/ensure-chromium.sh`` installs it); without it they are skipped with that instruction.
``shoot(page, name)`` takes a full-page screenshot of each page. It lands in a scratch folder, so a test
run leaves the checkout as it was; ``make screenshots`` (VOUCHERD_SCREENSHOTS=docs/console) refreshes
the ones the README shows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from tests.processes import stop_group, wait_healthy
from voucherd.platform.localstack import free_port
from voucherd.platform.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("VOUCHERD_SCREENSHOTS") or tempfile.gettempdir() + "/voucherd-console-screenshots")
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM = os.environ.get("VOUCHERD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.slow
T = TypeVar("T")


@dataclass(frozen=True)
class Console:
    """A running voucherd for one test: its base URL, settings and the project the browser logs in to."""

    url: str
    settings: Settings
    project: ProjectKeys


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "voucherd.cli", *args], env=env, stdout=out, stderr=out, start_new_session=True
        )


@pytest.fixture
def console_server(settings: Settings, project: ProjectKeys, tmp_path: Path) -> Iterator[Console]:
    """voucherd serve (one granian process) and one worker (code generation, imports), as ``voucherd run``
    would start them; their output goes to ``tmp_path`` (shown when the test fails, see below)."""
    port = free_port()
    served = settings.with_(port=port, server_processes=1, worker_processes=1)
    env = {**os.environ, **served.to_env()}
    server = _start(["serve"], env, tmp_path / "server.log")
    worker = _start(["worker"], env, tmp_path / "worker.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield Console(url, served, project)
    finally:
        stop_group(worker)
        stop_group(server)


@pytest.fixture
def browser(console_server: Console) -> Iterator[Any]:
    """Headless Chromium, started per test after the storage fixtures: Playwright's sync API keeps an event
    loop running in this thread while it is open, so ``asyncio.run`` (the fixtures', ``run_async``'s
    callers') must happen before, or in another thread (``run_async``)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (or set VOUCHERD_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, console_server: Console) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the console's server, at a fixed viewport."""
    context = browser.new_context(base_url=console_server.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def log_in(page: Any, project: ProjectKeys) -> None:
    """Through the login form, with the project's application key."""
    page.goto("/console/login")
    form = page.get_by_test_id("login-application")
    form.get_by_label("Application id").fill(project.app_id)
    form.get_by_label("Secret key").fill(project.app_token)
    form.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/console/campaigns")


@pytest.fixture
def console(page: Any, console_server: Console) -> Any:
    """The browser page, logged in to the test's project (it lands on the campaigns page)."""
    log_in(page, console_server.project)
    return page


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(make())`` in a thread of its own: the test's thread has Playwright's loop running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def count_rows(settings: Settings, sql: str, *args: Any) -> int:
    """``SELECT count(*) ...`` on the test's database (from a browser test)."""

    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    return run_async(count)


def shoot(page: Any, name: str) -> Path:
    """A full-page screenshot of what the page shows now, kept as <SCREENSHOTS>/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True, animations="disabled")
    return target


@pytest.fixture
def logged_in(client: TestClient, project: ProjectKeys) -> TestClient:
    """The in-process app's test client with a console session of the test's project."""
    response = client.post(
        "/console/login",
        data={"kind": "application", "key_id": project.app_id, "token": project.app_token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return client


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    return shoot


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed browser test shows what the server and the worker wrote."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        tmp = getattr(item, "funcargs", {}).get("tmp_path")
        for name in ("server.log", "worker.log"):
            log = Path(tmp) / name if tmp else None
            if log is not None and log.exists():
                report.sections.append((name, log.read_text(errors="replace")[-4000:]))
