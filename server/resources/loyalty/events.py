"""``/v1/events``."""

from __future__ import annotations

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.loyalty import events


async def track_event(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        event = await events.track(conn, ctx.redis, project_id(request), body)
    return ORJSONResponse(event)


routes = [resource("/v1/events", POST=track_event)]
