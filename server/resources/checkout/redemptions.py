"""``/v1/redemptions``: stackable redemption, reading redemptions back, rollbacks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.idempotent import idempotent
from server.query import int_param
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.checkout import redeem_request, redemption_queries, rollbacks
from voucherd.checkout import service as checkout


@idempotent
async def redeem(request: Request) -> ORJSONResponse:
    parsed = redeem_request.parse(await read_object(request))
    ctx = context(request)
    body = await checkout.redeem(ctx.checkout, project_id(request), parsed, request_id=request_id_of(request))
    return ORJSONResponse(body)


async def list_redemptions(request: Request) -> ORJSONResponse:
    q = request.query_params
    order = q.get("order", "-created_at")
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        items, total = await redemption_queries.list_page(
            ctx.redis,
            conn,
            project_id(request),
            limit=int_param(request, "limit", 10),
            page=int_param(request, "page", 1, maximum=99),
            result=q.get("result"),
            campaign=q.get("campaign"),
            customer=q.get("customer"),
            voucher_code=q.get("filters[voucher_code][conditions][$is]") or q.get("voucher_code"),
            parent_id=q.get("filters[parent_redemption_id][conditions][$is]"),
            descending=order.startswith("-"),
        )
    return ORJSONResponse(list_body("redemptions", items, total=total))


async def get_redemption(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        body = await redemption_queries.get(ctx.redis, conn, project_id(request), request.path_params["redemptionId"])
    return ORJSONResponse(body)


async def _rollback_params(request: Request) -> dict[str, Any]:
    body = await read_object(request, required=False)
    for name in ("reason", "tracking_id"):
        if name in request.query_params and name not in body:
            body[name] = request.query_params[name]
    return body


@idempotent
async def rollback(request: Request) -> ORJSONResponse:
    params = await _rollback_params(request)
    body = await rollbacks.rollback_single(
        context(request).checkout, project_id(request), request.path_params["redemptionId"], params,
        request_id=request_id_of(request),
    )  # fmt: skip
    return ORJSONResponse(body)


@idempotent
async def rollback_stacked(request: Request) -> ORJSONResponse:
    params = await _rollback_params(request)
    body = await rollbacks.rollback_stacked(
        context(request).checkout, project_id(request), request.path_params["parentId"], params,
        request_id=request_id_of(request),
    )  # fmt: skip
    return ORJSONResponse(body)


routes = [
    resource("/v1/redemptions", POST=redeem, GET=list_redemptions),
    resource("/v1/redemptions/{redemptionId}", GET=get_redemption),
    resource("/v1/redemptions/{redemptionId}/rollback", POST=rollback),
    resource("/v1/redemptions/{parentId}/rollbacks", POST=rollback_stacked),
]
