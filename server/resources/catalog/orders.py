"""``/v1/orders``."""

from __future__ import annotations

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import orders
from voucherd.checkout import pending_parties


async def list_orders(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await orders.list_page(conn, project_id(request), request.query_params)
    return ORJSONResponse(body)


async def create_order(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        order = await orders.create(conn, ctx.redis, project_id(request), body)
    return ORJSONResponse(order)


async def get_order(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        order = await pending_parties.get_order(ctx.redis, conn, project_id(request), request.path_params["orderId"])
    return ORJSONResponse(order)


async def update_order(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        order = await orders.update(conn, ctx.redis, project_id(request), request.path_params["orderId"], body)
    return ORJSONResponse(order)


routes = [
    resource("/v1/orders", GET=list_orders, POST=create_order),
    resource("/v1/orders/{orderId}", GET=get_order, PUT=update_order),
]
