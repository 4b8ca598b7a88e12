"""``/v1/campaigns`` and the codes of a campaign."""

from __future__ import annotations

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import campaigns
from voucherd.definitions import version as definitions
from voucherd.platform.errors import InvalidQueryParams


def _force(request: Request) -> bool:
    raw = request.query_params.get("force", "false").lower()
    if raw not in ("true", "false"):
        raise InvalidQueryParams("Query parameter force should be true or false")
    return raw == "true"


async def list_campaigns(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items, total = await campaigns.list_page(conn, project_id(request), request.query_params.multi_items())
    return ORJSONResponse(list_body("campaigns", items, total=total))


async def create_campaign(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        campaign = await campaigns.create(conn, ctx.redis, project_id(request), body, request_id_of(request))
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(campaign)


async def get_campaign(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        campaign = await campaigns.get(conn, project_id(request), request.path_params["campaignId"])
    return ORJSONResponse(campaign)


async def update_campaign(request: Request) -> ORJSONResponse:
    body = await read_object(request, clears=campaigns.CLEARS)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        campaign = await campaigns.update(conn, ctx.redis, project_id(request), request.path_params["campaignId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(campaign)


async def delete_campaign(request: Request) -> ORJSONResponse:
    ctx = context(request)
    force = _force(request)
    async with ctx.pool.acquire() as conn:
        action = await campaigns.delete(
            conn,
            ctx.redis,
            project_id(request),
            request.path_params["campaignId"],
            force=force,
            request_id=request_id_of(request),
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(action, status_code=202)


async def _set_active(request: Request, active: bool) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await campaigns.set_active(conn, project_id(request), request.path_params["campaignId"], active)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse({})


async def enable_campaign(request: Request) -> ORJSONResponse:
    return await _set_active(request, True)


async def disable_campaign(request: Request) -> ORJSONResponse:
    return await _set_active(request, False)


async def campaign_summary(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        summary = await campaigns.summary(conn, project_id(request), request.path_params["campaignId"])
    return ORJSONResponse(summary)


async def add_vouchers(request: Request) -> ORJSONResponse:
    body = await read_object(request, required=False)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        status, answer = await campaigns.add_vouchers(
            conn,
            ctx.redis,
            project_id(request),
            request.path_params["campaignId"],
            body,
            request.query_params.get("vouchers_count"),
            code=request.path_params.get("code"),
            request_id=request_id_of(request),
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(answer, status_code=status)


routes = [
    resource("/v1/campaigns", GET=list_campaigns, POST=create_campaign),
    resource("/v1/campaigns/{campaignId}", GET=get_campaign, PUT=update_campaign, DELETE=delete_campaign),
    resource("/v1/campaigns/{campaignId}/enable", POST=enable_campaign),
    resource("/v1/campaigns/{campaignId}/disable", POST=disable_campaign),
    resource("/v1/campaigns/{campaignId}/summary", GET=campaign_summary),
    resource("/v1/campaigns/{campaignId}/vouchers", POST=add_vouchers),
    resource("/v1/campaigns/{campaignId}/vouchers/{code}", POST=add_vouchers),
]
