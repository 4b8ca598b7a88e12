"""The live page: redemptions per second, p95 per API call and stream lag, drawn from the figures that
``GET /metrics`` serves. The page polls ``/console/live/figures`` (session-authorised JSON) every second;
``static/live.js`` keeps the last minutes and draws them as SVG line charts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.console.routing import page
from server.console.templating import render
from server.context import context
from server.responses import ORJSONResponse
from voucherd.platform import live_figures

WINDOW_SECONDS = 300


async def live_page(request: Request) -> Response:
    return await render(request, "live/live.html", {"window_seconds": WINDOW_SECONDS})


async def figures(request: Request) -> Response:
    ctx = context(request)
    body = await live_figures.snapshot(ctx.redis, ctx.settings.metrics_dir or None)
    return ORJSONResponse(body, headers={"Cache-Control": "no-store"})


routes = [
    page("/live", GET=live_page),
    page("/live/figures", GET=figures),
]
