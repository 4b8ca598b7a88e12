"""``/v1/vouchers``: codes, their state, balances and transactions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import campaigns, vouchers
from voucherd.definitions import version as definitions
from voucherd.platform.errors import InvalidQueryParams


async def list_vouchers(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        items, total = await vouchers.list_page(
            conn, ctx.redis, project_id(request), request.query_params.multi_items()
        )
    return ORJSONResponse(list_body("vouchers", items, total=total))


async def _bump_if_rules(redis: Any, project: str, body: dict[str, Any]) -> None:
    """A voucher's own state lives in its Redis hash, written with it; only validation rules attached to
    it are part of the per-process definitions, so only they make every server process reload."""
    if body.get("validation_rules") is not None:
        await definitions.bump(redis, project)


async def create_voucher(request: Request) -> ORJSONResponse:
    """``POST /v1/vouchers`` (generated code) and ``POST /v1/vouchers/{code}``."""
    body = await read_object(request, required=False)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        voucher = await campaigns.create_voucher(
            conn, ctx.redis, project_id(request), body, code=request.path_params.get("code")
        )
    await _bump_if_rules(ctx.redis, project_id(request), body)
    return ORJSONResponse(voucher)


async def get_voucher(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        voucher = await vouchers.get(conn, ctx.redis, project_id(request), request.path_params["code"])
    return ORJSONResponse(voucher)


async def update_voucher(request: Request) -> ORJSONResponse:
    body = await read_object(request, clears=vouchers.CLEARS)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        voucher = await vouchers.update(conn, ctx.redis, project_id(request), request.path_params["code"], body)
    await _bump_if_rules(ctx.redis, project_id(request), body)
    return ORJSONResponse(voucher)


async def delete_voucher(request: Request) -> Response:
    raw = request.query_params.get("force", "false").lower()
    if raw not in ("true", "false"):
        raise InvalidQueryParams("Query parameter force should be true or false")
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await vouchers.delete(conn, ctx.redis, project_id(request), request.path_params["code"], force=raw == "true")
    return Response(status_code=204)


async def _set_active(request: Request, active: bool) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        voucher = await vouchers.set_active(conn, ctx.redis, project_id(request), request.path_params["code"], active)
    return ORJSONResponse(voucher)


async def enable_voucher(request: Request) -> ORJSONResponse:
    return await _set_active(request, True)


async def disable_voucher(request: Request) -> ORJSONResponse:
    return await _set_active(request, False)


async def update_balance(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        balance = await vouchers.adjust_balance(
            conn, ctx.redis, ctx.pool, project_id(request), request.path_params["code"], body
        )
    return ORJSONResponse(balance)


async def list_transactions(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items, has_more = await vouchers.list_transactions(
            conn, project_id(request), request.path_params["code"], request.query_params.multi_items()
        )
    more_after = items[-1]["id"] if has_more and items else None
    return ORJSONResponse(list_body("data", items, has_more=has_more, more_starting_after=more_after))


routes = [
    resource("/v1/vouchers", GET=list_vouchers, POST=create_voucher),
    resource("/v1/vouchers/{code}", GET=get_voucher, POST=create_voucher, PUT=update_voucher, DELETE=delete_voucher),
    resource("/v1/vouchers/{code}/enable", POST=enable_voucher),
    resource("/v1/vouchers/{code}/disable", POST=disable_voucher),
    resource("/v1/vouchers/{code}/balance", POST=update_balance),
    resource("/v1/vouchers/{code}/transactions", GET=list_transactions),
]
