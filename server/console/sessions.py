"""Console sessions: a random token in an HttpOnly cookie, the session itself in Redis.

The cookie holds only the token; Redis holds which project the session opens and with which kind of
key, never the secret that was pasted. A session expires ``SESSION_SECONDS`` after its last page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response

from voucherd.platform import keys

COOKIE = "voucherd_console"
SESSION_SECONDS = 8 * 3600
FLASH_SECONDS = 300


@dataclass(frozen=True)
class Session:
    token: str
    project_id: str
    key_kind: str  # "application" or "management"
    key_id: str  # shown in the header, so the user sees which key is in use (the id is not a secret)


async def open_session(redis: aioredis.Redis, project_id: str, key_kind: str, key_id: str) -> Session:
    token = secrets.token_urlsafe(32)
    data = orjson.dumps({"project_id": project_id, "key_kind": key_kind, "key_id": key_id})
    await redis.set(keys.console_session(token), data, ex=SESSION_SECONDS)
    return Session(token, project_id, key_kind, key_id)


async def load_session(redis: aioredis.Redis, token: str) -> Session | None:
    """The session this token opens, its life extended; None when unknown or expired."""
    if not token or len(token) > 100:
        return None
    key = keys.console_session(token)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.expire(key, SESSION_SECONDS)
        raw, _ = await pipe.execute()
    if raw is None:
        return None
    data = orjson.loads(raw)
    return Session(token, data["project_id"], data["key_kind"], data["key_id"])


async def close_session(redis: aioredis.Redis, token: str) -> None:
    await redis.delete(keys.console_session(token), keys.console_flash(token))


def set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=SESSION_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",  # a form posted from another site carries no cookie: no cross-site writes
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")


async def flash(redis: aioredis.Redis, session: Session, message: str) -> None:
    """A message for the session's next page (shown once)."""
    key = keys.console_flash(session.token)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.rpush(key, message)
        pipe.expire(key, FLASH_SECONDS)
        await pipe.execute()


async def take_flashes(redis: aioredis.Redis, session: Session) -> list[str]:
    key = keys.console_flash(session.token)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        raw, _ = await pipe.execute()
    return [item.decode() if isinstance(item, bytes) else str(item) for item in raw]


def current(request: Request) -> Session:
    """The session of a console page's request (set by ``server.console.guard``)."""
    session: Session = request.scope["state"]["console_session"]
    return session
