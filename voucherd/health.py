"""Which part of the service is up: Redis, PostgreSQL, the workers' heartbeats, the streams' lag.

One report for ``GET /health`` and ``voucherd status`` (docs/operations.md, "Health"):

- ``redis`` down: checkout cannot be answered. The report is ``failing`` (HTTP 503).
- ``postgres`` down: checkout goes on from Redis (keys and definitions a process has seen are
  kept through the outage, redemptions wait in the streams); definitions, management calls and
  persistence wait. ``degraded`` (HTTP 200).
- ``workers``: no consumer with a live heartbeat means nothing is being persisted. ``degraded``.
- ``stream_lag``: the oldest message not yet done is older than ``LAG_LIMIT_S``. ``degraded``.

Each part is ``{"status": ...}`` with its details; ``down`` lists the parts that are not ok.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from voucherd import heartbeats, keys, redemption_records
from voucherd.async_actions import STREAM as ASYNC_ACTIONS

GROUP = "voucherd"  # the workers' consumer group (worker.loop.GROUP)
CHECK_TIMEOUT_S = 2.0
LAG_LIMIT_S = 60.0  # a message waiting longer than this makes the stream lag "lagging"

OK, FAILING, DEGRADED = "ok", "failing", "degraded"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


async def stream_keys(redis: aioredis.Redis) -> list[str]:
    """The async actions stream and every project's redemptions stream."""
    members = await redis.smembers(keys.stream_index(redemption_records.STREAM))
    return [keys.stream(ASYNC_ACTIONS), *sorted(_text(m) for m in members)]


async def _oldest_waiting_ms(redis: aioredis.Redis, stream_key: str, group: dict[Any, Any]) -> int | None:
    """The time (epoch ms) of the oldest message the group has not finished: pending or not yet read."""
    oldest: int | None = None
    if int(group.get("pending") or 0):
        summary: Any = await redis.xpending(stream_key, GROUP)
        if summary and summary.get("min"):
            oldest = _id_ms(_text(summary["min"]))
    last = _text(group.get("last-delivered-id") or "0-0")
    unread: Any = await redis.xrange(stream_key, min=f"({last}", max="+", count=1)
    if unread:
        first = _id_ms(_text(unread[0][0]))
        oldest = first if oldest is None else min(oldest, first)
    return oldest


async def stream_lag(redis: aioredis.Redis) -> dict[str, Any]:
    """Totals over the streams: messages not yet read (lag), read but not finished (pending), oldest age."""
    lag = pending = 0
    oldest: int | None = None
    names = await stream_keys(redis)
    async with redis.pipeline(transaction=False) as pipe:  # one round trip, however many projects
        for stream_key in names:
            pipe.xinfo_groups(stream_key)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    for stream_key, groups in zip(names, replies, strict=True):
        if isinstance(groups, Exception):  # no stream yet: nothing waits
            continue
        group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
        if group is None:
            continue
        waiting_lag = int(group.get("lag") or 0)
        waiting_pending = int(group.get("pending") or 0)
        lag += waiting_lag
        pending += waiting_pending
        if waiting_lag or waiting_pending:  # the common case, all done, costs one command per stream
            first = await _oldest_waiting_ms(redis, stream_key, group)
            if first is not None:
                oldest = first if oldest is None else min(oldest, first)
    age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
    status = "lagging" if age > LAG_LIMIT_S else OK
    return {"status": status, "lag": lag, "pending": pending, "oldest_age_s": round(age, 3), "limit_s": LAG_LIMIT_S}


async def workers(redis: aioredis.Redis) -> dict[str, Any]:
    found = await heartbeats.consumers(redis)
    return {"status": OK if found.live else FAILING, "live": len(found.live), "gone": len(found.gone)}


async def _timed(check: Callable[[], Awaitable[Any]]) -> tuple[Any, str]:
    """The check's value and "ok", or None and why it failed (the exception's type, never its text)."""
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S), OK
    except Exception as exc:
        return None, f"{FAILING}: {type(exc).__name__}"


async def report(redis: aioredis.Redis, postgres_probe: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Every part's state; ``postgres_probe`` raises when PostgreSQL does not answer."""
    _, redis_state = await _timed(redis.ping)
    _, postgres_state = await _timed(postgres_probe)
    unknown = {"status": "unknown"}
    worker_state: dict[str, Any] = unknown
    stream_state: dict[str, Any] = unknown
    if redis_state == OK:
        worker_state, error = await _timed(lambda: workers(redis))
        worker_state = worker_state or {"status": error}
        stream_state, error = await _timed(lambda: stream_lag(redis))
        stream_state = stream_state or {"status": error}
    body: dict[str, Any] = {
        "status": OK,
        "down": [],
        "redis": redis_state,
        "postgres": postgres_state,
        "workers": worker_state,
        "stream_lag": stream_state,
    }
    down = [name for name in ("redis", "postgres") if body[name] != OK]
    down += [name for name in ("workers", "stream_lag") if body[name]["status"] not in (OK, "unknown")]
    body["down"] = down
    if redis_state != OK:
        body["status"] = FAILING
    elif down:
        body["status"] = DEGRADED
    return body


def serving(body: dict[str, Any]) -> bool:
    """Checkout can be answered: everything but Redis may be down."""
    return bool(body["redis"] == OK)
