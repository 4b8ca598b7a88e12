"""``GET /_floor``: one Redis Lua round trip and a tiny JSON answer, nothing else.

The load-test report divides every latency by this route's, measured in the same run on the same stack,
so a slow machine or a noisy neighbour shows up in both numbers instead of in the ratio. It sits outside
``/v1/`` so it needs no key, and it passes through the same middleware as every real call.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from server.context import context
from server.responses import ORJSONResponse

# A hash-tagged key, as every script's keys are, so the call is the same under Redis Cluster.
FLOOR_KEY = "{floor}:probe"


async def floor(request: Request) -> ORJSONResponse:
    hit = await context(request).scripts.floor(keys=[FLOOR_KEY], args=[])
    return ORJSONResponse({"ok": True, "hit": int(hit)})


routes = [Route("/_floor", floor, methods=["GET"])]
