"""Logging in with a project's application key (id + secret key), or a management key and a project id;
logging out. The keys are checked by the same cache the API's authentication uses."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.console import sessions
from server.console.forms import posted
from server.console.routing import page
from server.console.templating import render
from server.context import context
from voucherd.platform import projects
from voucherd.platform.errors import NotFound

HOME = "/console/campaigns"


def _next(raw: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    return raw if raw.startswith("/console/") and not raw.startswith("/console/login") and "//" not in raw else HOME


async def login_page(request: Request) -> Response:
    return await render(request, "login.html", {"next": _next(request.query_params.get("next", "")), "kind": ""})


async def log_in(request: Request) -> Response:
    data = await posted(request)
    ctx = context(request)
    kind = data.get("kind", "application")
    key_id, token = data.get("key_id", "").strip(), data.get("token", "").strip()
    project_id: str | None = None
    error = "The key id or its secret is wrong."
    if key_id and token and kind == "application":
        project_id = await ctx.keys.project_for("application", key_id, token)
    elif key_id and token and kind == "management" and await ctx.keys.management_ok(key_id, token):
        wanted = data.get("project_id", "").strip()
        try:
            async with ctx.pool.acquire() as conn:
                project_id = (await projects.get_project(conn, wanted))["id"] if wanted else None
        except NotFound:
            project_id = None
        error = "Give the id of an existing project to manage with this key."
    if project_id is None:
        values = {"next": _next(data.get("next", "")), "kind": kind, "key_id": key_id, "login_error": error}
        return await render(request, "login.html", values, status=401)
    session = await sessions.open_session(ctx.redis, project_id, kind, key_id)
    response = RedirectResponse(_next(data.get("next", "")), status_code=303)
    sessions.set_cookie(request, response, session)
    return response


async def log_out(request: Request) -> Response:
    await sessions.close_session(context(request).redis, sessions.current(request).token)
    response = RedirectResponse("/console/login", status_code=303)
    sessions.clear_cookie(response)
    return response


async def home(_request: Request) -> Response:
    return RedirectResponse(HOME, status_code=303)


routes = [
    page("/", GET=home),
    page("/login", GET=login_page, POST=log_in),
    page("/logout", POST=log_out),
]
