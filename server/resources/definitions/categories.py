"""``/v1/categories``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import categories
from voucherd.definitions import version as definitions


async def list_categories(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await categories.list_all(conn, project_id(request))
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def create_category(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        category = await categories.create(conn, project_id(request), body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(category)


async def get_category(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        category = await categories.get(conn, project_id(request), request.path_params["categoryId"])
    return ORJSONResponse(category)


async def update_category(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        category = await categories.update(conn, project_id(request), request.path_params["categoryId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(category)


async def delete_category(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await categories.delete(conn, project_id(request), request.path_params["categoryId"])
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


routes = [
    resource("/v1/categories", GET=list_categories, POST=create_category),
    resource("/v1/categories/{categoryId}", GET=get_category, PUT=update_category, DELETE=delete_category),
]
