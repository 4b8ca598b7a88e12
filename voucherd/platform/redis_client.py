"""The asyncio Redis client (hiredis parser and packer) with voucherd's Lua scripts registered.

``redis://…`` is one server; ``redis+cluster://host:port`` is a Redis Cluster, reached
through any of its nodes. Every key a script touches shares its project's hash tag, so
the same scripts run unchanged on a cluster.

A connection the server closed (Redis restarted) is never handed out: the pool checks each
one before use and opens a fresh one instead. A command whose connection fails is retried
once, on a fresh connection, only when running it again cannot apply it twice (the retry
rule, docs/durability.md):

- it never reached Redis (the connection failed before or while it was written);
- it is a read;
- it is a script registered as replay-safe (``ReconnectingRedis.replay_safe``): one whose
  second run answers what the first did, like the commit script with its commit record.

Anything else that may have been applied raises, and the request answers 503.
"""

from __future__ import annotations

import logging
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voucherd.platform.script_wire import ScriptWire
from voucherd.platform.scripts import Scripts

log = logging.getLogger(__name__)

CLUSTER_SCHEME = "redis+cluster://"

# Commands that change nothing: running one twice answers the same as once. (Only what
# voucherd sends; XREADGROUP is not here, it moves entries into the reader's pending list.)
READ_COMMANDS = frozenset(
    {
        "PING", "INFO", "DBSIZE", "TYPE", "EXISTS", "TTL", "PTTL", "GET", "MGET", "STRLEN", "SCAN", "KEYS",
        "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "HKEYS", "HVALS", "HSCAN",
        "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "SSCAN",
        "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZSCORE", "ZMSCORE", "ZCARD", "ZCOUNT", "ZSCAN",
        "LRANGE", "LLEN", "LINDEX", "XLEN", "XRANGE", "XREVRANGE", "XPENDING", "XINFO",
        "SCRIPT",  # SCRIPT LOAD / EXISTS: loading the same script again is harmless
    }
)  # fmt: skip
SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVALSHA_RO"})


class CommandNotSent(RedisConnectionError):
    """The connection failed before the command was written: Redis never saw it."""


def _name(command: Any) -> str:
    text = command.decode() if isinstance(command, bytes) else str(command)
    return text.split(" ", 1)[0].upper()  # redis-py sends some as one word: "XINFO GROUPS"


class _Checked(AbstractConnection):
    """What voucherd's connections add, over TCP or a Unix socket: a failure before writing a
    command is told from one after it, and commands are packed in C.

    redis-py's asyncio connection packs every command in Python (one bytes join per argument)
    even with hiredis installed; a checkout script call has 20 to 40 arguments, and packing
    them cost more server CPU than parsing the reply. ``hiredis.pack_command`` writes the same
    bytes in one pass (its sync client does the same, ``redis.connection.HiredisRespSerializer``).
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):  # redis-py sends some as one word: "XINFO GROUPS"
            args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            # What hiredis does not take (a memoryview, a bool): redis-py's own packer, which
            # chunks the one and refuses the other with its DataError.
            packed: list[bytes] = super().pack_command(*args)
            return packed

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # Connecting and the health-check PING come first: a failure there (a refusal, a
        # timeout) is before the command left. A write that fails has failed as a whole:
        # asyncio drops data written to a lost connection, and Redis never runs a command it
        # did not read in full. A write that timed out may have gone out, so it is not wrapped.
        try:
            if not self.is_connected:
                await self.connect_check_health(check_health=False)
            if check_health:
                await self.check_health()  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise CommandNotSent(str(exc)) from exc
        try:
            await super().send_packed_command(command, check_health=False)
        except (RedisConnectionError, OSError) as exc:
            raise CommandNotSent(str(exc)) from exc


class CheckedConnection(_Checked, aioredis.Connection):
    """TCP (``redis://``)."""


class CheckedUnixConnection(_Checked, aioredis.UnixDomainSocketConnection):
    """A Unix socket (``unix://``, what ``voucherd run`` gives its own processes)."""


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

    async def ensure_connection(self, connection: Any) -> None:
        """Connect, and replace a connection the server closed while it sat in the pool.

        redis-py's own check skips the test when maintenance notifications are on, and they
        are on ("auto") by default: after a Redis restart every pooled connection was handed
        out dead and its first command failed with "Connection closed by server". A pooled
        connection must have nothing to read; an end of stream (or leftover bytes) means it
        cannot be used, so it is closed and opened again before the command is written.
        """
        try:
            await connection.connect()
            try:
                stale = await connection.can_read()
            except RedisConnectionError:
                stale = True
            if stale:
                await connection.disconnect()
                await connection.connect()
                if await connection.can_read():
                    raise RedisConnectionError("Connection not ready")
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise CommandNotSent(str(exc)) from exc

    async def release(self, connection: Any) -> None:
        if self._queued or self._in_maintenance:
            await super().release(connection)  # wakes a queued caller
            return
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)


class ReconnectingRedis(aioredis.Redis):
    """The client with the retry rule above; scripts safe to run twice are registered by their SHA."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replay_safe: set[str] = set()
        # The Lua scripts' own connection (voucherd.platform.script_wire), to the server the pool reaches;
        # rediss:// keeps redis-py's path (the wire speaks no TLS).
        pool = self.connection_pool
        plain = issubclass(pool.connection_class, (CheckedConnection, aioredis.UnixDomainSocketConnection))
        self.script_wire = ScriptWire(pool.connection_kwargs) if plain else None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self.script_wire is not None:
            self.script_wire.close()
        await super().aclose(close_connection_pool)

    def _may_retry(self, args: tuple[Any, ...], exc: Exception) -> bool:
        if self.connection is not None:  # a single-connection client: there is no fresh one to take
            return False
        if isinstance(exc, CommandNotSent):
            return True
        name = _name(args[0])
        if name in SCRIPT_COMMANDS:
            sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
            return sha in self.replay_safe
        return name in READ_COMMANDS

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not self._may_retry(args, exc):
                raise
            # redis-py has closed the failed connection; the pool hands out a checked one.
            log.info("redis: %s; %s retried once on a fresh connection", exc, _name(args[0]))
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


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
        connection_class=CheckedConnection,  # a unix:// URL sets redis-py's own class: replaced below
    )
    if pool.connection_class is aioredis.UnixDomainSocketConnection:
        pool.connection_class = CheckedUnixConnection  # rediss:// keeps redis-py's (no not-sent retry)
    return ReconnectingRedis.from_pool(pool)  # owns the pool: aclose() closes its connections


def scripts_for(client: aioredis.Redis) -> Scripts:
    return Scripts(client)
