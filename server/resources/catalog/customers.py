"""``/v1/customers``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.query import int_param
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import customers
from voucherd.checkout import customer_wallet, pending_parties


async def list_customers(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await customers.list_page(conn, project_id(request), request.query_params)
    return ORJSONResponse(body)


async def create_customer(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        customer = await customers.create(conn, ctx.redis, project_id(request), body)
    return ORJSONResponse(customer)


async def get_customer(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        customer = await pending_parties.get_customer(
            ctx.redis, conn, project_id(request), request.path_params["customerId"]
        )
    return ORJSONResponse(customer)


async def update_customer(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        customer = await customers.update(conn, ctx.redis, project_id(request), request.path_params["customerId"], body)
    return ORJSONResponse(customer)


async def delete_customer(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await customers.delete(conn, ctx.redis, project_id(request), request.path_params["customerId"])
    return Response(status_code=204)


async def delete_customer_permanently(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        result = await customers.delete_permanently(
            conn, ctx.redis, project_id(request), request.path_params["customerId"]
        )
    return ORJSONResponse(result)


async def list_activity(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await customers.activity(
            conn, project_id(request), request.path_params["customerId"], request.query_params
        )
    return ORJSONResponse(body)


async def list_segments(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await customers.customer_segments(conn, project_id(request), request.path_params["customerId"])
    return ORJSONResponse(body)


async def list_redeemables(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        body = await customer_wallet.list_page(
            conn,
            ctx.redis,
            project_id(request),
            request.path_params["customerId"],
            limit=int_param(request, "limit", 10),
            starting_after_id=request.query_params.get("starting_after_id"),
            descending=request.query_params.get("order", "created_at").startswith("-"),
        )
    return ORJSONResponse(body)


routes = [
    resource("/v1/customers", GET=list_customers, POST=create_customer),
    resource("/v1/customers/{customerId}", GET=get_customer, PUT=update_customer, DELETE=delete_customer),
    resource("/v1/customers/{customerId}/permanent-deletion", POST=delete_customer_permanently),
    resource("/v1/customers/{customerId}/activity", GET=list_activity),
    resource("/v1/customers/{customerId}/segments", GET=list_segments),
    resource("/v1/customers/{customerId}/redeemables", GET=list_redeemables),
]
