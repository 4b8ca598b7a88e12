"""One id per customer source_id, shared by the API and the hot path.

The hot path gives a new customer its id in Redis (``read_state.lua``) before the
worker writes the customer to PostgreSQL; the customers API takes its ids from the
same map, so both name the same customer.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from voucherd.platform import keys
from voucherd.platform.ids import new_id


async def claim(redis: aioredis.Redis, project_id: str, source_id: str) -> str:
    """The id of the customer with this source_id, given now if it has none yet."""
    key = keys.customer_ids(project_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hsetnx(key, source_id, new_id("cust"))
        pipe.hget(key, source_id)
        _, found = await pipe.execute()
    return found.decode() if isinstance(found, bytes) else str(found)


async def remember(redis: aioredis.Redis, project_id: str, source_id: str, customer_id: str) -> None:
    await redis.hset(keys.customer_ids(project_id), source_id, customer_id)
