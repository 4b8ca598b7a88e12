"""``resource(path, GET=..., POST=...)``: one route per path, dispatching on the method.

Starlette matches the first route whose path fits, so splitting one path's methods
across routes would make a 405 name only the first route's methods in ``Allow``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


def resource(path: str, **handlers: Handler) -> Route:
    by_method = {method.upper(): handler for method, handler in handlers.items()}

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])
    return Route(path, dispatch, methods=list(by_method), name=path)
