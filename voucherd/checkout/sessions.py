"""Validation sessions: releasing a reservation before its TTL runs out."""

from __future__ import annotations

import redis.asyncio as aioredis

from voucherd.platform import keys


async def release(redis: aioredis.Redis, project_id: str, code: str, session_key: str) -> None:
    """Drop the session's reservation on the voucher (a no-op when there is none)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.voucher_locks(project_id, code), session_key)
        pipe.hdel(keys.voucher_lock_amounts(project_id, code), session_key)
        await pipe.execute()
