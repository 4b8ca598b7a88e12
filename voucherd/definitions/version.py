"""The per-project definitions version: every definition change bumps it, and each
process reloads its compiled caches when the version it last saw has moved."""

from __future__ import annotations

import redis.asyncio as aioredis

from voucherd.platform import keys


async def bump(redis: aioredis.Redis, project_id: str) -> int:
    return int(await redis.incr(keys.definitions_version(project_id)))


async def current(redis: aioredis.Redis, project_id: str) -> int:
    value = await redis.get(keys.definitions_version(project_id))
    return int(value) if value is not None else 0
