"""Checkout calls on one voucher: legacy validate/redeem, its redemptions, releasing a session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.idempotent import idempotent
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.checkout import legacy, redemption_queries, sessions
from voucherd.checkout import service as checkout
from voucherd.definitions import voucher_state
from voucherd.platform.errors import NotFound


async def validate_code(request: Request) -> ORJSONResponse:
    code = request.path_params["code"]
    parsed = legacy.as_stackable(code, await read_object(request, required=False))
    answer = await checkout.validate(context(request).checkout, project_id(request), parsed)
    return ORJSONResponse(legacy.validation_view(code, answer))


@idempotent
async def redeem_code(request: Request) -> ORJSONResponse:
    code = request.path_params["code"]
    parsed = legacy.as_stackable(code, await read_object(request, required=False))
    ctx = context(request)
    answer = await checkout.redeem(ctx.checkout, project_id(request), parsed, request_id=request_id_of(request))
    return ORJSONResponse(answer["redemptions"][0])


async def code_redemptions(request: Request) -> ORJSONResponse:
    code = request.path_params["code"]
    ctx = context(request)
    state = await voucher_state.load(ctx.redis, ctx.pool, project_id(request), code)
    if not state or state.get("missing"):
        raise NotFound.of("voucher", code)
    async with ctx.pool.acquire() as conn:
        entries, total = await redemption_queries.list_page(
            ctx.redis, conn, project_id(request), limit=100, page=1, voucher_code=code
        )
    quantity = int(state["quantity"]) if state.get("quantity") else None
    return ORJSONResponse(
        {
            "object": "list",
            "data_ref": "redemption_entries",
            "redemption_entries": entries,
            "total": total,
            "quantity": quantity,
            "redeemed_quantity": int(state.get("redeemed") or 0),
            "url": f"/v1/vouchers/{code}/redemptions?page=1&limit=10",
        }
    )


async def release_session(request: Request) -> Response:
    ctx = context(request)
    await sessions.release(
        ctx.redis, project_id(request), request.path_params["code"], request.path_params["sessionKey"]
    )
    return Response(status_code=204)


routes = [
    resource("/v1/vouchers/{code}/validate", POST=validate_code),
    resource("/v1/vouchers/{code}/redemption", POST=redeem_code, GET=code_redemptions),
    resource("/v1/vouchers/{code}/sessions/{sessionKey}", DELETE=release_session),
]
