"""The asyncio Redis client (hiredis parser) with voucherd's Lua scripts registered.

``redis://…`` is one server; ``redis+cluster://host:port`` is a Redis Cluster, reached
through any of its nodes. Every key a script touches shares its project's hash tag, so
the same scripts run unchanged on a cluster.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from voucherd.scripts import Scripts

CLUSTER_SCHEME = "redis+cluster://"


def create_redis(url: str, max_connections: int = 64, wait_timeout: float = 5.0) -> aioredis.Redis:
    if url.startswith(CLUSTER_SCHEME):
        cluster = RedisCluster.from_url("redis://" + url.removeprefix(CLUSTER_SCHEME), max_connections=max_connections)
        # The cluster client speaks the same commands; callers only use the common API.
        return cluster  # type: ignore[return-value]
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
