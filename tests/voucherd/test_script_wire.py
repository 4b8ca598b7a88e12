"""The scripts' pipelined connection (voucherd.platform.script_wire) against real redis-servers:
every caller gets its own answer, and the retry rule holds when connections fail."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from tests.reply_dropper import ReplyDropper
from tests.services import own_redis_server
from voucherd.platform.localstack import RedisServer, find_redis_server, free_port
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.script_wire import ScriptWire

ECHO = "return ARGV[1]"
INCR = "return redis.call('INCR', KEYS[1])"
FAIL = "return redis.error_reply('voucherd: refused')"


def sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


def wire_for(port: int, db: int = 0, password: str | None = None) -> ScriptWire:
    kwargs: dict[str, object] = {"host": "127.0.0.1", "port": port, "db": db}
    if password:
        kwargs["password"] = password
    return ScriptWire(kwargs)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with own_redis_server("voucherd-wire-") as server:
        yield server


def test_concurrent_calls_each_get_their_own_answer(server: RedisServer) -> None:
    async def main() -> list[object]:
        wire = wire_for(server.port)
        try:
            calls = [wire.evalsha(sha(ECHO), ECHO, [], [f"n{i}"], replay_safe=True) for i in range(500)]
            return list(await asyncio.gather(*calls))
        finally:
            wire.close()

    assert asyncio.run(main()) == [f"n{i}".encode() for i in range(500)]


def test_a_script_redis_does_not_know_is_loaded_and_run_once(server: RedisServer) -> None:
    async def main() -> tuple[int, int]:
        wire = wire_for(server.port)
        try:
            first = await wire.evalsha(sha(INCR), INCR, ["n"], [], replay_safe=False)  # never loaded before
            redis.Redis(port=server.port).script_flush()
            second = await wire.evalsha(sha(INCR), INCR, ["n"], [], replay_safe=False)
            return first, second
        finally:
            wire.close()

    assert asyncio.run(main()) == (1, 2)  # NOSCRIPT ran nothing: each call incremented once


def test_error_replies_raise_redis_pys_exceptions(server: RedisServer) -> None:
    async def main() -> None:
        wire = wire_for(server.port)
        try:
            with pytest.raises(ResponseError, match="voucherd: refused"):
                await wire.evalsha(sha(FAIL), FAIL, [], [], replay_safe=True)
            assert await wire.evalsha(sha(ECHO), ECHO, [], ["after"], replay_safe=True) == b"after"
        finally:
            wire.close()

    asyncio.run(main())


@pytest.mark.parametrize("replay_safe", [False, True])
def test_a_lost_reply_is_retried_only_for_a_replay_safe_script(server: RedisServer, replay_safe: bool) -> None:
    async def main() -> tuple[object, int, int]:
        proxy = ReplyDropper(server.port)
        await proxy.start()
        wire = wire_for(proxy.port)
        try:
            await wire.evalsha(sha(INCR), INCR, ["other"], [], replay_safe=False)  # loaded, connected
            proxy.arm(sha(INCR).encode())
            call = asyncio.ensure_future(wire.evalsha(sha(INCR), INCR, ["n"], [], replay_safe=replay_safe))
            await asyncio.wait_for(proxy.reply_held.wait(), 10)  # Redis ran it; the answer is held ...
            proxy.release.set()  # ... and the connection dropped instead
            try:
                outcome: object = await asyncio.wait_for(call, 10)
            except RedisConnectionError as exc:
                outcome = exc
            return outcome, int(redis.Redis(port=server.port).get("n") or 0), proxy.connections
        finally:
            wire.close()
            await proxy.close()

    outcome, applied, connections = asyncio.run(main())
    if replay_safe:
        assert (outcome, applied, connections) == (2, 2, 2)  # sent again on a fresh connection
    else:
        assert isinstance(outcome, RedisConnectionError)
        assert (applied, connections) == (1, 1)  # applied once; the caller was told it failed


def test_calls_after_a_redis_restart_succeed(server: RedisServer) -> None:
    async def main() -> list[object]:
        wire = wire_for(server.port)
        try:
            await wire.evalsha(sha(INCR), INCR, ["n"], [], replay_safe=False)
            assert server.proc is not None
            server.proc.kill()
            await asyncio.to_thread(server.proc.wait)
            await asyncio.sleep(0.2)
            await asyncio.to_thread(server.start)
            # The lost connection is known before these are written: each never left, each runs once.
            calls = [wire.evalsha(sha(INCR), INCR, ["n"], [], replay_safe=False) for _ in range(50)]
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            wire.close()

    replies = asyncio.run(main())
    assert [r for r in replies if isinstance(r, Exception)] == []
    assert sorted(replies) == list(range(2, 52))  # type: ignore[type-var]


def test_a_connection_refused_while_opening_is_retried(server: RedisServer) -> None:
    async def main() -> tuple[object, int]:
        proxy = ReplyDropper(server.port)
        await proxy.start()
        wire = wire_for(proxy.port)
        try:
            proxy.refuse = 1  # the first connection is closed as soon as it is accepted
            reply = await wire.evalsha(sha(INCR), INCR, ["n"], [], replay_safe=False)
            return reply, proxy.connections
        finally:
            wire.close()
            await proxy.close()

    assert asyncio.run(main()) == (1, 2)


def test_no_server_is_a_connection_error() -> None:
    async def main() -> None:
        wire = wire_for(free_port())
        with pytest.raises(RedisConnectionError):
            await wire.evalsha(sha(ECHO), ECHO, [], ["x"], replay_safe=True)

    asyncio.run(main())


def test_password_database_and_unix_socket_urls_reach_the_same_server(tmp_path: Path) -> None:
    socket = tmp_path / "redis.sock"
    port = free_port()
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--unixsocket", str(socket), "--requirepass", "pw",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        async def main() -> list[object]:
            replies = []
            for url in (f"redis://:pw@127.0.0.1:{port}/3", f"unix://:pw@{socket}?db=3"):
                client = create_redis(url)
                try:
                    wire = client.script_wire  # type: ignore[attr-defined]
                    assert wire is not None
                    replies.append(await wire.evalsha(sha(INCR), INCR, ["seen"], [], replay_safe=False))
                    await scripts_for(client).floor(keys=["vd:{t}:floor"], args=[])  # a registered script too
                finally:
                    await client.aclose()
            return replies

        assert asyncio.run(main()) == [1, 2]
        assert redis.Redis(port=port, password="pw", db=3).get("seen") == b"2"
    finally:
        proc.terminate()
        proc.wait()
