"""The consumer loop: read → run → acknowledge, with re-claim and dead-lettering.

Each stream has one consumer group (``voucherd``); every worker process is a
consumer in it, so several processes share the work without double effects.
A message is acknowledged only after its task finished.

Each consumer beats a heartbeat (voucherd.platform.heartbeats) from a task of its own. A consumer that
starts, and every one about once a heartbeat interval, looks for consumers whose heartbeat is
gone and takes over their pending messages at once (``take_over``: only entries still pending
for the gone consumer, never a live one's). Messages a live consumer failed or deferred stay in
its pending list and are re-claimed with XAUTOCLAIM once idle for ``claim_idle_ms``, which also
catches what a consumer without a heartbeat left; a batch still being worked on is kept from
looking idle (``_touch_in_hand``, every heartbeat), so a long batch is never re-claimed from its
live consumer. One delivered more than ``max_tries`` times moves to the stream's dead-letter
stream instead of running again.

A task's stream is either one key, or a family of per-project keys (the ones a
project's commit scripts append to, in that project's cluster slot) listed in a
Redis set and re-read every ``discover_ms``. Each stream key is read with its own
command, so the loop works unchanged on Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from voucherd.platform import heartbeats, keys, metrics
from voucherd.platform.messages import Message
from worker.base import TRANSIENT_ERRORS, Registry, Retry, Task, TaskStatus, WorkerContext

log = logging.getLogger(__name__)

GROUP = "voucherd"
LINGER_BELOW = 50  # a poll that handled fewer messages than this lingers (linger_ms) before the next
TRIM_EVERY_S = 10.0  # how often each stream's finished entries are trimmed (stream_trim.lua)
# Waits between tries while Redis or PostgreSQL is away grow to this: a local server restarts in a second
# or two, and a longer wait would leave acknowledged events unpersisted for seconds after it is back.
RETRY_BACKOFF_MAX_S = 1.0


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Consumer:
    def __init__(
        self,
        ctx: WorkerContext,
        registry: Registry,
        *,
        name: str | None = None,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1_000,
        discover_ms: int = 1_000,
        heartbeat_ms: int = heartbeats.INTERVAL_MS,
        retention_ms: int = 15 * 60_000,
        linger_ms: int = 0,
    ) -> None:
        self.ctx = ctx
        self.redis: aioredis.Redis = ctx.redis
        self.tasks: dict[str, Task] = dict(registry.tasks)
        self.name = name or consumer_name()
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.discover_ms = discover_ms
        self.streams: dict[str, Task] = {}  # stream key -> its task
        self._discovered_at = 0.0
        self._stopping = asyncio.Event()
        self._last_error: dict[str, str] = {}
        self.heartbeat = heartbeats.Heartbeat(self.redis, self.name)
        self.heartbeat_ms = heartbeat_ms
        self._looked_for_gone_at: float | None = None
        self.taken_over = 0  # messages taken over from gone consumers (for tests and logs)
        self._in_hand: dict[str, set[str]] = {}  # stream key -> ids a task is working on now
        self.retention_ms = retention_ms  # acknowledged entries are kept this long (for inspection), then trimmed
        self._trimmed_at: float | None = None
        # A message is re-claimed once idle claim_idle_ms; looking a quarter of that later at most is soon
        # enough, and XAUTOCLAIM on every poll of every stream cost more than the batches it read.
        self.reclaim_every_s = min(claim_idle_ms / 4, 1_000) / 1000
        self._reclaimed_at: dict[str, float] = {}
        # After a poll that found only a few messages, wait this long before the next: batches of a few
        # dozen cost the worker and PostgreSQL a fraction per message of batches of two or three.
        self.linger_ms = linger_ms

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping.set()

    async def discover(self, *, force: bool = False) -> None:
        """Learn the stream keys to read (new per-project streams appear at run time) and make their groups."""
        now = time.monotonic()
        if not force and now - self._discovered_at < self.discover_ms / 1000:
            return
        self._discovered_at = now
        found: dict[str, Task] = {}
        for task in self.tasks.values():
            if task.per_project:
                for member in await self.redis.smembers(keys.stream_index(task.stream)):
                    found[_text(member)] = task
            else:
                found[keys.stream(task.stream)] = task
        for stream_key in found.keys() - self.streams.keys():
            try:
                await self.redis.xgroup_create(stream_key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self.streams = found

    async def ensure_groups(self) -> None:
        await self.discover(force=True)

    async def run(self, *, burst: bool = False) -> None:
        """Consume until ``stop()``; with ``burst``, until nothing is left to do."""
        finished = asyncio.Event()
        beating = asyncio.create_task(self._beat_until(finished))
        try:
            await self.heartbeat.beat()  # before the first read creates this consumer in a group
            await self._consume(burst)
        finally:
            finished.set()
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            await self.heartbeat.stop()

    async def _beat_until(self, finished: asyncio.Event) -> None:
        # The loop also ends on ``finished``: a cancel that lands while a beat writes to Redis can be lost
        # (redis-py sends under asyncio.wait_for, which on Python 3.11 returns a result already there instead
        # of raising), and then the beats went on and run() never returned (seen once in CI).
        while not finished.is_set():
            await asyncio.sleep(self.heartbeat_ms / 1000)
            if not finished.is_set() and await self.heartbeat.beat():
                await self._touch_in_hand()

    async def _touch_in_hand(self) -> None:
        """Keep the batches we are working on from looking idle to other workers' re-claim."""
        for stream_key, ids in list(self._in_hand.items()):
            if not ids:
                continue
            try:
                await self.ctx.scripts.stream_touch(keys=[stream_key], args=[GROUP, self.name, *sorted(ids)])
            except Exception as exc:  # Redis away: the batch waits for it as well
                log.warning("worker %s: could not touch the messages in hand: %s", self.name, exc)

    async def _consume(self, burst: bool) -> None:
        await self.discover(force=True)
        if not self.tasks:
            await self._stopping.wait()
            return
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                handled = await self.poll_once()
            except TRANSIENT_ERRORS as exc:
                # Redis restarting or unreachable while reading: wait for it rather than exit.
                log.warning("worker: %s; reading again in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)
                continue
            backoff = 0.2
            if 0 < handled < LINGER_BELOW and self.linger_ms and not burst:
                await asyncio.sleep(self.linger_ms / 1000)
            if handled == 0:
                if burst and not await self._has_pending():
                    return
                if len(self.streams) != 1:
                    # Several streams are polled without blocking; idle briefly between rounds.
                    await asyncio.sleep(min(self.block_ms, 20) / 1000)

    async def poll_once(self) -> int:
        await self.discover()
        handled = await self.take_over()
        for stream_key, task in list(self.streams.items()):
            handled += await self.reclaim(stream_key, task)
        block = self.block_ms if len(self.streams) == 1 and not self._stopping.is_set() else None
        for stream_key, task in list(self.streams.items()):
            # redis-py's stubs do not describe stream replies; they are [(stream, [(id, fields), ...])].
            replies: Any = await self.redis.xreadgroup(
                GROUP, self.name, {stream_key: ">"}, count=task.batch_size, block=block
            )
            for _stream, entries in replies or []:
                messages = [Message.from_entry(i, f) for i, f in entries]
                handled += await self.process(stream_key, task, messages)
        await self.trim()
        return handled

    async def trim(self, *, force: bool = False) -> int:
        """Drop acknowledged entries older than the retention, from every stream, every ``TRIM_EVERY_S``."""
        now = time.monotonic()
        if not force and self._trimmed_at is not None and now - self._trimmed_at < TRIM_EVERY_S:
            return 0
        self._trimmed_at = now
        cutoff_ms = int(time.time() * 1000) - self.retention_ms
        removed = 0
        for stream_key in list(self.streams):
            removed += int(await self.ctx.scripts.stream_trim(keys=[stream_key], args=[GROUP, cutoff_ms]))
        return removed

    async def take_over(self, *, force: bool = False) -> int:
        """Run the pending messages of consumers whose heartbeat is gone; at start, then once an interval."""
        now = time.monotonic()
        if (
            not force
            and self._looked_for_gone_at is not None
            and now - self._looked_for_gone_at < self.heartbeat_ms / 1000
        ):
            return 0
        starting = self._looked_for_gone_at is None
        self._looked_for_gone_at = now
        found = await heartbeats.consumers(self.redis, trust_expiry=self.heartbeat.trusted)
        gones = [name for name in found.gone if name != self.name]
        if starting:
            # A process that just started holds nothing: entries pending under its name were left by
            # an earlier process that had the same name (the same pid, as in a restarted container).
            gones.append(self.name)
        handled = 0
        for gone in gones:
            taken = 0
            for stream_key, task in list(self.streams.items()):
                taken += await self._take_over_stream(stream_key, task, gone)
            if gone != self.name:
                await heartbeats.forget(self.redis, gone)
            if taken:
                log.warning("worker: consumer %s is gone; took over its %d pending message(s)", gone, taken)
            handled += taken
        self.taken_over += handled
        return handled

    async def _take_over_stream(self, stream_key: str, task: Task, gone: str) -> int:
        taken = 0
        while True:
            try:
                reply: Any = await self.ctx.scripts.stream_take_over(
                    keys=[stream_key], args=[GROUP, gone, self.name, task.batch_size]
                )
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream went away since we discovered it
                    return taken
                raise
            found, claimed = int(reply[0]), reply[1]
            # An entry trimmed from the stream meanwhile comes back empty (older Redis) or not at all.
            entries = [(e[0], dict(zip(e[1][::2], e[1][1::2], strict=True))) for e in claimed if e and e[1]]
            if entries:
                await self._run_claimed(stream_key, task, entries)
            taken += len(entries)
            if found < task.batch_size:
                return taken

    async def _has_pending(self) -> bool:
        for stream_key in self.streams:
            summary = await self.redis.xpending(stream_key, GROUP)
            if summary and summary.get("pending", 0):
                return True
        return False

    async def reclaim(self, stream_key: str, task: Task) -> int:
        """Take over messages idle too long; dead-letter those tried too often; run the rest."""
        now = time.monotonic()
        if now - self._reclaimed_at.get(stream_key, -1e9) < self.reclaim_every_s:
            return 0
        self._reclaimed_at[stream_key] = now
        reply = await self.redis.xautoclaim(
            stream_key, GROUP, self.name, self.claim_idle_ms, start_id="0-0", count=task.batch_size
        )
        entries = [(i, f) for i, f in reply[1] if f is not None]
        if not entries:
            return 0
        await self._run_claimed(stream_key, task, entries)
        return len(entries)

    async def _run_claimed(self, stream_key: str, task: Task, entries: list[tuple[Any, Any]]) -> None:
        """Entries just claimed by this consumer: dead-letter those tried too often, run the rest."""
        first, last = entries[0][0], entries[-1][0]
        pending: Any = await self.redis.xpending_range(
            stream_key, GROUP, min=first, max=last, count=len(entries), consumername=self.name
        )
        deliveries = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        runnable = []
        for entry_id, fields in entries:
            message_id = _text(entry_id)
            tries = deliveries.get(message_id, 1)
            if tries > task.max_tries:
                await self.dead_letter(stream_key, task, message_id, tries)
            else:
                runnable.append(Message.from_entry(entry_id, fields))
        if runnable:
            await self.process(stream_key, task, runnable)

    async def dead_letter(self, stream_key: str, task: Task, message_id: str, tries: int) -> None:
        reason = self._last_error.pop(message_id, f"delivered {tries} times without success")
        await self.ctx.scripts.dead_letter(
            keys=[stream_key, keys.dead_letter_for(stream_key)],
            args=[GROUP, message_id, reason[:2000], tries],
        )
        log.error(
            "task %s: message %s moved to the dead-letter stream after %d tries: %s",
            task.stream, message_id, tries - 1, reason,
            extra={"task": task.stream, "status": TaskStatus.DEAD.value},
        )  # fmt: skip

    async def process(self, stream_key: str, task: Task, messages: list[Message]) -> int:
        in_hand = self._in_hand.setdefault(stream_key, set())
        in_hand.update(m.id for m in messages)
        try:
            return await self._process(stream_key, task, messages)
        finally:
            in_hand.difference_update(m.id for m in messages)

    async def _process(self, stream_key: str, task: Task, messages: list[Message]) -> int:
        started = time.perf_counter()
        backoff = 0.2
        while True:
            try:
                await asyncio.wait_for(task.handler(self.ctx, messages), task.timeout_s)
                break
            except TRANSIENT_ERRORS as exc:
                if self._stopping.is_set():
                    return len(messages)  # left pending: another consumer (or our next start) takes it
                log.warning("task %s: %s; retrying the batch in %.1fs", task.stream, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)
            except Exception as exc:
                return await self._failed(stream_key, task, messages, exc)
        await self.redis.xack(stream_key, GROUP, *[m.id for m in messages])
        await metrics.observe_messages(self.redis, task.stream, stream_key, [m.id for m in messages])  # issue 7
        for m in messages:
            self._last_error.pop(m.id, None)
        log.info(
            "task %s: %d message(s) done in %.1f ms",
            task.stream, len(messages), (time.perf_counter() - started) * 1000,
            extra={"task": task.stream, "status": TaskStatus.DONE.value},
        )  # fmt: skip
        return len(messages)

    async def _failed(self, stream_key: str, task: Task, messages: list[Message], exc: Exception) -> int:
        if len(messages) == 1:
            self._record_failure(task, messages[0], exc)
            return 1
        # One bad message must not hold back the batch: try each alone.
        for message in messages:
            await self.process(stream_key, task, [message])
        return len(messages)

    def _record_failure(self, task: Task, message: Message, exc: Exception) -> None:
        if len(self._last_error) > 10_000:
            self._last_error.clear()
        self._last_error[message.id] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, Retry):
            log.info("task %s: message %s deferred: %s", task.stream, message.id, exc,
                     extra={"task": task.stream, "status": TaskStatus.RETRY.value})  # fmt: skip
        else:
            log.error("task %s: message %s failed", task.stream, message.id, exc_info=exc,
                      extra={"task": task.stream, "status": TaskStatus.FAILED.value})  # fmt: skip
