"""Commands packed by hiredis (voucherd.platform.redis_client.CheckedConnection) are the bytes
redis-py's own packer writes, refuse what it refuses, and run against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError

from voucherd.platform.redis_client import CheckedConnection, create_redis

CASES: list[tuple[object, ...]] = [
    ("EVALSHA", "a" * 40, 3, "vd:{p:t}:v:CODE", "vd:{p:t}:l:CODE", "vd:{p:t}:c", 1733100000000, "", "ü-€", -7, 0),
    ("SET", b"k", 1.5),
    ("SET", "k", 0.1),
    ("SET", "k", 1e20),
    ("XINFO GROUPS", "stream"),  # one word on the wire as two
    (b"CONFIG GET", b"maxmemory"),
    ("SET", "big", "x" * 100_000),  # beyond redis-py's chunking cutoff: one buffer here, the same bytes
    ("SET", "view", memoryview(b"abc")),  # hiredis does not take these: redis-py's packer does
]


@pytest.mark.parametrize("args", CASES)
def test_the_bytes_are_redis_pys(args: tuple[object, ...]) -> None:
    ours, theirs = CheckedConnection(), aioredis.Connection()
    assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))


def test_what_redis_py_refuses_is_refused() -> None:
    with pytest.raises(DataError):
        CheckedConnection().pack_command("SET", "k", True)


def test_commands_and_pipelines_run(redis_url: str, clean: None) -> None:
    async def main() -> list[object]:
        client = create_redis(redis_url)
        try:
            await client.set("packed", "ü" * 3)
            async with client.pipeline(transaction=True) as pipe:
                pipe.incrby("n", 5).get("packed").hset("h", mapping={"a": 1, "b": "2"})
                replies: list[object] = await pipe.execute()
            return [*replies, await client.hgetall("h")]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [5, "ü".encode() * 3, 2, {b"a": b"1", b"b": b"2"}]
