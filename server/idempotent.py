"""Wraps a handler so that an ``Idempotency-Key`` header makes retries safe (see voucherd.checkout.idempotency)."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_raw
from server.context import context, project_id
from server.errors import error_response, request_id_of
from server.routing import Handler
from voucherd.checkout import idempotency
from voucherd.platform.errors import VoucherdError

HEADER = "idempotency-key"


def idempotent(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return await handler(request)
        scripts = context(request).scripts
        raw = await read_raw(request)
        fingerprint = idempotency.fingerprint(request.method, request.url.path + "?" + request.url.query, raw)
        claim = await idempotency.begin(scripts, project_id(request), key, fingerprint)
        if isinstance(claim, idempotency.StoredAnswer):
            return Response(claim.body, status_code=claim.status, media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})  # fmt: skip
        try:
            response = await handler(request)
        except VoucherdError as error:
            response = error_response(error, request_id_of(request))
        except BaseException:
            await idempotency.abandon(scripts, claim)
            raise
        await idempotency.finish(scripts, claim, response.status_code, bytes(response.body))
        return response

    return wrapped
