"""``/v1/referrals``: holders of referral codes (issue 9)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.loyalty import referrals


def _campaign(request: Request) -> str | None:
    value = request.path_params.get("campaignId")
    return str(value) if value is not None else None


async def list_holders(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        voucher = await referrals.member_code(
            conn, project_id(request), request.path_params["memberId"], _campaign(request)
        )
        body = await referrals.list_holders(conn, project_id(request), voucher, request.query_params.multi_items())
    return ORJSONResponse(body)


async def add_holders(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        voucher = await referrals.member_code(
            conn, project_id(request), request.path_params["memberId"], _campaign(request)
        )
        added = await referrals.add_holders(conn, ctx.redis, project_id(request), voucher, body)
    return ORJSONResponse(added)


async def remove_holder(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        voucher = await referrals.member_code(
            conn, project_id(request), request.path_params["memberId"], _campaign(request)
        )
        await referrals.remove_holder(conn, project_id(request), voucher, request.path_params["holderId"])
    return Response(status_code=204)


routes = [
    resource("/v1/referrals/members/{memberId}/holders", GET=list_holders, POST=add_holders),
    resource("/v1/referrals/members/{memberId}/holders/{holderId}", DELETE=remove_holder),
    resource("/v1/referrals/{campaignId}/members/{memberId}/holders", GET=list_holders, POST=add_holders),
    resource("/v1/referrals/{campaignId}/members/{memberId}/holders/{holderId}", DELETE=remove_holder),
]
