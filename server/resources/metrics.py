"""``GET /metrics``: the Prometheus exposition of voucherd.metrics (public, like ``/health``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.context import context
from server.routing import resource
from voucherd import metrics


async def get_metrics(request: Request) -> Response:
    return Response(await metrics.render(context(request).redis), media_type=metrics.CONTENT_TYPE)


routes = [resource("/metrics", GET=get_metrics)]
