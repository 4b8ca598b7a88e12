"""Worker heartbeats: each stream consumer says it is alive; the others learn when it is not.

A consumer keeps a key ``vd:{workers}:hb:<name>`` that expires after ``TTL_MS`` and refreshes it
every ``INTERVAL_MS`` from a task of its own, beside its read loop, so a long batch or a
PostgreSQL outage never lets it lapse. The names of consumers that ever beat are kept in a set,
so anyone can tell the live from the gone with two commands (``GET /health``, ``voucherd status``,
and workers looking for a dead consumer's messages to take over, worker.loop).

A consumer is gone when its key has expired, or at once when the key says it ran on this very
machine (same host, boot and PID namespace) and that process no longer exists: a worker restarted
after a crash takes over its predecessor's messages without waiting out the TTL. Judging by an
expired key needs Redis to have been reachable for a while (``Heartbeat.trusted``): after a Redis
outage longer than the TTL every key has expired, and the live consumers need a moment to beat
again before anyone is called dead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from voucherd import keys

log = logging.getLogger(__name__)

INTERVAL_MS = 1_000
TTL_MS = 10_000
# How long Redis must have answered our own beats before an expired key means a dead consumer.
TRUST_AFTER_MS = 3 * INTERVAL_MS

_TAG = "{workers}"  # one hash slot: the set and every heartbeat are read together, also on a cluster


def names_key() -> str:
    return f"{keys.PREFIX}:{_TAG}:names"


def heartbeat_key(name: str) -> str:
    return f"{keys.PREFIX}:{_TAG}:hb:{name}"


def _read(path: str) -> str:
    with suppress(OSError):
        return Path(path).read_text().strip()
    return ""


def _pid_namespace() -> str:
    with suppress(OSError):
        return str(os.stat("/proc/self/ns/pid").st_ino)
    return ""


def identity() -> dict[str, Any]:
    """Where this process runs, precisely enough to tell from a heartbeat whether it still exists."""
    return {
        "host": socket.gethostname(),
        "boot": _read("/proc/sys/kernel/random/boot_id"),
        "pidns": _pid_namespace(),
        "pid": os.getpid(),
    }


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def died_here(value: bytes | str | None, here: dict[str, Any]) -> bool:
    """The heartbeat names a process of this machine and PID namespace that has exited."""
    if value is None:
        return False
    try:
        beat = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(beat, dict) or not here["boot"] or not here["pidns"]:
        return False
    same_place = all(beat.get(k) == here[k] for k in ("host", "boot", "pidns"))
    pid = beat.get("pid")
    return same_place and isinstance(pid, int) and pid != here["pid"] and not _process_exists(pid)


@dataclass(frozen=True)
class Consumers:
    live: list[str]
    gone: list[str]  # no heartbeat (or a process of this machine that exited)
    unsure: list[str]  # no heartbeat, but Redis has not been up long enough to tell


async def consumers(redis: aioredis.Redis, *, trust_expiry: bool = True) -> Consumers:
    """Every consumer that ever beat, sorted into live and gone (two round trips)."""
    names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in await redis.smembers(names_key()))
    if not names:
        return Consumers([], [], [])
    values = await redis.mget([heartbeat_key(n) for n in names])
    here = identity()
    live: list[str] = []
    gone: list[str] = []
    unsure: list[str] = []
    for name, value in zip(names, values, strict=True):
        if value is None:
            (gone if trust_expiry else unsure).append(name)
        elif died_here(value, here):
            gone.append(name)
        else:
            live.append(name)
    return Consumers(live, gone, unsure)


async def forget(redis: aioredis.Redis, name: str) -> None:
    """A gone consumer whose messages were all taken over: drop it from the set and its key."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.srem(names_key(), name)
        pipe.delete(heartbeat_key(name))
        await pipe.execute()


class Heartbeat:
    """One consumer's heartbeat; ``beat`` is called every ``INTERVAL_MS`` by its own task."""

    def __init__(self, redis: aioredis.Redis, name: str) -> None:
        self.redis = redis
        self.name = name
        self.value = orjson.dumps(identity())
        self._up_since: float | None = None  # monotonic time of the first beat of the current run of successes

    async def beat(self) -> bool:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(heartbeat_key(self.name), self.value, px=TTL_MS)
                pipe.sadd(names_key(), self.name)
                await pipe.execute()
        except Exception as exc:  # Redis away: the loop waits for it too; keep beating
            if self._up_since is not None:
                log.warning("worker %s: heartbeat failed: %s", self.name, exc)
            self._up_since = None
            return False
        if self._up_since is None:
            self._up_since = time.monotonic()
        return True

    @property
    def trusted(self) -> bool:
        """Redis has answered our beats long enough that a peer's expired key means it is gone."""
        return self._up_since is not None and (time.monotonic() - self._up_since) * 1000 >= TRUST_AFTER_MS

    async def stop(self) -> None:
        """Leaving: drop the key, so what we leave pending is taken over at once (best effort)."""
        with suppress(Exception):
            await self.redis.delete(heartbeat_key(self.name))
