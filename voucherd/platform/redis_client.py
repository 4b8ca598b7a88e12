"""The asyncio Redis client (hiredis parser) with voucherd's Lua scripts registered.

``redis://…`` is one server; ``redis+cluster://host:port`` is a Redis Cluster, reached
through any of its nodes. Every key a script touches shares its project's hash tag, so
the same scripts run unchanged on a cluster.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from voucherd.platform.scripts import Scripts

CLUSTER_SCHEME = "redis+cluster://"


class QueueingPool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool with a short path while a connection is free.

    The blocking pool queues callers when every connection is busy (the default pool raises
    "Too many connections" instead, which a burst of checkouts would turn into errors). Its
    get and release also take a condition lock, start a timeout, and record observability
    events on every call: a tenth of a validation's CPU. While no caller is queued and a
    connection is free, this pool hands it over and takes it back directly; otherwise it
    defers to the blocking pool. It reads the pool's own lists (redis-py 8.x, pinned).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self._available_connections and not self._queued and not self._in_maintenance:
            connection = self._available_connections.pop()
            self._in_use_connections.add(connection)
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
            return connection
        self._queued += 1
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            self._queued -= 1

    async def release(self, connection: Any) -> None:
        if self._queued or self._in_maintenance:
            await super().release(connection)  # wakes a queued caller
            return
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)


def create_redis(url: str, max_connections: int = 64, wait_timeout: float = 5.0) -> aioredis.Redis:
    if url.startswith(CLUSTER_SCHEME):
        cluster = RedisCluster.from_url("redis://" + url.removeprefix(CLUSTER_SCHEME), max_connections=max_connections)
        # The cluster client speaks the same commands; callers only use the common API.
        return cluster  # type: ignore[return-value]
    pool = QueueingPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_timeout,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


def scripts_for(client: aioredis.Redis) -> Scripts:
    return Scripts(client)
