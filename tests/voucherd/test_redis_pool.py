"""The queueing Redis pool: bursts larger than the pool wait their turn, and nothing leaks."""

from __future__ import annotations

import asyncio

import pytest

from voucherd.platform.redis_client import QueueingPool, create_redis


def test_a_burst_larger_than_the_pool_queues_and_every_command_answers(redis_url: str) -> None:
    async def main() -> tuple[list[int], QueueingPool]:
        client = create_redis(redis_url, max_connections=4, wait_timeout=10)
        pool = client.connection_pool
        assert isinstance(pool, QueueingPool)
        try:
            # 200 at once over 4 connections: most take the queued path, the rest the short one.
            replies = await asyncio.gather(*(client.incr("pool-test") for _ in range(200)))
            # ...then one at a time, every one on the short path.
            for _ in range(20):
                replies.append(await client.incr("pool-test"))
            return replies, pool
        finally:
            await client.aclose()

    replies, pool = asyncio.run(main())
    assert sorted(replies) == list(range(1, 221))  # every command ran exactly once
    assert not pool._in_use_connections  # all given back
    assert len(pool._available_connections) <= 4
    assert pool._queued == 0


def test_a_caller_waits_no_longer_than_the_pool_timeout(redis_url: str) -> None:
    async def main() -> None:
        client = create_redis(redis_url, max_connections=1, wait_timeout=0.2)
        try:
            held = await client.connection_pool.get_connection()
            with pytest.raises(Exception, match="No connection available"):
                await client.ping()
            await client.connection_pool.release(held)
            assert await client.ping()
        finally:
            await client.aclose()

    asyncio.run(main())
