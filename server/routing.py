"""``resource(path, GET=..., POST=...)``: one route per path, dispatching on the method.

Starlette matches the first route whose path fits, so splitting one path's methods
across routes would make a 405 name only the first route's methods in ``Allow``.
Before any handler runs, the dispatcher refuses what no handler can use: a query string
over ``MAX_QUERY_BYTES`` (413 ``query_too_large``), a NUL character (PostgreSQL text cannot
hold one) in the query (400 ``invalid_query_params``) or in a path parameter (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voucherd.platform.errors import InvalidQueryParams, NotFound, PayloadTooLarge

Handler = Callable[[Request], Awaitable[Response]]
MAX_QUERY_BYTES = 16 * 1024


def resource(path: str, **handlers: Handler) -> Route:
    by_method = {method.upper(): handler for method, handler in handlers.items()}

    async def dispatch(request: Request) -> Response:
        query: bytes = request.scope["query_string"]
        if len(query) > MAX_QUERY_BYTES:
            raise PayloadTooLarge(f"The query string is longer than {MAX_QUERY_BYTES} bytes.")
        if b"%00" in query or b"\x00" in query:
            raise InvalidQueryParams("Query parameters cannot contain NUL characters")
        for value in request.path_params.values():
            if "\x00" in value:
                raise NotFound(f"Cannot {request.method} {request.url.path}")
        return await by_method[request.method](request)

    dispatch.route_path = path  # type: ignore[attr-defined]  # the metrics' and access log's route label
    dispatch.handlers = by_method  # type: ignore[attr-defined]  # scripts/api_compat.py names each handler's module
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])
    return Route(path, dispatch, methods=list(by_method), name=path)
