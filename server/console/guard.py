"""The console's login check, around every console page except the login page and the static files.

A request without a live session is sent to the login page. With one, the request gets the session's
project id where the API's authentication puts it (``scope["state"]["project_id"]``), so a page calls
``server.context.project_id(request)`` exactly as an API handler does.

A form post whose ``Origin`` is another site is refused as well: the SameSite=Strict cookie already keeps
such posts unauthenticated, this says so plainly for browsers that send the header.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.console import sessions

PUBLIC = ("/console/login", "/console/static/")


def _cookie(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, token = part.strip().partition("=")
                if name == sessions.COOKIE:
                    return str(token)
    return ""


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), "")


def _foreign_origin(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return False
    host = _header(scope, b"host")
    return origin.split("://", 1)[-1] != host


class SessionGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] not in ("GET", "HEAD") and _foreign_origin(scope):
            await PlainTextResponse("Cross-site form posts are refused.", status_code=403)(scope, receive, send)
            return
        if path.startswith(PUBLIC):
            await self.app(scope, receive, send)
            return
        session = await sessions.load_session(scope["app"].state.ctx.redis, _cookie(scope))
        if session is None:
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
            login = f"/console/login?next={quote(target)}"
            if _header(scope, b"hx-request"):
                # The browser would follow a redirect inside htmx's request and swap the login form into a
                # fragment; HX-Redirect makes htmx load the login page as a whole page instead.
                await Response(status_code=200, headers={"HX-Redirect": login})(scope, receive, send)
            else:
                await RedirectResponse(login, status_code=303)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["console_session"] = session
        state["project_id"] = session.project_id
        await self.app(scope, receive, send)
