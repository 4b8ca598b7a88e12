"""``/v1/promotions``: promotion tiers and promotion stacks."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.query import date_param
from server.resources.definitions.validation_rules import bool_param, paging
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import promotions
from voucherd.definitions import version as definitions

# ------------------------------------------------------------------------------------------------- tiers


async def list_all_tiers(request: Request) -> ORJSONResponse:
    limit, page = paging(request)
    async with context(request).pool.acquire() as conn:
        items, total = await promotions.list_all_tiers(
            conn,
            project_id(request),
            is_available=bool_param(request, "is_available"),
            limit=limit,
            page=page,
            order=request.query_params.get("order"),
        )
    return ORJSONResponse(list_body("tiers", items, total=total, has_more=page * limit < total))


async def campaign_tiers(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await promotions.campaign_tiers(conn, project_id(request), request.path_params["campaignId"])
    return ORJSONResponse(list_body("tiers", items, total=len(items), has_more=False))


async def create_tier(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        tier = await promotions.create_tier(conn, project_id(request), request.path_params["campaignId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(tier)


async def get_tier(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        tier = await promotions.get_tier(conn, project_id(request), request.path_params["promotionTierId"])
    return ORJSONResponse(tier)


async def update_tier(request: Request) -> ORJSONResponse:
    body = await read_object(request, clears=promotions.TIER_CLEARS)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        tier = await promotions.update_tier(conn, project_id(request), request.path_params["promotionTierId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(tier)


async def delete_tier(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await promotions.delete_tier(conn, project_id(request), request.path_params["promotionTierId"])
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


async def _set_active(request: Request, active: bool) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        tier = await promotions.set_tier_active(
            conn, project_id(request), request.path_params["promotionTierId"], active
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(tier)


async def enable_tier(request: Request) -> ORJSONResponse:
    return await _set_active(request, True)


async def disable_tier(request: Request) -> ORJSONResponse:
    return await _set_active(request, False)


# ------------------------------------------------------------------------------------------------- stacks


async def list_all_stacks(request: Request) -> ORJSONResponse:
    limit, page = paging(request)
    async with context(request).pool.acquire() as conn:
        items, total = await promotions.list_all_stacks(
            conn,
            project_id(request),
            limit=limit,
            page=page,
            order=request.query_params.get("order"),
            created_before=date_param(request, "created_at[before]"),
            created_after=date_param(request, "created_at[after]"),
            updated_before=date_param(request, "updated_at[before]"),
            updated_after=date_param(request, "updated_at[after]"),
        )
    return ORJSONResponse(list_body("data", items, total=total))


async def campaign_stacks(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await promotions.campaign_stacks(conn, project_id(request), request.path_params["campaignId"])
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def create_stack(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        stack = await promotions.create_stack(conn, project_id(request), request.path_params["campaignId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(stack)


async def get_stack(request: Request) -> ORJSONResponse:
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        stack = await promotions.get_stack(conn, project_id(request), params["campaignId"], params["stackId"])
    return ORJSONResponse(stack)


async def update_stack(request: Request) -> ORJSONResponse:
    body = await read_object(request, clears=promotions.STACK_CLEARS)
    params = request.path_params
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        stack = await promotions.update_stack(conn, project_id(request), params["campaignId"], params["stackId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(stack)


async def delete_stack(request: Request) -> Response:
    params = request.path_params
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await promotions.delete_stack(conn, project_id(request), params["campaignId"], params["stackId"])
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


# Fixed segments first: "/v1/promotions/tiers/…" and "/v1/promotions/stacks" must not be read as campaign ids.
routes = [
    resource("/v1/promotions/tiers", GET=list_all_tiers),
    resource("/v1/promotions/stacks", GET=list_all_stacks),
    resource("/v1/promotions/tiers/{promotionTierId}", GET=get_tier, PUT=update_tier, DELETE=delete_tier),
    resource("/v1/promotions/tiers/{promotionTierId}/enable", POST=enable_tier),
    resource("/v1/promotions/tiers/{promotionTierId}/disable", POST=disable_tier),
    resource("/v1/promotions/{campaignId}/tiers", GET=campaign_tiers, POST=create_tier),
    resource("/v1/promotions/{campaignId}/stacks", GET=campaign_stacks, POST=create_stack),
    resource("/v1/promotions/{campaignId}/stacks/{stackId}", GET=get_stack, PUT=update_stack, DELETE=delete_stack),
]
