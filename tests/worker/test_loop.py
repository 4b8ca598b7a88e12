"""The consumer loop against a real Redis: ack, retry, re-claim, dead-letter, drain."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from voucherd.platform import heartbeats, keys
from voucherd.platform.messages import Message, StreamAnnouncer, encode, publish
from voucherd.platform.redis_client import scripts_for
from voucherd.platform.settings import Settings
from worker.base import Registry, Retry, WorkerContext
from worker.loop import GROUP, Consumer

STREAM = "test_events"


def run(settings: Settings, scenario: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def consumer(client: aioredis.Redis, registry: Registry, **kwargs: Any) -> Consumer:
    ctx = WorkerContext(redis=client, pool=None, scripts=scripts_for(client), settings=None)
    return Consumer(ctx, registry, claim_idle_ms=kwargs.pop("claim_idle_ms", 50), block_ms=20, **kwargs)


async def pending_count(client: aioredis.Redis) -> int:
    summary = await client.xpending(keys.stream(STREAM), GROUP)
    return int(summary["pending"])


def test_messages_are_handled_once_and_acknowledged(settings: Settings) -> None:
    seen: list[int] = []
    registry = Registry()

    @registry.task(STREAM, batch_size=3)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        seen.extend(m.payload["n"] for m in messages)

    async def scenario(client: aioredis.Redis) -> int:
        for n in range(10):
            await publish(client, STREAM, {"n": n})
        await asyncio.wait_for(consumer(client, registry).run(burst=True), 10)
        return await pending_count(client)

    assert run(settings, scenario) == 0
    assert seen == list(range(10))


def test_a_failing_message_is_retried_then_dead_lettered_without_holding_back_others(settings: Settings) -> None:
    seen: list[int] = []
    attempts: dict[int, int] = {}
    registry = Registry()

    @registry.task(STREAM, max_tries=3, batch_size=10)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        for m in messages:
            attempts[m.payload["n"]] = attempts.get(m.payload["n"], 0) + 1
        if any(m.payload["n"] == 2 for m in messages):
            raise ValueError("cannot handle 2")
        seen.extend(m.payload["n"] for m in messages)

    async def scenario(client: aioredis.Redis) -> tuple[int, list[Any]]:
        for n in range(5):
            await publish(client, STREAM, {"n": n})
        await asyncio.wait_for(consumer(client, registry).run(burst=True), 10)
        return await pending_count(client), await client.xrange(keys.dead_letter_stream(STREAM))

    pending, dead = run(settings, scenario)
    assert pending == 0
    assert sorted(seen) == [0, 1, 3, 4]
    assert attempts[2] == 1 + 3  # the failed batch, then the message alone max_tries times
    assert len(dead) == 1
    fields = dead[0][1]
    assert Message.from_entry(dead[0][0], fields).payload == {"n": 2}
    assert b"cannot handle 2" in fields[b"_reason"]
    assert fields[b"_tries"] == b"4"


def test_messages_of_a_dead_consumer_are_reclaimed(settings: Settings) -> None:
    seen: list[int] = []
    registry = Registry()

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        seen.extend(m.payload["n"] for m in messages)

    async def scenario(client: aioredis.Redis) -> int:
        live = consumer(client, registry, name="live")
        await live.ensure_groups()
        for n in range(3):
            await client.xadd(keys.stream(STREAM), encode({"n": n}))  # type: ignore[arg-type]
        # A consumer takes the messages and dies before acknowledging them.
        taken = await client.xreadgroup(GROUP, "dead", {keys.stream(STREAM): ">"}, count=10)
        assert len(taken[0][1]) == 3
        await asyncio.sleep(0.1)
        await asyncio.wait_for(live.run(burst=True), 10)
        return await pending_count(client)

    assert run(settings, scenario) == 0
    assert seen == [0, 1, 2]


def test_retry_defers_without_losing_the_message(settings: Settings) -> None:
    calls: list[int] = []
    registry = Registry()

    @registry.task(STREAM, max_tries=5)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        calls.append(len(messages))
        if len(calls) == 1:
            raise Retry("not yet")

    async def scenario(client: aioredis.Redis) -> tuple[int, int]:
        await publish(client, STREAM, {"n": 1})
        await asyncio.wait_for(consumer(client, registry).run(burst=True), 10)
        return await pending_count(client), await client.xlen(keys.dead_letter_stream(STREAM))

    assert run(settings, scenario) == (0, 0)
    assert calls == [1, 1]


def test_stop_finishes_the_batch_in_hand(settings: Settings) -> None:
    registry = Registry()
    started = asyncio.Event()
    finished: list[int] = []

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.extend(m.payload["n"] for m in messages)

    async def scenario(client: aioredis.Redis) -> int:
        worker = consumer(client, registry)
        await publish(client, STREAM, {"n": 7})
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 5)
        worker.stop()
        await asyncio.wait_for(running, 5)
        return await pending_count(client)

    assert run(settings, scenario) == 0
    assert finished == [7]


def test_worker_process_stops_cleanly_on_sigterm(settings: Settings) -> None:
    env = {**os.environ, **settings.to_env(), "VOUCHERD_LOG_FORMAT": "text"}
    proc = subprocess.Popen([sys.executable, "-m", "worker"], env=env, stderr=subprocess.PIPE)
    try:
        # Give it time to connect, then ask it to stop.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1.5)
        assert proc.returncode is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_per_project_streams_are_discovered_while_running(settings: Settings) -> None:
    seen: list[tuple[str, int]] = []
    registry = Registry()

    @registry.task("family", per_project=True)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        seen.extend((m.payload["project"], m.payload["n"]) for m in messages)

    async def scenario(client: aioredis.Redis) -> None:
        announcer = StreamAnnouncer(client)
        first = await announcer.stream_key("family", "proj_a")
        await client.xadd(first, encode({"project": "a", "n": 1}))  # type: ignore[arg-type]
        worker = Consumer(
            WorkerContext(redis=client, pool=None, scripts=scripts_for(client), settings=None),
            registry, claim_idle_ms=50, block_ms=20, discover_ms=10,
        )  # fmt: skip
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)
        # A project that redeems for the first time after the worker started.
        second = await announcer.stream_key("family", "proj_b")
        assert keys.project_tag("proj_b") in second
        await client.xadd(second, encode({"project": "b", "n": 2}))  # type: ignore[arg-type]
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.02)
        worker.stop()
        await asyncio.wait_for(running, 5)

    run(settings, scenario)
    assert sorted(seen) == [("a", 1), ("b", 2)]


def test_a_lost_connection_is_retried_in_place_without_counting_as_a_try(settings: Settings) -> None:
    calls: list[int] = []
    registry = Registry()

    @registry.task(STREAM, max_tries=1)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        calls.append(len(messages))
        if len(calls) <= 3:
            raise ConnectionRefusedError("database is down")

    async def scenario(client: aioredis.Redis) -> tuple[int, int]:
        await publish(client, STREAM, {"n": 1})
        await asyncio.wait_for(consumer(client, registry).run(burst=True), 20)
        return await pending_count(client), await client.xlen(keys.dead_letter_stream(STREAM))

    assert run(settings, scenario) == (0, 0)
    assert calls == [1, 1, 1, 1]


def test_waits_between_tries_while_a_server_is_away_stay_short(settings: Settings) -> None:
    """The backoff stops growing at RETRY_BACKOFF_MAX_S (1 s): once the server is back, the batch is in
    PostgreSQL within about a second, not after a wait that doubled through the outage (3.2 s here)."""
    tried_at: list[float] = []
    registry = Registry()

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        tried_at.append(time.monotonic())
        if len(tried_at) <= 5:
            raise ConnectionRefusedError("database is down")

    async def scenario(client: aioredis.Redis) -> None:
        await publish(client, STREAM, {"n": 1})
        await asyncio.wait_for(consumer(client, registry).run(burst=True), 20)

    run(settings, scenario)
    gaps = [b - a for a, b in itertools.pairwise(tried_at)]
    assert len(tried_at) == 6
    assert max(gaps) < 2.0, gaps  # uncapped, the fifth wait alone is 3.2 s


def test_entries_left_under_this_consumers_own_name_are_taken_at_start(settings: Settings) -> None:
    """A restarted container's worker often has its predecessor's pid, hence its consumer name."""
    seen: list[int] = []
    registry = Registry()

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        seen.extend(m.payload["n"] for m in messages)

    async def scenario(client: aioredis.Redis) -> int:
        successor = consumer(client, registry, name="same", claim_idle_ms=600_000)
        await successor.ensure_groups()
        for n in range(3):
            await publish(client, STREAM, {"n": n})
        taken = await client.xreadgroup(GROUP, "same", {keys.stream(STREAM): ">"}, count=10)  # then it died
        assert len(taken[0][1]) == 3
        await asyncio.wait_for(successor.run(burst=True), 10)  # the idle timeout is ten minutes
        return await pending_count(client)

    assert run(settings, scenario) == 0
    assert seen == [0, 1, 2]


def test_a_consumer_whose_heartbeat_expired_is_taken_over_and_forgotten(settings: Settings) -> None:
    seen: list[int] = []
    registry = Registry()

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        seen.extend(m.payload["n"] for m in messages)

    async def scenario(client: aioredis.Redis) -> tuple[float, int, list[Any], set[bytes]]:
        live = consumer(client, registry, name="live", claim_idle_ms=600_000)
        await live.ensure_groups()
        assert await heartbeats.Heartbeat(client, "elsewhere").beat()
        for n in range(3):
            await publish(client, STREAM, {"n": n})
        await client.xreadgroup(GROUP, "elsewhere", {keys.stream(STREAM): ">"}, count=10)
        await client.delete(heartbeats.heartbeat_key("elsewhere"))  # its TTL ran out: it is gone
        started = time.monotonic()
        await asyncio.wait_for(live.run(burst=True), 15)
        took = time.monotonic() - started
        consumers = await client.xinfo_consumers(keys.stream(STREAM), GROUP)
        return took, await pending_count(client), consumers, await client.smembers(heartbeats.names_key())

    took, pending, consumers, names = run(settings, scenario)
    assert pending == 0 and seen == [0, 1, 2]
    # An expired key is believed once our own beats have reached Redis for a while, not before.
    assert heartbeats.TRUST_AFTER_MS / 1000 <= took < heartbeats.TRUST_AFTER_MS / 1000 + 3
    assert [c["name"] for c in consumers] == [b"live"]  # the gone consumer left the group
    assert names == {b"live"}  # and the heartbeat registry (live, stopped, waits for whoever comes next)


def test_only_finished_entries_older_than_the_retention_are_trimmed(settings: Settings) -> None:
    """Acknowledged entries go; delivered-but-pending and undelivered ones stay, whatever their age."""
    registry = Registry()

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        raise AssertionError("not run: the scenario delivers by hand")

    async def scenario(client: aioredis.Redis) -> tuple[int, int, list[int]]:
        stream = keys.stream(STREAM)
        for n in range(10):
            await publish(client, STREAM, {"n": n})
        kept = consumer(client, registry, retention_ms=3_600_000)
        trimming = consumer(client, registry, retention_ms=0)
        await kept.discover(force=True)
        await trimming.discover(force=True)
        replies: Any = await client.xreadgroup(GROUP, "by-hand", {stream: ">"}, count=6)
        delivered = [entry_id for entry_id, _ in replies[0][1]]
        await client.xack(stream, GROUP, *delivered[:4])  # 4 done, 2 pending, 4 not yet delivered
        young = await kept.trim(force=True)  # finished, but younger than an hour
        removed = await trimming.trim(force=True)
        left = [Message.from_entry(i, f).payload["n"] for i, f in await client.xrange(stream)]
        return young, removed, left

    young, removed, left = run(settings, scenario)
    assert young == 0
    assert removed == 4
    assert left == [4, 5, 6, 7, 8, 9]


def test_a_drained_stream_keeps_nothing_past_the_retention(settings: Settings) -> None:
    registry = Registry()

    @registry.task(STREAM, batch_size=4)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        return None

    async def scenario(client: aioredis.Redis) -> tuple[int, int]:
        for n in range(10):
            await publish(client, STREAM, {"n": n})
        worker = consumer(client, registry, retention_ms=0)
        await asyncio.wait_for(worker.run(burst=True), 10)
        await worker.trim(force=True)
        return await client.xlen(keys.stream(STREAM)), await pending_count(client)

    assert run(settings, scenario) == (0, 0)


def test_after_a_small_batch_the_consumer_lingers_for_more(settings: Settings) -> None:
    """linger_ms: messages arriving one by one soon after a small batch are handled together, not one each."""
    batches: list[list[int]] = []
    registry = Registry()

    @registry.task(STREAM, batch_size=100)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        batches.append([m.payload["n"] for m in messages])

    async def scenario(client: aioredis.Redis, linger_ms: int) -> None:
        batches.clear()
        await client.delete(keys.stream(STREAM))
        worker = consumer(client, registry, linger_ms=linger_ms)
        running = asyncio.create_task(worker.run())
        await publish(client, STREAM, {"n": 0})
        for _ in range(500):
            if batches:
                break
            await asyncio.sleep(0.01)
        for n in range(1, 6):  # within the linger, one at a time
            await publish(client, STREAM, {"n": n})
            await asyncio.sleep(0.005)
        for _ in range(500):
            if sum(map(len, batches)) == 6:
                break
            await asyncio.sleep(0.01)
        worker.stop()
        await asyncio.wait_for(running, 10)

    run(settings, lambda client: scenario(client, 1_000))
    assert batches == [[0], [1, 2, 3, 4, 5]]
    run(settings, lambda client: scenario(client, 0))
    assert sum(map(len, batches)) == 6 and len(batches) > 2  # without it, each is read as it comes


def test_idle_messages_are_looked_for_a_quarter_of_the_idle_time_apart(settings: Settings) -> None:
    """XAUTOCLAIM runs at most every claim_idle_ms / 4 per stream, not on every poll."""
    registry = Registry()

    @registry.task(STREAM)
    async def handle(ctx: WorkerContext, messages: list[Message]) -> None:
        pass

    async def scenario(client: aioredis.Redis) -> list[int]:
        async def calls() -> int:  # Redis's own count of XAUTOCLAIM commands
            stats = await client.info("commandstats")
            return int(stats.get("cmdstat_xautoclaim", {}).get("calls", 0))

        worker = consumer(client, registry, claim_idle_ms=400)
        await worker.discover(force=True)
        stream_key = keys.stream(STREAM)
        before = await calls()
        for _ in range(20):
            await worker.reclaim(stream_key, worker.streams[stream_key])
        first = await calls() - before
        await asyncio.sleep(0.11)
        await worker.reclaim(stream_key, worker.streams[stream_key])
        return [first, await calls() - before]

    assert run(settings, scenario) == [1, 2]
