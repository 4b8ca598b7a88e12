"""``page(path, GET=..., POST=...)``: one console route per path, like ``server.routing.resource``.

A domain error that escapes a page (an unknown campaign id in the path, say) is shown as an HTML error
page with its status, not as the API's JSON body; forms catch their own refusals first
(``server.console.forms``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.console.templating import render
from voucherd.platform.errors import NotFound, VoucherdError

Handler = Callable[[Request], Awaitable[Response]]
PREFIX = "/console"


def page(path: str, **handlers: Handler) -> Route:
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def dispatch(request: Request) -> Response:
        try:
            if any("\x00" in value for value in request.path_params.values()):  # PostgreSQL text holds no NUL
                raise NotFound(f"Cannot {request.method} {request.url.path}")
            return await by_method[request.method](request)
        except VoucherdError as error:
            values = {"error": error, "details": error.details or error.instance_message or error.message}
            return await render(request, "error.html", values, status=error.code)

    dispatch.route_path = PREFIX + path  # type: ignore[attr-defined]  # the metrics' and access log's label
    return Route(path, dispatch, methods=list(by_method), name=PREFIX + path)
