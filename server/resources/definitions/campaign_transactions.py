"""``GET /v1/campaigns/{campaignId}/transactions``."""

from __future__ import annotations

from starlette.requests import Request

from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.definitions import campaign_transactions


async def list_transactions(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await campaign_transactions.list_page(
            conn, project_id(request), request.path_params["campaignId"], request.query_params.multi_items()
        )
    return ORJSONResponse(body)


routes = [resource("/v1/campaigns/{campaignId}/transactions", GET=list_transactions)]
