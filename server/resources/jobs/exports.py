"""``/v1/exports`` and the per-resource exports (orders, campaign, voucher and loyalty transactions,
points expirations); ``GET /v1/exports/{id}?token=`` downloads the file."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.body import read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.definitions import campaigns, vouchers
from voucherd.jobs import exports
from voucherd.loyalty import programs as loyalty


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def create_export(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        export = await exports.create(
            conn, ctx.redis, project_id(request), body, _base_url(request), request_id=request_id_of(request)
        )
    return ORJSONResponse(export)


async def list_exports(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await exports.list_page(conn, project_id(request), request.query_params, _base_url(request))
    return ORJSONResponse(body)


async def get_export(request: Request) -> Response:
    export_id = request.path_params["exportId"]
    token = request.query_params.get("token")
    ctx = context(request)
    if token is not None:  # the download link: the token is its credential (see server.auth)
        async with ctx.pool.acquire() as conn:
            filename, count = await exports.open_download(conn, export_id, token)
        return StreamingResponse(
            exports.chunks(ctx.pool, export_id, count),
            media_type="text/plain; charset=utf-8",  # the contract (and the SDK) read text/plain
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    async with ctx.pool.acquire() as conn:
        export = await exports.get(conn, project_id(request), export_id, _base_url(request))
    return ORJSONResponse(export)


async def delete_export(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        await exports.delete(conn, project_id(request), request.path_params["exportId"])
    return Response(status_code=204)


# --- per-resource exports ---


async def _scoped(request: Request, kind: str, column: str, value: str, shown: str) -> ORJSONResponse:
    body = await read_object(request, required=False)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        export = await exports.create_scoped(
            conn,
            ctx.redis,
            project_id(request),
            body,
            _base_url(request),
            exported_object=kind,
            column=column,
            value=value,
            shown=shown,
            request_id=request_id_of(request),
        )
    return ORJSONResponse(export)


async def export_orders(request: Request) -> ORJSONResponse:
    body = await read_object(request, required=False)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        export = await exports.create(
            conn,
            ctx.redis,
            project_id(request),
            body,
            _base_url(request),
            exported_object="order",
            request_id=request_id_of(request),
        )
    return ORJSONResponse(export)


async def export_campaign_transactions(request: Request) -> ORJSONResponse:
    ref = request.path_params["campaignId"]
    async with context(request).pool.acquire() as conn:
        campaign = await campaigns.fetch_row(conn, project_id(request), ref)
    return await _scoped(request, "voucher_transactions", "campaign_id", campaign["id"], campaign["id"])


async def export_program_transactions(request: Request) -> ORJSONResponse:
    ref = request.path_params["campaignId"]
    async with context(request).pool.acquire() as conn:
        program = await loyalty.program_row(conn, project_id(request), ref)
    return await _scoped(request, "voucher_transactions", "campaign_id", program["id"], program["id"])


async def export_voucher_transactions(request: Request) -> ORJSONResponse:
    code = request.path_params["code"]
    async with context(request).pool.acquire() as conn:
        voucher = await vouchers.fetch_row(conn, project_id(request), code)
    return await _scoped(request, "voucher_transactions", "voucher_id", voucher["id"], code)


async def export_member_transactions(request: Request) -> ORJSONResponse:
    member_id = request.path_params["memberId"]
    program = request.path_params.get("campaignId")
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), member_id, program)
    return await _scoped(request, "voucher_transactions", "voucher_id", card["id"], member_id)


async def export_points_expirations(request: Request) -> ORJSONResponse:
    ref = request.path_params["campaignId"]
    async with context(request).pool.acquire() as conn:
        program = await loyalty.program_row(conn, project_id(request), ref)
    return await _scoped(request, "points_expiration", "campaign_id", program["id"], program["id"])


routes = [
    resource("/v1/exports", GET=list_exports, POST=create_export),
    resource("/v1/exports/{exportId}", GET=get_export, DELETE=delete_export),
    resource("/v1/orders/export", POST=export_orders),
    resource("/v1/campaigns/{campaignId}/transactions/export", POST=export_campaign_transactions),
    resource("/v1/vouchers/{code}/transactions/export", POST=export_voucher_transactions),
    resource("/v1/loyalties/members/{memberId}/transactions/export", POST=export_member_transactions),
    resource("/v1/loyalties/{campaignId}/transactions/export", POST=export_program_transactions),
    resource("/v1/loyalties/{campaignId}/members/{memberId}/transactions/export", POST=export_member_transactions),
    resource("/v1/loyalties/{campaignId}/points-expiration/export", POST=export_points_expirations),
]
