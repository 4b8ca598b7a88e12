"""``GET /health``: which part is down (voucherd.health); 200 while checkout can be answered, else 503."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from server.context import context
from server.responses import ORJSONResponse
from voucherd import health as checks


async def health(request: Request) -> ORJSONResponse:
    ctx = context(request)

    async def postgres() -> None:
        async with ctx.pool.acquire(timeout=checks.CHECK_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")

    body = await checks.report(ctx.redis, postgres)
    return ORJSONResponse(body, status_code=200 if checks.serving(body) else 503)


routes = [Route("/health", health, methods=["GET"])]
