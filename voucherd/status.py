"""``voucherd status``: is storage up, how far behind are the workers, what is waiting."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.checkout import redemption_records
from voucherd.platform import keys
from voucherd.platform.async_actions import STREAM as ASYNC_ACTIONS

GROUP = "voucherd"  # the workers' consumer group (worker.loop.GROUP)


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


async def collect(redis: aioredis.Redis, conn: asyncpg.Connection) -> dict[str, Any]:
    report: dict[str, Any] = {"redis": "ok", "postgres": "ok"}
    try:
        await redis.ping()
    except Exception as exc:
        report["redis"] = f"failing: {type(exc).__name__}: {exc}"
    try:
        await conn.fetchval("SELECT 1")
    except Exception as exc:
        report["postgres"] = f"failing: {type(exc).__name__}: {exc}"
    if report["redis"] != "ok":
        return report
    stream_keys = [keys.stream(ASYNC_ACTIONS)]
    members = await redis.smembers(keys.stream_index(redemption_records.STREAM))
    stream_keys += sorted(_text(m) for m in members)
    report["streams"] = [await _stream(redis, key) for key in stream_keys]
    if report["postgres"] == "ok":
        rows = await conn.fetch(
            "SELECT type, status, count(*) AS n FROM async_actions WHERE status IN ('ENQUEUED', 'IN_PROGRESS') "
            "GROUP BY type, status ORDER BY type, status"
        )
        report["async_actions_waiting"] = [dict(r) for r in rows]
    return report
