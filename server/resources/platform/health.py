"""``GET /health``: 200 when Redis and PostgreSQL both answer, 503 otherwise."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.routing import Route

from server.context import context
from server.responses import ORJSONResponse

CHECK_TIMEOUT_S = 2.0


async def health(request: Request) -> ORJSONResponse:
    ctx = context(request)

    async def redis_ok() -> bool:
        return bool(await ctx.redis.ping())

    async def postgres_ok() -> bool:
        async with ctx.pool.acquire(timeout=CHECK_TIMEOUT_S) as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)

    results = {}
    for name, check in (("redis", redis_ok), ("postgres", postgres_ok)):
        try:
            results[name] = "ok" if await asyncio.wait_for(check(), CHECK_TIMEOUT_S) else "failing"
        except Exception as exc:
            results[name] = f"failing: {type(exc).__name__}"
    healthy = all(v == "ok" for v in results.values())
    return ORJSONResponse({"status": "ok" if healthy else "failing", **results}, status_code=200 if healthy else 503)


routes = [Route("/health", health, methods=["GET"])]
