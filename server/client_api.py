"""What the client-side API (``/client/v1/*``, called from browsers and apps) adds to the server one:
CORS answers, and a per-IP request limit counted in Redis so it holds across server processes.

The limit runs before authentication, so guessing keys is limited too. Origins are checked
against the project's trusted domains once the client key is known (server/auth.py).
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voucherd.platform import keys
from voucherd.platform.errors import TooManyRequests

PREFIX = "/client/v1/"
ALLOWED_HEADERS = b"Content-Type, X-Client-Application-Id, X-Client-Token, X-Voucherify-Channel, Idempotency-Key"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def client_ip(scope: Scope, trust_proxy: bool) -> str:
    if trust_proxy:
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            return forwarded.split(b",")[0].strip().decode("latin-1")
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ClientApiMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        cors = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")] if origin else []
        if scope["method"] == "OPTIONS":
            # A preflight carries no keys, so it cannot be judged per project; the real request is.
            headers = [
                *cors,
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", b"600"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        ctx = scope["app"].state.ctx
        settings = ctx.settings
        allowed, wait_ms = await ctx.scripts.rate_limit(
            keys=[keys.client_rate(client_ip(scope, settings.trust_proxy))],
            args=[settings.client_rate_limit, settings.client_rate_window_ms],
        )
        if not allowed:
            request_id = scope.get("state", {}).get("request_id", "")
            body = orjson.dumps(TooManyRequests().body(request_id))
            retry_after = str(max(1, (int(wait_ms) + 999) // 1000)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", retry_after), *cors],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors:
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)
