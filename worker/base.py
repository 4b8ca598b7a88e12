"""Tasks: one per stream, registered with ``@task("stream")``.

A task handles a batch of messages. Raising fails the batch; the loop then tries
each message alone so one bad message cannot hold back the others. ``Retry``
asks for a later try without counting as an error in the logs.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voucherd.platform.messages import Message

# Errors of a lost or refused connection: the batch is retried in place (with backoff) until
# the dependency is back, without counting as a try, so an outage delays work and loses none.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    # A connection PostgreSQL dropped in the middle of a statement can be handed out once more before
    # asyncpg notices it closed; using it raises "cannot switch to state ...; another operation is in
    # progress". The retry gets a fresh connection (seen when PostgreSQL is killed under load).
    asyncpg.InternalClientError,
    ConnectionError,
    TimeoutError,
    OSError,
    RedisConnectionError,
    RedisTimeoutError,
)


class TaskStatus(str, enum.Enum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    DEAD = "dead"


class Retry(Exception):
    """Leave the message pending; it is claimed again once idle for the claim interval."""

    def __init__(self, reason: str = "retry requested") -> None:
        super().__init__(reason)


@dataclass(frozen=True)
class WorkerContext:
    """What tasks get: the open connections of this worker process."""

    redis: Any
    pool: Any
    scripts: Any
    settings: Any


Handler = Callable[[WorkerContext, list[Message]], Awaitable[None]]


@dataclass(frozen=True)
class Task:
    stream: str
    handler: Handler
    max_tries: int = 5
    timeout_s: float = 60.0
    batch_size: int = 200
    # A per-project family: one stream per project (keys.project_stream), listed in keys.stream_index.
    per_project: bool = False


class Registry:
    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}

    def task(
        self,
        stream: str,
        *,
        max_tries: int = 5,
        timeout_s: float = 60.0,
        batch_size: int = 200,
        per_project: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if stream in self.tasks:
                raise ValueError(f"stream {stream!r} already has a task")
            self.tasks[stream] = Task(stream, handler, max_tries, timeout_s, batch_size, per_project)
            return handler

        return register


REGISTRY = Registry()
task = REGISTRY.task
