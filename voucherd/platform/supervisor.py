"""Keeping the processes of ``voucherd run`` alive: a part that dies is restarted, never the rest torn down.

Each part (the local Redis, the local PostgreSQL, the API server, each worker) runs in a process group
of its own. The supervisor polls them; a dead one gets one log line and a restart after a backoff
that doubles on every quick death up to a cap, so a crash loop waits instead of spinning. A part that
ran for a while before dying starts over at the shortest delay. On stop the parts stop in reverse order
of start: workers and server first, then PostgreSQL, then Redis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

from voucherd.platform.localstack import LocalStackError, PostgresServer, RedisServer

log = logging.getLogger("voucherd")

# Seconds a child gets to stop after SIGTERM before its whole group is killed (the worker finishes the
# batch in hand; granian gives its workers SERVER_STOP_SECONDS).
CHILD_STOP_SECONDS = 20.0


@dataclass
class Backoff:
    """The delay before each restart of one part."""

    first: float = 0.5
    cap: float = 30.0
    # A part that ran at least this long before dying is not in a crash loop: start over at `first`.
    stable: float = 10.0
    _next: float = field(default=0.0, init=False)

    def delay(self, uptime: float) -> float:
        if uptime >= self.stable or self._next == 0.0:
            self._next = self.first
        current = self._next
        self._next = min(self.cap, current * 2)
        return current


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (a dead server leader's workers, say)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Part:
    """One supervised process: started, watched, restarted, stopped."""

    name: str

    def __init__(self) -> None:
        self.started_at = 0.0
        self.backoff = Backoff()
        self.restart_at: float | None = None  # set while it is dead and waiting for its restart

    def start(self) -> None:
        raise NotImplementedError

    def exit_code(self) -> int | None:
        """None while it runs."""
        raise NotImplementedError

    def pid(self) -> int | None:
        raise NotImplementedError

    def begin_stop(self) -> None:
        raise NotImplementedError

    def finish_stop(self) -> None:
        raise NotImplementedError

    def sweep(self) -> None:
        """Kill whatever the dead process left in its group, so the restart finds its port free."""
        pid = self.pid()
        if pid is not None:
            _kill_group(pid)


class Child(Part):
    """A Python process of ours (``voucherd serve``, ``python -m worker``) in a session of its own, so
    a Ctrl-C in the terminal reaches only the launcher, which stops the children in order."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        super().__init__()
        self.name, self.argv, self.env = name, argv, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.monotonic()

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def begin_stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def finish_stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, CHILD_STOP_SECONDS)
        self.sweep()  # also whatever it started and left behind
        self.proc.wait()


class Store(Part):
    """A Redis or PostgreSQL server the launcher started; a restart reuses its data folder and port."""

    def __init__(self, name: str, server: RedisServer | PostgresServer) -> None:
        super().__init__()
        self.name, self.server = name, server

    def start(self) -> None:
        self.server.start()
        self.started_at = time.monotonic()

    def exit_code(self) -> int | None:
        proc = self.server.proc
        return None if proc is None else proc.poll()

    def pid(self) -> int | None:
        return None if self.server.proc is None else self.server.proc.pid

    def begin_stop(self) -> None:
        pass  # the stores stop one at a time, after everything that uses them

    def finish_stop(self) -> None:
        self.server.stop()
        self.sweep()


class Supervisor:
    """The parts of ``voucherd run``, in start order."""

    def __init__(self) -> None:
        self.stores: list[Store] = []
        self.children: list[Child] = []

    @property
    def parts(self) -> list[Part]:
        return [*self.stores, *self.children]

    def add_store(self, store: Store) -> None:
        """Start a store now; a failure here (at launch) is the caller's to report."""
        try:
            store.start()
        except BaseException:
            store.finish_stop()  # a server that started but never answered must not stay behind
            raise
        self.stores.append(store)

    def add_child(self, child: Child) -> None:
        child.start()
        self.children.append(child)

    def check(self) -> None:
        """One round: note the parts that died, restart those whose delay is over."""
        for part in self.parts:
            now = time.monotonic()
            if part.restart_at is None:
                code = part.exit_code()
                if code is None:
                    continue
                uptime = now - part.started_at
                delay = part.backoff.delay(uptime)
                log.warning("%s (pid %s) %s after %.1f s; restarting it in %.1f s",
                            part.name, part.pid(), describe_exit(code), uptime, delay)  # fmt: skip
                part.sweep()
                part.restart_at = now + delay
            elif now >= part.restart_at:
                self._restart(part)

    def _restart(self, part: Part) -> None:
        try:
            part.start()
        except (LocalStackError, OSError) as exc:
            delay = part.backoff.delay(0.0)
            log.error("%s did not start again (%s); next try in %.1f s", part.name, exc, delay)
            part.sweep()
            part.restart_at = time.monotonic() + delay
        else:
            part.restart_at = None

    def stop(self) -> None:
        """Children first (all asked at once, workers before the server), then the stores, newest first."""
        children = list(reversed(self.children))
        for child in children:
            child.begin_stop()
        for child in children:
            child.finish_stop()
        for store in reversed(self.stores):
            store.finish_stop()
