"""Starting and stopping the service's processes in tests: wait for health, stop whole groups."""

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
