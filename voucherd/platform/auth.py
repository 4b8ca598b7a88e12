"""Key verification with an in-process cache, so the hot path pays no database round trip.

Entries live ``ttl`` seconds: a revoked key or deleted project stops working
everywhere within that time (and at once in the process that deleted it). While
PostgreSQL cannot be reached, an expired entry keeps answering (re-checked every
``_OUTAGE_RETRY_S``), because an outage must delay persistence, never redemptions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from voucherd.platform import projects

_OUTAGE_RETRY_S = 1.0
# PostgreSQL unreachable, refusing, restarting or out of connections.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


@dataclass(frozen=True)
class _Entry:
    key: projects.StoredKey | None
    expires: float


class KeyCache:
    def __init__(self, pool: asyncpg.Pool, ttl: float) -> None:
        self._pool = pool
        self._ttl = ttl
        self._app: dict[str, _Entry] = {}
        self._management: dict[str, tuple[bytes | None, float]] = {}

    async def project_for(self, kind: str, key_id: str, token: str) -> str | None:
        """The project id that this key id + token opens for ``kind`` keys, or None."""
        key = await self.key_for(kind, key_id, token)
        return key.project_id if key is not None else None

    async def key_for(self, kind: str, key_id: str, token: str) -> projects.StoredKey | None:
        """The stored key (with its project's settings) that this key id + token opens, or None."""
        now = time.monotonic()
        entry = self._app.get(key_id)
        if entry is None or entry.expires < now:
            try:
                async with self._pool.acquire() as conn:
                    stored = await projects.find_key(conn, key_id)
            except _UNREACHABLE:
                if entry is None:
                    raise
                stored = entry.key  # serve the last answer through the outage
                entry = _Entry(stored, now + _OUTAGE_RETRY_S)
            else:
                entry = _Entry(stored, now + self._ttl)
            if len(self._app) > 10_000:  # unknown ids are cached too; keep a flood of them bounded
                self._app.clear()
            self._app[key_id] = entry
        stored = entry.key
        if stored is None or stored.kind != kind or not projects.token_matches(token, stored.token_hash):
            return None
        return stored

    async def management_ok(self, key_id: str, token: str) -> bool:
        now = time.monotonic()
        cached = self._management.get(key_id)
        if cached is None or cached[1] < now:
            try:
                async with self._pool.acquire() as conn:
                    digest = await projects.find_management_key(conn, key_id)
            except _UNREACHABLE:
                if cached is None:
                    raise
                digest, expires = cached[0], now + _OUTAGE_RETRY_S
            else:
                expires = now + self._ttl
            if len(self._management) > 1_000:
                self._management.clear()
            cached = (digest, expires)
            self._management[key_id] = cached
        digest = cached[0]
        return digest is not None and projects.token_matches(token, digest)

    def forget_project(self, project_id: str) -> None:
        for key_id, entry in list(self._app.items()):
            if entry.key is not None and entry.key.project_id == project_id:
                del self._app[key_id]
