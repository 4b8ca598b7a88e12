"""Heartbeats: a worker SIGKILLed with messages in hand has them taken over at once by the next worker
(not after the 30 s idle timeout), and a live worker's messages in hand are never taken from it.

A test holds PostgreSQL's lock on the redemptions table, so a worker that has read a batch is stuck
inserting it: its messages are pending, in flight, for as long as the test wants.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.conftest import ProjectKeys
from tests.processes import stop_group
from tests.worker.test_faults import Load, create_voucher, done_counts, pending_of, serve, start_worker, wait_stored
from voucherd import heartbeats
from voucherd.settings import Settings

pytestmark = pytest.mark.slow


@contextmanager
def redemptions_locked(settings: Settings) -> Iterator[None]:
    """While inside, no one can write to the redemptions table."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(settings.database_url))
    try:
        loop.run_until_complete(conn.execute("BEGIN; LOCK TABLE redemptions IN ACCESS EXCLUSIVE MODE"))
        yield
        loop.run_until_complete(conn.execute("ROLLBACK"))
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def wait_pending(settings: Settings, project: ProjectKeys, pid: int, count: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while (held := pending_of(settings, project.project_id, pid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


def hand_over(url: str, project: ProjectKeys, worker: subprocess.Popen[bytes], total: int) -> None:
    """``total`` redemptions, all read by ``worker`` in one batch: it is paused while they arrive (it polls
    its several streams without blocking, so its next read takes them all)."""
    worker.send_signal(signal.SIGSTOP)
    try:
        Load(url, project.headers, total=total, rate=500).start().join()
    finally:
        worker.send_signal(signal.SIGCONT)


def live_workers(settings: Settings) -> list[str]:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        names = [n.decode() for n in client.smembers(heartbeats.names_key())]
        return [n for n in names if client.exists(heartbeats.heartbeat_key(n))]
    finally:
        client.close()


def test_a_killed_workers_messages_are_taken_over_at_once(
    settings: Settings, project: ProjectKeys, tmp_path: Path
) -> None:
    assert settings.worker_claim_idle_ms == 30_000  # the idle timeout cannot be what brings them back
    log = tmp_path / "worker.log"
    with serve(settings, tmp_path / "server.log") as url:
        create_voucher(url, project.headers)
        first = start_worker(settings, log)
        try:
            Load(url, project.headers, total=50, rate=500).start().join()
            assert wait_stored(settings, 50, timeout=30) == 50
            with redemptions_locked(settings):
                hand_over(url, project, first, 100)
                held = wait_pending(settings, project, first.pid, 100)
                assert held == 100  # every one read, none written
                first.send_signal(signal.SIGKILL)
                first.wait(10)
            started = time.monotonic()
            second = start_worker(settings, log)
            try:
                stored = wait_stored(settings, 150, timeout=20)
                took = time.monotonic() - started
            finally:
                stop_group(second)
        finally:
            stop_group(first)
    print(f"taken over and stored {took:.2f} s after the new worker started")
    assert stored == 150
    assert took < 5.0, took  # process start-up included; the idle timeout would be 30 s
    assert "is gone; took over its 100 pending message(s)" in log.read_text()


def test_a_live_workers_messages_in_hand_are_never_taken(
    settings: Settings, project: ProjectKeys, tmp_path: Path
) -> None:
    # An idle timeout far shorter than the batch is held: without the touches B would re-claim it.
    settings = settings.with_(worker_claim_idle_ms=2_500)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with serve(settings, tmp_path / "server.log") as url:
        create_voucher(url, project.headers)
        a = start_worker(settings, logs[0])
        try:
            Load(url, project.headers, total=20, rate=500).start().join()
            assert wait_stored(settings, 20, timeout=30) == 20
            b = None
            try:
                with redemptions_locked(settings):
                    hand_over(url, project, a, 100)
                    assert wait_pending(settings, project, a.pid, 100) == 100
                    b = start_worker(settings, logs[1])
                    # Longer than the TTL-trust delay and several heartbeats: B looks, and must leave them.
                    deadline = time.monotonic() + 2 * heartbeats.TRUST_AFTER_MS / 1000
                    while time.monotonic() < deadline:
                        assert pending_of(settings, project.project_id, a.pid) == 100
                        time.sleep(0.2)
                    assert len(live_workers(settings)) == 2
                assert wait_stored(settings, 120, timeout=30) == 120
                time.sleep(0.5)  # the last batch's log line follows its commit
            finally:
                if b is not None:
                    stop_group(b)
        finally:
            stop_group(a)
    assert done_counts(logs[0]) == 120 and done_counts(logs[1]) == 0
    assert "took over" not in logs[1].read_text()
