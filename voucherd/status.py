"""``voucherd status``: the health report of ``GET /health`` (voucherd.health), each stream's
length, lag, pending and dead letters, and the async actions waiting."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd import db, health, keys

GROUP = health.GROUP


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _stream(redis: aioredis.Redis, stream_key: str) -> dict[str, Any]:
    info: dict[str, Any] = {"stream": stream_key, "length": await redis.xlen(stream_key)}
    try:
        groups = await redis.xinfo_groups(stream_key)
    except aioredis.ResponseError:
        groups = []
    group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
    info["pending"] = int(group.get("pending", 0)) if group else 0
    info["lag"] = group.get("lag") if group else info["length"]
    info["dead_letters"] = await redis.xlen(keys.dead_letter_for(stream_key))
    return info


async def collect(redis: aioredis.Redis, database_url: str) -> dict[str, Any]:
    """The report; PostgreSQL is reached here, so that its being down is reported rather than raised."""
    conn: asyncpg.Connection | None = None

    async def postgres() -> None:
        nonlocal conn
        conn = await db.connect(database_url)
        await conn.fetchval("SELECT 1")

    try:
        report = await health.report(redis, postgres)
        if report["redis"] == health.OK:
            report["streams"] = [await _stream(redis, key) for key in await health.stream_keys(redis)]
        if report["postgres"] == health.OK and conn is not None:
            rows = await conn.fetch(
                "SELECT type, status, count(*) AS n FROM async_actions WHERE status IN ('ENQUEUED', 'IN_PROGRESS') "
                "GROUP BY type, status ORDER BY type, status"
            )
            report["async_actions_waiting"] = [dict(r) for r in rows]
        return report
    finally:
        if conn is not None:
            await conn.close()
