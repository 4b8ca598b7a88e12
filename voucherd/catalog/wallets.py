"""Customers' wallets: the codes published to each customer, kept in Redis for qualifications."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from voucherd.platform import keys
from voucherd.platform.scripts import Scripts


async def add(scripts: Scripts, project_id: str, customer_id: str, codes: list[str]) -> None:
    if codes:
        await scripts.wallet_add(keys=[keys.wallets(project_id)], args=[customer_id, *codes])


async def codes_of(redis: aioredis.Redis, project_id: str, customer_id: str) -> list[str]:
    raw = await redis.hget(keys.wallets(project_id), customer_id)
    return list(orjson.loads(raw)) if raw else []
