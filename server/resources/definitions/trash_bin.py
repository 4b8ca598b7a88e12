"""``/v1/trash-bin``: what was deleted without ``force``, and its deletion for good."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.definitions import trash_bin


async def list_entries(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await trash_bin.list_page(conn, project_id(request), request.query_params.multi_items())
    return ORJSONResponse(body)


async def delete_entry(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await trash_bin.delete(conn, ctx.redis, project_id(request), request.path_params["binEntryId"])
    return Response(status_code=204)


routes = [
    resource("/v1/trash-bin", GET=list_entries),
    resource("/v1/trash-bin/{binEntryId}", DELETE=delete_entry),
]
