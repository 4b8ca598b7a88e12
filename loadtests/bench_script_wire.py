"""Client CPU per EVALSHA through the script wire (voucherd/platform/script_wire.py), by concurrency.

Starts its own redis-server, then for 1, 16 and 64 concurrent callers runs 40,000 calls of a one-line
script in one uvloop event loop and prints this process's CPU µs per call (user + system, from
getrusage) and the share of it spent in the kernel. The hot path's callers are the requests in
flight in one server process, so the 16 and 64 rows are the ones a loaded server sees.

    .venv/bin/python loadtests/bench_script_wire.py

To compare two checkouts: ``cd <checkout> && PYTHONPATH=. <venv>/bin/python loadtests/bench_script_wire.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import resource
import tempfile
from pathlib import Path

import uvloop

from voucherd.platform.localstack import RedisServer, free_port
from voucherd.platform.script_wire import ScriptWire

SCRIPT = "return 1"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


async def measure(port: int, concurrency: int, calls: int) -> str:
    wire = ScriptWire({"host": "127.0.0.1", "port": port})
    await wire.evalsha(SHA, SCRIPT, [], [], replay_safe=True)  # connects and loads the script
    each = calls // concurrency

    async def caller() -> None:
        for _ in range(each):
            await wire.evalsha(SHA, SCRIPT, ["k"], ["a", "b"], replay_safe=True)

    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    wire.close()
    system = after.ru_stime - before.ru_stime
    cpu = after.ru_utime - before.ru_utime + system
    per_call = cpu / (each * concurrency) * 1e6
    return f"{concurrency:>3} callers: {per_call:5.1f} µs CPU per call, {system / cpu:.0%} in the kernel"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder), free_port(), appendonly=False)
        server.start()
        try:
            for concurrency in (1, 16, 64):
                print(uvloop.run(measure(server.port, concurrency, 40_000)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
