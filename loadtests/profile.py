"""py-spy profiles of the server processes while wrk keeps them busy, summarised for the report.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;frame count``); summing them by
leaf frame gives where the CPU is spent (self time), and by every frame on the stack the inclusive time.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from loadtests import wrk


def available() -> bool:
    return shutil.which("py-spy") is not None or Path(".venv/bin/py-spy").exists()


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(".venv/bin/py-spy").resolve())


def summarise(raw_files: list[Path], top: int = 15) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in raw_files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[_short(frames[-1])] += n
            for frame in {_short(f) for f in frames}:
                inclusive[frame] += n

    def share(counter: Counter[str], cap: float = 1.0) -> list[tuple[str, float]]:
        # The frames on (nearly) every stack, the process bootstrap, say nothing: keep those under ``cap``
        # of the most common frame.
        most = max(counter.values(), default=0)
        kept = [(frame, n) for frame, n in counter.most_common() if n < cap * most]
        return [(frame, round(100 * n / total, 1)) for frame, n in kept[:top]] if total else []

    return {"samples": total, "self": share(own), "inclusive": share(inclusive, cap=0.95)}


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: lines differ per sample, files do not."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if parts else file
    return f"{name} ({short})" if where else name


def record(
    url: str, script: Path, pids: list[int], seconds: int, out_dir: Path, connections: int = 16, load_cpus: str = ""
) -> dict[str, Any]:
    """Loads the server with wrk for ``seconds + 2`` while py-spy samples each server pid for ``seconds``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    load: dict[str, Any] = {}

    def drive() -> None:
        load.update(wrk.run(url, script, connections, seconds + 2, load_cpus))

    driver = threading.Thread(target=drive)
    driver.start()
    procs, raws = [], []
    for pid in pids:
        raw = out_dir / f"{script.stem.removeprefix('wrk_')}-{pid}.txt"
        raws.append(raw)
        argv = [
            _py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(raw),
        ]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    for proc in procs:
        try:
            proc.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    driver.join(seconds + 60)
    summary = summarise([r for r in raws if r.exists()])
    summary.update(load=load, files=[str(r) for r in raws if r.exists()])
    return summary
