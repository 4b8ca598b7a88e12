"""``/v1/segments``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import segments


async def create_segment(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        segment = await segments.create(conn, ctx.redis, project_id(request), body)
    return ORJSONResponse(segment)


async def get_segment(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        segment = await segments.get(conn, project_id(request), request.path_params["segmentId"])
    return ORJSONResponse(segment)


async def delete_segment(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await segments.delete(conn, ctx.redis, project_id(request), request.path_params["segmentId"])
    return Response(status_code=204)


routes = [
    resource("/v1/segments", POST=create_segment),
    resource("/v1/segments/{segmentId}", GET=get_segment, DELETE=delete_segment),
]
