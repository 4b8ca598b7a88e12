"""``GET /metrics``: the Prometheus exposition of voucherd.platform.metrics (public, like ``/health``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.context import context
from server.routing import resource
from voucherd.platform import instruments, metrics


async def get_metrics(request: Request) -> Response:
    ctx = context(request)
    # The worker's series (kept in Redis), then this server's own (in-process, all its processes).
    async with ctx.pool.acquire() as conn:
        webhooks = await metrics.render_webhooks(conn)
    body = await metrics.render(ctx.redis) + webhooks + instruments.render(ctx.settings.metrics_dir or None)
    return Response(body, media_type=metrics.CONTENT_TYPE)


routes = [resource("/metrics", GET=get_metrics)]
