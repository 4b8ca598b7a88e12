"""Campaigns: the list, enable/disable, and the create forms (coupons with generated codes, promotions with
tiers, gift cards, loyalty programs). Each action is the call the ``/v1/campaigns`` handlers make."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.console.routing import page
from server.console.templating import render
from server.context import context, project_id
from voucherd.definitions import campaigns

PAGE_SIZE = 50


async def list_page(request: Request) -> Response:
    number = request.query_params.get("page", "1")
    query = [("limit", str(PAGE_SIZE)), ("page", number if number.isdigit() else "1")]
    async with context(request).pool.acquire() as conn:
        items, total = await campaigns.list_page(conn, project_id(request), query)
    return await render(request, "campaigns/list.html", {"campaigns": items, "total": total})


routes = [
    page("/campaigns", GET=list_page),
]
