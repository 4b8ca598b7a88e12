"""``POST /v1/validations``: stackable validation."""

from __future__ import annotations

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.checkout import redeem_request
from voucherd.checkout import service as checkout


async def validate(request: Request) -> ORJSONResponse:
    parsed = redeem_request.parse(await read_object(request))
    body = await checkout.validate(context(request).checkout, project_id(request), parsed)
    return ORJSONResponse(body)


routes = [resource("/v1/validations", POST=validate)]
