"""Reading request bodies: size limit, content type, JSON decoding."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from server.context import context
from voucherd.errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType


async def read_raw(request: Request) -> bytes:
    """The body's bytes, within the size limit; read once, then kept on the request."""
    cached: bytes | None = getattr(request.state, "raw_body", None)
    if cached is not None:
        return cached
    limit = context(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    request.state.raw_body = raw
    return raw


async def read_json(request: Request) -> Any:
    """The decoded JSON body, or None for an empty body (SDKs send those on body-less POSTs)."""
    raw = await read_raw(request)
    if not raw.strip():
        return None
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower():
        raise UnsupportedMediaType(f"Send the body as application/json, not {content_type}.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"The request body is not valid JSON: {exc}") from None


async def read_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` unless ``required``."""
    body = await read_json(request)
    if body is None:
        if required:
            raise InvalidPayload("The request body is empty; send a JSON object.")
        return {}
    if not isinstance(body, dict):
        raise InvalidPayload("The request body must be a JSON object.")
    return body
