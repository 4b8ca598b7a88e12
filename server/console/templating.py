"""Rendering console pages: one Jinja2 environment (autoescaped), the nav, the session's flash messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Undefined
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from server.console import sessions
from server.context import context

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# The nav, in order: (label, path). A page that belongs to a section links under its path.
NAV: tuple[tuple[str, str], ...] = (
    ("Campaigns", "/console/campaigns"),
    ("Validation rules", "/console/validation-rules"),
    ("Customers", "/console/customers"),
    ("Async actions", "/console/async-actions"),
    ("Exports", "/console/exports"),
    ("Webhooks", "/console/webhooks"),
    ("Live", "/console/live"),
)


def _filter_money(value: Any) -> str:
    """Minor units as a decimal amount (1050 -> 10.50); the console shows what a shop reads."""
    if value is None or value == "" or isinstance(value, Undefined):
        return ""
    return f"{int(value) / 100:.2f}"


def _filter_when(value: Any) -> str:
    """An ISO timestamp cut to the minute, in UTC as stored."""
    text = str(value or "")
    return text[:16].replace("T", " ") if text else ""


templates.env.filters["money"] = _filter_money
templates.env.filters["when"] = _filter_when


async def render(request: Request, name: str, values: dict[str, Any] | None = None, status: int = 200) -> Response:
    """A page (or an htmx fragment) of the console, with the nav, the session and its flash messages."""
    session = request.scope.get("state", {}).get("console_session")
    # A fragment htmx fetches (a poll) would eat the messages meant for the next whole page.
    whole_page = "hx-request" not in request.headers
    flashes = await sessions.take_flashes(context(request).redis, session) if session and whole_page else []
    page = {"nav": NAV, "session": session, "flashes": flashes, **(values or {})}
    return templates.TemplateResponse(request, name, page, status_code=status)


async def redirect(request: Request, path: str, message: str | None = None) -> Response:
    """After a successful post: to ``path`` (303, so a reload does not post again), with a flash message."""
    if message:
        await sessions.flash(context(request).redis, sessions.current(request), message)
    return RedirectResponse(path, status_code=303)
