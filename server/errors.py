"""Every error leaves as the Voucherify ``Error`` object, with the request id."""

from __future__ import annotations

import logging

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from server.responses import ORJSONResponse
from voucherd.platform.errors import (
    Forbidden,
    InternalError,
    InvalidPayload,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    VoucherdError,
)

log = logging.getLogger(__name__)

# A lost or refused connection to Redis or PostgreSQL (the worker retries the same ones in place).
UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    ConnectionRefusedError,
)

_BY_STATUS: dict[int, type[VoucherdError]] = {
    400: InvalidPayload,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: TooManyRequests,
}


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(error: VoucherdError, request_id: str) -> ORJSONResponse:
    return ORJSONResponse(error.body(request_id), status_code=error.code, headers=error.headers or None)


async def handle_voucherd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VoucherdError)
    return error_response(exc, request_id_of(request))


async def handle_unavailable(request: Request, exc: Exception) -> Response:
    """Redis or PostgreSQL unreachable: a 503 the client can retry, not a 500."""
    log.warning("storage unreachable during %s %s: %s", request.method, request.url.path, exc)
    error = ServiceUnavailable("A storage service is unreachable; retry shortly.")
    return error_response(error, request_id_of(request))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_class = _BY_STATUS.get(exc.status_code, InternalError)
    details = None
    if exc.status_code == 404:
        details = f"Cannot {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        details = f"{request.method} is not supported by this endpoint. Allowed: {allowed}"
    error = error_class(details, headers=dict(exc.headers or {}))
    return error_response(error, request_id_of(request))
