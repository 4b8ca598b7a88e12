"""The asyncio Redis client (hiredis parser) with voucherd's Lua scripts registered."""

from __future__ import annotations

import redis.asyncio as aioredis

from voucherd.scripts import Scripts


def create_redis(url: str, max_connections: int = 64) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        max_connections=max_connections,
        decode_responses=False,
        health_check_interval=30,
        retry_on_timeout=True,
    )


def scripts_for(client: aioredis.Redis) -> Scripts:
    return Scripts(client)
