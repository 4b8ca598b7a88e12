"""``GET /openapi.json`` (no key needed): the contract of the endpoints voucherd serves.

The document is ``voucherd/openapi.json``, built from the Voucherify specification by
``scripts/build_openapi.py``; it is read once, when the first request asks for it.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from server.routing import resource


@functools.cache
def document() -> bytes:
    return resources.files("voucherd").joinpath("openapi.json").read_bytes()


async def get_openapi(request: Request) -> Response:
    return Response(document(), media_type="application/json")


routes = [resource("/openapi.json", GET=get_openapi)]
