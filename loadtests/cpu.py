"""CPU time by role over a load window, read from the processes' own counters (/proc/<pid>/stat).

The stack's processes are sorted into roles by their command lines (server, worker, Redis, PostgreSQL);
the load generator is a child of this process, so its time is the rise of RUSAGE_CHILDREN around it.
CPU µs per request = the role's CPU time over the window / the requests answered in it.

The whole machine's counters (/proc/stat) say the rest: how much of the cores stayed idle over the
window (idle CPU beside arrivals that back up means a queueing point other than CPU), and how much
went to processes outside the stack and the load generator ("other": whatever else the box runs).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("server", "worker", "redis", "postgres")
_TICK = os.sysconf("SC_CLK_TCK")


def role_of(cmdline: bytes) -> str | None:
    args = cmdline.split(b"\x00")
    head = os.path.basename(args[0]) if args else b""
    if b"-m" in args and args[args.index(b"-m") + 1 : args.index(b"-m") + 2] == [b"worker"]:
        return "worker"  # python -m worker, as voucherd run starts it
    if b"voucherd.cli" in args or head == b"voucherd":
        if b"serve" in args:
            return "server"
        if b"worker" in args:
            return "worker"
        return None  # the launcher itself: it only waits
    if head.startswith(b"redis-server"):
        return "redis"
    if head.startswith((b"postgres", b"postmaster")):
        return "postgres"
    return None


def _cpu_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of proc(5))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclass
class Snapshot:
    ticks: dict[int, tuple[str, int]]  # pid -> (role, utime + stime)
    children_s: float
    machine: tuple[int, int]  # (busy, idle) ticks of every core, from /proc/stat


def _machine_ticks() -> tuple[int, int]:
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return (0, 0)
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (sum(values) - idle, idle)


def snapshot(pids: Iterable[int]) -> Snapshot:
    ticks = {}
    for pid in pids:
        role = role_of(_cmdline(pid))
        if role is not None and (t := _cpu_ticks(pid)) is not None:
            ticks[pid] = (role, t)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Snapshot(ticks, usage.ru_utime + usage.ru_stime, _machine_ticks())


def measure(pids: Callable[[], Iterable[int]], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one load step and return its result with ``cpu_us_per_request`` by role (and ``load``).

    A process that started during the window counts from zero; one that ended during it is lost
    (a restart under load would make its role look cheaper, which the report would show as a gap).
    """
    before = snapshot(pids())
    result = run()
    after = snapshot(pids())
    seconds = dict.fromkeys(ROLES, 0.0)
    for pid, (role, ticks) in after.ticks.items():
        start = before.ticks.get(pid, (role, 0))[1]
        seconds[role] += (ticks - start) / _TICK
    seconds["load"] = after.children_s - before.children_s
    requests = int(result.get("answered") or result.get("count") or 0)
    busy = (after.machine[0] - before.machine[0]) / _TICK
    idle = (after.machine[1] - before.machine[1]) / _TICK
    seconds["other"] = max(0.0, busy - sum(seconds.values()))
    result["idle_pct"] = round(100 * idle / (busy + idle), 1) if busy + idle else None
    result["cpu_s"] = {role: round(s, 3) for role, s in seconds.items()}
    result["cpu_us_per_request"] = {
        role: round(s * 1e6 / requests, 1) if requests else None for role, s in seconds.items()
    }
    return result
