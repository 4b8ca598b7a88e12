"""Redis connections across a Redis restart: dead pooled connections are replaced, and a command whose
connection fails is retried once only when that cannot apply it twice (voucherd.redis_client).

Each test has its own redis-server (AOF, appendfsync always) that it kills and restarts on the same port.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.reply_dropper import ReplyDropper
from tests.services import own_redis_server
from voucherd.checkout import counters
from voucherd.checkout.counters import Group, Op
from voucherd.platform.localstack import RedisServer
from voucherd.platform.redis_client import QueueingPool, create_redis, scripts_for
from voucherd.platform.scripts import SOURCES

STATE = "vd:{p:t}:v:CODE"
STREAM = "vd:{p:t}:stream:redemptions"
APPLY_SHA = hashlib.sha1(SOURCES["apply_counters"].encode()).hexdigest().encode()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with own_redis_server("voucherd-reconnect-") as server:
        yield server


async def crash_and_restart(server: RedisServer) -> None:
    """SIGKILL (only the AOF survives), then the same port again; the event loop runs meanwhile."""
    assert server.proc is not None
    server.proc.kill()
    await asyncio.to_thread(server.proc.wait)
    await asyncio.sleep(0.2)
    await asyncio.to_thread(server.start)


def unit(event_id: str) -> Group:
    return Group("quantity_exceeded", [Op(STATE, "redeemed", 1, max_field="quantity")], event={"id": event_id})


@pytest.mark.parametrize("transport", ["tcp", "unix"])  # voucherd run's own Redis is reached over its socket
def test_connections_redis_closed_are_replaced_before_use(server: RedisServer, transport: str) -> None:
    async def main() -> tuple[int, list[object], int]:
        client = create_redis(server.url if transport == "tcp" else server.local_url)
        try:
            await asyncio.gather(*(client.incr("n") for _ in range(200)))  # opens many pooled connections
            pool = client.connection_pool
            assert isinstance(pool, QueueingPool)
            pooled = len(pool._available_connections)
            await crash_and_restart(server)
            # Writes are not retried after sending: each one succeeds only on a connection checked first.
            replies = await asyncio.gather(*(client.incr("n") for _ in range(200)), return_exceptions=True)
            replies += [await client.incr("n") for _ in range(20)]
            return pooled, replies, int(await client.get("n") or 0)
        finally:
            await client.aclose()

    pooled, replies, total = asyncio.run(main())
    assert pooled > 4  # there were stale connections to trip over
    assert [r for r in replies if isinstance(r, Exception)] == []
    assert total == 420  # the 200 before the crash came back from the AOF; each later INCR ran once


def test_a_commit_whose_reply_was_lost_in_a_crash_is_answered_from_its_record(server: RedisServer) -> None:
    async def main() -> tuple[list[str], list[str], int, int]:
        proxy = ReplyDropper(server.port)
        await proxy.start()
        client = create_redis(proxy.url)
        scripts = scripts_for(client)
        try:
            await client.hset(STATE, mapping={"quantity": 5, "redeemed": 0})
            await client.script_load(SOURCES["apply_counters"])  # so the armed EVALSHA is the one that runs it
            proxy.arm(APPLY_SHA)
            commit = asyncio.ensure_future(
                counters.apply(scripts, "ALL", [unit("r_1")], now_ms=1, stream_key=STREAM, event={}, commit_id="r_1")
            )
            await asyncio.wait_for(proxy.reply_held.wait(), 10)  # Redis ran the commit and answered ...
            await crash_and_restart(server)  # ... then died before the answer reached the client
            proxy.release.set()
            first = await asyncio.wait_for(commit, 10)  # retried on a fresh connection to the new Redis
            second = await counters.apply(scripts, "ALL", [unit("r_2")], now_ms=1, stream_key=STREAM, event={})
            redeemed = int(await client.hget(STATE, "redeemed") or 0)
            return first, second, redeemed, int(await client.xlen(STREAM))
        finally:
            await client.aclose()
            await proxy.close()

    first, second, redeemed, entries = asyncio.run(main())
    assert first == ["ok"] and second == ["ok"]
    assert redeemed == 2 and entries == 2  # the interrupted commit moved the counter and the stream once


def test_a_write_that_may_have_applied_is_not_retried(server: RedisServer) -> None:
    async def main() -> int:
        proxy = ReplyDropper(server.port)
        await proxy.start()
        client = create_redis(proxy.url)
        try:
            await client.set("n", 0)
            proxy.arm(b"INCR")
            incr = asyncio.ensure_future(client.incr("n"))
            await asyncio.wait_for(proxy.reply_held.wait(), 10)
            proxy.release.set()
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(incr, 10)
            return int(await client.get("n") or 0)
        finally:
            await client.aclose()
            await proxy.close()

    assert asyncio.run(main()) == 1  # applied once; the caller was told it failed, nothing ran twice


def test_a_write_that_never_left_is_retried(server: RedisServer) -> None:
    async def main() -> tuple[int, int]:
        proxy = ReplyDropper(server.port)
        await proxy.start()
        client = create_redis(proxy.url)
        try:
            proxy.refuse = 1  # the first connection dies while connecting: INCR was never written
            assert await client.incr("n") == 1
            return int(await client.get("n") or 0), proxy.connections
        finally:
            await client.aclose()
            await proxy.close()

    assert asyncio.run(main()) == (1, 2)  # ran once, on the second connection


def test_a_read_whose_reply_was_lost_is_retried(server: RedisServer) -> None:
    async def main() -> tuple[dict[bytes, bytes], int]:
        proxy = ReplyDropper(server.port)
        await proxy.start()
        client = create_redis(proxy.url)
        try:
            await client.hset(STATE, mapping={"quantity": 5})
            proxy.arm(b"HGETALL")
            read = asyncio.ensure_future(client.hgetall(STATE))
            await asyncio.wait_for(proxy.reply_held.wait(), 10)
            proxy.release.set()
            return await asyncio.wait_for(read, 10), proxy.connections
        finally:
            await client.aclose()
            await proxy.close()

    found, connections = asyncio.run(main())
    assert found == {b"quantity": b"5"}
    assert connections == 2  # the answer came on a second, fresh connection


def test_a_commit_run_twice_by_hand_applies_once(redis_url: str, clean: None) -> None:
    """The commit record on its own: a second run with the same id answers the first outcome, even a failure."""

    async def main() -> list[list[str]]:
        client = create_redis(redis_url)
        scripts = scripts_for(client)
        try:
            await client.hset(STATE, mapping={"quantity": 1, "redeemed": 0})
            runs = []
            for commit_id in ("a", "a", "b", "b"):
                args = {"now_ms": 1, "stream_key": STREAM, "event": {}, "commit_id": commit_id}
                runs.append(await counters.apply(scripts, "ALL", [unit(commit_id)], **args))  # type: ignore[arg-type]
            assert int(await client.hget(STATE, "redeemed") or 0) == 1
            assert await client.xlen(STREAM) == 1
            return runs
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [["ok"], ["ok"], ["quantity_exceeded"], ["quantity_exceeded"]]
