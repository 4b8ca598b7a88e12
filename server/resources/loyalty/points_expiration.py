"""``GET /v1/loyalties/{campaignId}/members/{memberId}/points-expiration``."""

from __future__ import annotations

from starlette.requests import Request

from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.loyalty import points_expiration
from voucherd.loyalty import programs as loyalty


async def list_points_expiration(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(
            conn, project_id(request), request.path_params["memberId"], request.path_params["campaignId"]
        )
        body = await points_expiration.list_buckets(conn, ctx.redis, project_id(request), card, request.query_params)
    return ORJSONResponse(body)


routes = [
    resource("/v1/loyalties/{campaignId}/members/{memberId}/points-expiration", GET=list_points_expiration),
]
