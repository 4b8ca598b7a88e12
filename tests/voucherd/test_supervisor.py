"""The supervisor of ``voucherd run`` with stand-in processes: a dead part is restarted after a backoff
that grows while it keeps dying, with one log line each time; the rest keeps running; stop ends all."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import pytest

from tests.processes import is_running, wait_dead
from voucherd.platform.supervisor import Backoff, Child, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_stable_run() -> None:
    backoff = Backoff(first=0.5, cap=4.0, stable=10.0)
    assert [backoff.delay(uptime=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(uptime=10.0) == 0.5  # it ran long enough: not a crash loop
    assert backoff.delay(uptime=0.1) == 1.0


def test_describe_exit() -> None:
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"


def restarted(supervisor: Supervisor, child: Child, old_pid: int, timeout: float = 10) -> None:
    """Run the supervisor's rounds until ``child`` runs again under a new pid."""
    deadline = time.monotonic() + timeout
    while child.pid() == old_pid or child.exit_code() is not None:
        assert time.monotonic() < deadline, f"{child.name} was not restarted"
        supervisor.check()
        time.sleep(0.02)


def test_a_dead_child_is_restarted_alone_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor()
    worker, server = Child("worker 1", SLEEPER, dict(os.environ)), Child("server", SLEEPER, dict(os.environ))
    for child in (server, worker):
        child.backoff = Backoff(first=0.2, cap=0.4, stable=30.0)
        supervisor.add_child(child)
    server_pid = server.pid()
    try:
        restarts = []
        for _ in range(3):
            assert worker.proc is not None
            first = worker.proc.pid
            killed_at = time.monotonic()
            os.kill(first, signal.SIGKILL)
            with caplog.at_level(logging.WARNING, logger="voucherd"):
                restarted(supervisor, worker, first)
            restarts.append(time.monotonic() - killed_at)
        assert server.pid() == server_pid and server.exit_code() is None  # never touched
        lines = [r.getMessage() for r in caplog.records if r.name == "voucherd"]
        assert len(lines) == 3 and all(line.startswith("worker 1 (pid ") for line in lines), lines
        assert "was killed by SIGKILL" in lines[0] and "restarting it in 0.2 s" in lines[0]
        assert "restarting it in 0.4 s" in lines[1] and "restarting it in 0.4 s" in lines[2]  # capped
        assert restarts[0] >= 0.2 and restarts[1] >= 0.4 and restarts[2] >= 0.4  # it waited each time
    finally:
        pids = [p for p in (worker.pid(), server.pid()) if p is not None]
        supervisor.stop()
    for pid in pids:
        wait_dead(pid)
        assert not is_running(pid)


def test_stop_ends_children_that_ignore_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voucherd.platform.supervisor.CHILD_STOP_SECONDS", 0.5)
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
    ]
    supervisor = Supervisor()
    child = Child("worker 1", stubborn, dict(os.environ))
    supervisor.add_child(child)
    time.sleep(0.3)  # let it install its handler
    pid = child.pid()
    assert pid is not None
    supervisor.stop()
    assert child.exit_code() == -signal.SIGKILL
    assert not is_running(pid)
