"""Authentication by path family, before routing.

``/v1/*`` takes application keys, ``/client/v1/*`` client keys and
``/management/v1/*`` management keys; anything else (``/health``) is public. An export's download
link (``GET /v1/exports/{id}?token=…``) is its own credential: its handler checks the token.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import error_response
from voucherd.platform import origins
from voucherd.platform.errors import Forbidden, Unauthorized

_FAMILIES: tuple[tuple[str, str, bytes, bytes], ...] = (
    ("/v1/", "application", b"x-app-id", b"x-app-token"),
    ("/client/v1/", "client", b"x-client-application-id", b"x-client-token"),
    ("/management/v1/", "management", b"x-management-id", b"x-management-token"),
)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _is_download(scope: Scope, path: str) -> bool:
    return (
        path.startswith("/v1/exports/")
        and scope["method"] in ("GET", "HEAD")
        and path.count("/") == 3
        and any(part.partition(b"=")[0] == b"token" for part in scope["query_string"].split(b"&"))
    )


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        family = next((f for f in _FAMILIES if path.startswith(f[0])), None)
        if family is None or _is_download(scope, path):
            await self.app(scope, receive, send)
            return
        _prefix, kind, id_header, token_header = family
        key_id, token = _header(scope, id_header), _header(scope, token_header)
        keys = scope["app"].state.ctx.keys
        state = scope.setdefault("state", {})
        if key_id and token:
            if kind == "management":
                if await keys.management_ok(key_id, token):
                    await self.app(scope, receive, send)
                    return
            else:
                stored = await keys.key_for(kind, key_id, token)
                if stored is not None:
                    state["project_id"] = stored.project_id
                    if kind == "client":
                        origin = _header(scope, b"origin") or None
                        if not origins.allowed(origin, stored.settings.get("client_trusted_domains")):
                            refused = Forbidden(f"Origin {origin or '(none)'} is not a trusted domain of this project.")
                            await error_response(refused, state.get("request_id", ""))(scope, receive, send)
                            return
                        state["project_settings"] = stored.settings
                    await self.app(scope, receive, send)
                    return
        missing = "missing" if not (key_id and token) else "invalid"
        error = Unauthorized(f"The {kind} key is {missing}: send {id_header.decode()} and {token_header.decode()}.")
        await error_response(error, state.get("request_id", ""))(scope, receive, send)
