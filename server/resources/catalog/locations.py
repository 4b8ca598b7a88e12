"""``/v1/locations`` (read only)."""

from __future__ import annotations

from starlette.requests import Request

from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import locations


async def list_locations(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await locations.list_page(conn, project_id(request), request.query_params.multi_items())
    return ORJSONResponse(body)


async def get_location(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await locations.get(conn, project_id(request), request.path_params["locationId"])
    return ORJSONResponse(body)


routes = [
    resource("/v1/locations", GET=list_locations),
    resource("/v1/locations/{locationId}", GET=get_location),
]
