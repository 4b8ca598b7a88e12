"""``/v1/async-actions``."""

from __future__ import annotations

from starlette.requests import Request

from server.context import context, project_id
from server.query import date_param, int_param
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.platform import async_actions


async def list_actions(request: Request) -> ORJSONResponse:
    limit = int_param(request, "limit", 10)
    end_date = date_param(request, "end_date")
    async with context(request).pool.acquire() as conn:
        items, has_more = await async_actions.list_recent(conn, project_id(request), limit, end_date)
    return ORJSONResponse(list_body("async_actions", items, has_more=has_more))


async def get_action(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        action = await async_actions.get(conn, project_id(request), request.path_params["asyncActionId"])
    return ORJSONResponse(action)


routes = [
    resource("/v1/async-actions", GET=list_actions),
    resource("/v1/async-actions/{asyncActionId}", GET=get_action),
]
