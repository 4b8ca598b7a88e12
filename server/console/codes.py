"""A campaign's page: its facts, the progress of its code generation (refreshing itself until done), and its
codes with their redemption counts, searchable by code and paged. Reads are the ``/v1/vouchers`` list's."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.console.routing import page
from server.console.templating import render
from server.context import context, project_id
from voucherd.definitions import campaigns, vouchers
from voucherd.platform import async_actions

PAGE_SIZE = 50
MAX_PAGE = 99  # the vouchers list's own limit on pages
POLL_SECONDS = 1


async def _generation(request: Request, campaign: dict[str, Any]) -> dict[str, Any] | None:
    """The campaign's newest code generation, while the campaign is still being made (else None)."""
    if campaign["creation_status"] == "DONE":
        return None
    async with context(request).pool.acquire() as conn:
        return await async_actions.latest_for(
            conn, project_id(request), campaigns.GENERATE, "campaign_id", campaign["id"]
        )


async def campaign_page(request: Request) -> Response:
    ctx, pid = context(request), project_id(request)
    search = request.query_params.get("code", "").strip()
    raw_page = request.query_params.get("page", "1")
    number = min(int(raw_page), MAX_PAGE) if raw_page.isdigit() and int(raw_page) >= 1 else 1
    async with ctx.pool.acquire() as conn:
        campaign = await campaigns.get(conn, pid, request.path_params["campaignId"])
        query = [("campaign_id", campaign["id"]), ("limit", str(PAGE_SIZE)), ("page", str(number)), ("order", "code")]
        if search:
            query.append(("filters[code][conditions][$contains]", search))
        codes, total = await vouchers.list_page(conn, ctx.redis, pid, query)
    values = {
        "campaign": campaign,
        "codes": codes,
        "total": total,
        "search": search,
        "page": number,
        "pages": min(MAX_PAGE, max(1, -(-total // PAGE_SIZE))),
        "generation": await _generation(request, campaign),
        "poll_seconds": POLL_SECONDS,
        "codes_per_page": PAGE_SIZE,
    }
    return await render(request, "codes/campaign.html", values)


async def progress(request: Request) -> Response:
    """The generation's progress bar, polled by htmx; once the campaign is made, the page reloads whole."""
    async with context(request).pool.acquire() as conn:
        campaign = await campaigns.get(conn, project_id(request), request.path_params["campaignId"])
    generation = await _generation(request, campaign)
    response = await render(
        request,
        "codes/_progress.html",
        {"campaign": campaign, "generation": generation, "poll_seconds": POLL_SECONDS},
    )
    if generation is None or campaign["creation_status"] != "IN_PROGRESS":
        response.headers["HX-Refresh"] = "true"
    return response


routes = [
    page("/campaigns/{campaignId}/progress", GET=progress),
    page("/campaigns/{campaignId}", GET=campaign_page),
]
