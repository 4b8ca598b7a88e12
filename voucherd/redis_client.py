"""The asyncio Redis client (hiredis parser) with voucherd's Lua scripts registered."""

from __future__ import annotations

import redis.asyncio as aioredis

from voucherd.scripts import Scripts


def create_redis(url: str, max_connections: int = 64, wait_timeout: float = 5.0) -> aioredis.Redis:
    # A blocking pool queues callers when every connection is busy; the default pool
    # raises "Too many connections" instead, which a burst of checkouts would turn into 500s.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_timeout,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


def scripts_for(client: aioredis.Redis) -> Scripts:
    return Scripts(client)
