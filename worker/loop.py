"""The consumer loop: read → run → acknowledge, with re-claim and dead-lettering.

Each stream has one consumer group (``voucherd``); every worker process is a
consumer in it, so several processes share the work without double effects.
A message is acknowledged only after its task finished. Messages left pending
by a dead or failing consumer are re-claimed with XAUTOCLAIM once idle for
``claim_idle_ms``; one delivered more than ``max_tries`` times moves to the
stream's dead-letter stream instead of running again.
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

from voucherd import keys
from voucherd.messages import Message
from worker.base import Registry, Retry, Task, TaskStatus, WorkerContext

log = logging.getLogger(__name__)

GROUP = "voucherd"


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Consumer:
    def __init__(
        self,
        ctx: WorkerContext,
        registry: Registry,
        *,
        name: str | None = None,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1_000,
    ) -> None:
        self.ctx = ctx
        self.redis: aioredis.Redis = ctx.redis
        self.tasks: dict[str, Task] = dict(registry.tasks)
        self.name = name or consumer_name()
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self._stopping = asyncio.Event()
        self._last_error: dict[str, str] = {}

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping.set()

    async def ensure_groups(self) -> None:
        for stream in self.tasks:
            try:
                await self.redis.xgroup_create(keys.stream(stream), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, *, burst: bool = False) -> None:
        """Consume until ``stop()``; with ``burst``, until nothing is left to do."""
        await self.ensure_groups()
        if not self.tasks:
            await self._stopping.wait()
            return
        while not self._stopping.is_set():
            handled = await self.poll_once()
            if burst and handled == 0 and not await self._has_pending():
                return

    async def poll_once(self) -> int:
        handled = 0
        for task in self.tasks.values():
            handled += await self.reclaim(task)
        block = None if self._stopping.is_set() else self.block_ms
        batch = max(t.batch_size for t in self.tasks.values())
        streams = {keys.stream(name): ">" for name in self.tasks}
        # redis-py's stubs do not describe stream replies; they are [(stream, [(id, fields), ...]), ...].
        replies: Any = await self.redis.xreadgroup(GROUP, self.name, streams, count=batch, block=block)  # type: ignore[arg-type]
        for stream_key, entries in replies or []:
            task = self._task_for(stream_key)
            messages = [Message.from_entry(i, f) for i, f in entries]
            handled += await self.process(task, messages)
        return handled

    def _task_for(self, stream_key: bytes | str) -> Task:
        name = stream_key.decode() if isinstance(stream_key, bytes) else stream_key
        for stream, task in self.tasks.items():
            if keys.stream(stream) == name:
                return task
        raise KeyError(name)

    async def _has_pending(self) -> bool:
        for stream in self.tasks:
            summary = await self.redis.xpending(keys.stream(stream), GROUP)
            if summary and summary.get("pending", 0):
                return True
        return False

    async def reclaim(self, task: Task) -> int:
        """Take over messages idle too long; dead-letter those tried too often; run the rest."""
        stream_key = keys.stream(task.stream)
        reply = await self.redis.xautoclaim(
            stream_key, GROUP, self.name, self.claim_idle_ms, start_id="0-0", count=task.batch_size
        )
        entries = [(i, f) for i, f in reply[1] if f is not None]
        if not entries:
            return 0
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
                await self.dead_letter(task, message_id, tries)
            else:
                runnable.append(Message.from_entry(entry_id, fields))
        if runnable:
            await self.process(task, runnable)
        return len(entries)

    async def dead_letter(self, task: Task, message_id: str, tries: int) -> None:
        reason = self._last_error.pop(message_id, f"delivered {tries} times without success")
        await self.ctx.scripts.dead_letter(
            keys=[keys.stream(task.stream), keys.dead_letter_stream(task.stream)],
            args=[GROUP, message_id, reason[:2000], tries],
        )
        log.error(
            "task %s: message %s moved to the dead-letter stream after %d tries: %s",
            task.stream, message_id, tries - 1, reason,
            extra={"task": task.stream, "status": TaskStatus.DEAD.value},
        )  # fmt: skip

    async def process(self, task: Task, messages: list[Message]) -> int:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(task.handler(self.ctx, messages), task.timeout_s)
        except Exception as exc:
            if len(messages) == 1:
                self._record_failure(task, messages[0], exc)
                return 1
            # One bad message must not hold back the batch: try each alone.
            for message in messages:
                await self.process(task, [message])
            return len(messages)
        await self.redis.xack(keys.stream(task.stream), GROUP, *[m.id for m in messages])
        for m in messages:
            self._last_error.pop(m.id, None)
        log.info(
            "task %s: %d message(s) done in %.1f ms",
            task.stream, len(messages), (time.perf_counter() - started) * 1000,
            extra={"task": task.stream, "status": TaskStatus.DONE.value},
        )  # fmt: skip
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
