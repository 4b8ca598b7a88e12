"""The stack under test: ``voucherd run`` in a throw-away folder, or a running server named by the environment.

``VOUCHERIFY_HOST`` (with ``VOUCHERD_APP_ID`` / ``VOUCHERD_APP_TOKEN``) points the load tests at a server
that is already up; otherwise one is started here, on a free loopback port, pinned with ``taskset`` to the
CPUs given, and stopped (with Redis, PostgreSQL and its workers) when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.api import Target
from voucherd.platform.localstack import free_port

START_TIMEOUT_S = 90


@dataclass
class Stack:
    target: Target
    managed: bool  # started here (and stopped here)
    server_processes: int | None = None
    worker_processes: int | None = None
    cpus: str = ""
    run_pid: int | None = None
    log_path: Path | None = None
    data_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        """Every process of the stack (empty for an external server, whose CPU we cannot read)."""
        return descendants(self.run_pid) if self.run_pid is not None else []

    def server_pids(self) -> list[int]:
        """The granian worker processes serving requests (the ones to profile)."""
        if self.run_pid is None:
            return []
        serve = [p for p in descendants(self.run_pid) if b"voucherd.cli\x00serve" in _cmdline(p)]
        return [p for p in serve if _ppid(p) in serve] or serve


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(_ppid(int(entry.name)), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem_gb = round(mem_kb / 1024 / 1024, 1)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voucherd run exited with {proc.returncode}; see {log_path}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"voucherd did not become healthy within {START_TIMEOUT_S}s; see {log_path}")


@contextlib.contextmanager
def external() -> Iterator[Stack]:
    url = os.environ["VOUCHERIFY_HOST"].rstrip("/")
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise SystemExit("VOUCHERIFY_HOST must be on 127.0.0.1: the load tests never send traffic elsewhere")
    target = Target(url, os.environ["VOUCHERD_APP_ID"], os.environ["VOUCHERD_APP_TOKEN"])
    yield Stack(target, managed=False, notes=["server given by VOUCHERIFY_HOST; process counts unknown here"])


@contextlib.contextmanager
def managed(server_processes: int, worker_processes: int, cpus: str, log_dir: Path) -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="voucherd-loadtest-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user when we are root and must reach its folder
    port = free_port()
    app_id, app_token = f"lt_{secrets.token_hex(6)}", secrets.token_hex(16)
    env = {
        **os.environ,
        "VOUCHERD_DATA_DIR": str(folder),
        "VOUCHERD_PORT": str(port),
        "VOUCHERD_APP_ID": app_id,
        "VOUCHERD_APP_TOKEN": app_token,
        "VOUCHERD_LOG_LEVEL": "WARNING",
        "VOUCHERD_SERVER_PROCESSES": str(server_processes),
        "VOUCHERD_WORKER_PROCESSES": str(worker_processes),
    }
    for name in ("REDIS_URL", "DATABASE_URL"):  # always a throw-away Redis and PostgreSQL of our own
        env.pop(name, None)
    argv = [sys.executable, "-m", "voucherd.cli", "run"]
    if cpus and shutil.which("taskset"):
        argv = ["taskset", "-c", cpus, *argv]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "stack.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log_path)
        yield Stack(
            Target(url, app_id, app_token), True, server_processes, worker_processes, cpus, proc.pid, log_path, folder
        )
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets ``voucherd run`` stop its children and servers; its own process group is the backstop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(45)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def open_stack(server_processes: int, worker_processes: int, cpus: str, log_dir: Path) -> Any:
    if os.environ.get("VOUCHERIFY_HOST"):
        return external()
    return managed(server_processes, worker_processes, cpus, log_dir)
