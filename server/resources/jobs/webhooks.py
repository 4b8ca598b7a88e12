"""``/management/v1/projects/{projectId}/webhooks`` (CRUD) and the metadata key purge.

Purge: ``DELETE /management/v1/projects/{projectId}/metadata/{resource}/{key}`` with ``resource`` one of
campaigns, customers, products, vouchers, orders answers 202 ``{"async_action_id"}`` (type
``<RESOURCE>.METADATA_KEY_PURGE``); Voucherify offers this only in its dashboard.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context
from server.errors import request_id_of
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.jobs import bulk, webhooks


async def list_webhooks(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await webhooks.list_all(conn, request.path_params["projectId"])
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def create_webhook(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        hook = await webhooks.create(conn, request.path_params["projectId"], body)
    return ORJSONResponse(hook)


async def get_webhook(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        hook = await webhooks.get(conn, request.path_params["projectId"], request.path_params["webhookId"])
    return ORJSONResponse(hook)


async def update_webhook(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        hook = await webhooks.update(conn, request.path_params["projectId"], request.path_params["webhookId"], body)
    return ORJSONResponse(hook)


async def delete_webhook(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        await webhooks.delete(conn, request.path_params["projectId"], request.path_params["webhookId"])
    return Response(status_code=204)


async def list_deliveries(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await webhooks.deliveries(conn, request.path_params["projectId"], request.path_params["webhookId"])
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def list_attempts(request: Request) -> ORJSONResponse:
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        items = await webhooks.attempts(conn, params["projectId"], params["webhookId"], params["deliveryId"])
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def purge_metadata_key(request: Request) -> ORJSONResponse:
    ctx = context(request)
    params = request.path_params
    async with ctx.pool.acquire() as conn:
        answer = await bulk.enqueue_purge(
            conn, ctx.redis, params["projectId"], params["resource"], params["key"], request_id=request_id_of(request)
        )
    return ORJSONResponse(answer, status_code=202)


routes = [
    resource("/management/v1/projects/{projectId}/webhooks", GET=list_webhooks, POST=create_webhook),
    resource(
        "/management/v1/projects/{projectId}/webhooks/{webhookId}",
        GET=get_webhook,
        PUT=update_webhook,
        DELETE=delete_webhook,
    ),
    resource("/management/v1/projects/{projectId}/webhooks/{webhookId}/deliveries", GET=list_deliveries),
    resource(
        "/management/v1/projects/{projectId}/webhooks/{webhookId}/deliveries/{deliveryId}/attempts",
        GET=list_attempts,
    ),
    resource("/management/v1/projects/{projectId}/metadata/{resource}/{key}", DELETE=purge_metadata_key),
]
