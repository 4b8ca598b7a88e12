"""Starting and stopping the service's processes in tests: wait for health, stop whole groups, find
processes (children, leftovers) through /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until ``url``/health answers 200; fails if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def stop_group(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal the process group (start it with ``start_new_session=True``); SIGKILL the whole group
    if it has not exited in ``timeout``. Killing only the leader would leave its children (granian's
    workers) running, orphaned."""
    if proc.poll() is None:
        _signal_group(proc, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    _signal_group(proc, signal.SIGKILL)  # children the leader left behind, if any


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def children(pid: int) -> list[int]:
    """The live (not zombie) child processes of ``pid``, oldest first."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _stat(int(entry))[:2] == (pid, True):
            found.append(int(entry))
    return sorted(found, key=lambda child: _stat(child)[2])


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a killed process whose parent has not reaped it yet)."""
    return _stat(pid)[1]


def wait_dead(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while is_running(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.01)


def processes_with_env(name: str, value: str) -> list[int]:
    """Running processes whose environment has ``name=value``: what a launcher started, and their children.
    Servers that write their process title over it (redis-server, PostgreSQL's backends) do not show
    it: check that their ports are free instead."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not is_running(int(entry)):
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            found.append(int(entry))
    return found


def _stat(pid: int) -> tuple[int, bool, int]:
    """(parent pid, running and not a zombie, start time in clock ticks) from /proc; (0, False, 0) if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, False, 0
    # After the ")" closing the command name: state, ppid, ... starttime is the 20th.
    return int(fields[1]), fields[0] not in ("Z", "X"), int(fields[19])


def listens_on(pid: int, port: int) -> bool:
    """Whether the process holds a listening TCP socket on ``port`` (granian's workers each open their own,
    with SO_REUSEPORT: a respawned worker serves once it listens, some time after it started)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local address "ADDR:PORT" in hex, state 0A is LISTEN, the inode is the tenth column.
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes:
                return True
    return False
