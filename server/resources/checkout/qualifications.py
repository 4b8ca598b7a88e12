"""``POST /v1/qualifications``: the incentives a customer can use on a cart."""

from __future__ import annotations

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.checkout import qualifications


async def qualify(request: Request) -> ORJSONResponse:
    parsed = qualifications.parse(await read_object(request, required=False))
    body = await qualifications.qualify(context(request).checkout, project_id(request), parsed)
    return ORJSONResponse(body)


routes = [resource("/v1/qualifications", POST=qualify)]
