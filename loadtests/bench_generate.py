"""Bulk code generation, end to end: ``POST /v1/campaigns`` with ``vouchers_count`` N against real servers.

Starts its own Redis (AOF, appendfsync everysec), PostgreSQL (durable), one API server process and one
worker process in a temporary folder, unless ``--url`` names a running voucherd (then also pass
``--app-id``, ``--app-token``, ``--redis-url`` and ``--project-id``). For each N it prints:

* the create call's own latency (it answers at once; the codes are the CAMPAIGN.VOUCHERS_GENERATE action),
* the time from the create call's return until the action reports DONE (polled every 50 ms), codes/s over
  that time, and the action's own processing time,
* CPU seconds by role (server, worker, Redis, PostgreSQL by process kind) over that time, read from /proc
  every 0.2 s, and the load average before and after (the box is shared: compare runs made alternately),
* the checks that make DONE mean "validatable": 100 codes from the first and the last listing pages validate
  through ``POST /v1/validations`` (a large generation writes each code's state hash on its first read:
  see voucherd.definitions.voucher_state), their hashes then hold their ids, and one code with a limit of 1
  redeems once and is refused the second time.

To compare two checkouts, run this file from each (``cd <checkout> && python <this file>``): the servers
it starts import voucherd from the working directory.

    .venv/bin/python loadtests/bench_generate.py --counts 100000,1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu  # a sibling module: this file runs as a script

from voucherd.platform import keys
from voucherd.platform.localstack import PostgresServer, RedisServer, free_port
from voucherd.platform.settings import Settings


@dataclass
class Target:
    url: str
    app_id: str
    app_token: str
    redis_url: str
    project_id: str
    database_url: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-App-Id": self.app_id, "X-App-Token": self.app_token}


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


@contextlib.contextmanager
def own_stack() -> Iterator[Target]:
    """Redis + PostgreSQL + 1 server process + 1 worker process, all torn down afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="voucherd-bench-"))
    folder.chmod(0o755)
    redis_server = RedisServer(folder / "redis", free_port(), appendonly=True, appendfsync="everysec")
    postgres = PostgresServer(folder / "pg", free_port(), durable=True)
    children: list[subprocess.Popen[bytes]] = []
    try:
        redis_server.start()
        postgres.start()
        settings = Settings(
            redis_url=redis_server.url,
            database_url=postgres.url,
            data_dir=folder,
            port=free_port(),
            server_processes=1,
            worker_processes=1,
            log_level="WARNING",
            log_format="text",
        )
        env = {**os.environ, **settings.to_env()}
        created = subprocess.run(
            [sys.executable, "-m", "voucherd.cli", "create-project", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        project = _json_tail(created.stdout)
        server = subprocess.Popen([sys.executable, "-m", "voucherd.cli", "serve"], env=env)
        children.append(server)
        children.append(subprocess.Popen([sys.executable, "-m", "worker"], env=env))
        url = f"http://127.0.0.1:{settings.port}"
        _wait_http(url, server)
        yield Target(
            url, project["app_id"], project["app_token"], redis_server.url, project["project_id"], postgres.url
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(20)
        postgres.stop()
        redis_server.stop()
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def _json_tail(text: str) -> dict[str, Any]:
    """The server-side key and project id printed by ``voucherd create-project``."""
    created: dict[str, Any] = json.loads(text[text.index("{") :])
    return {**created["server_side_key"], "project_id": created["project_id"]}


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (the stack this script started), for CPU seconds by role."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class CpuSampler:
    """CPU seconds by role of every process below this one, sampled every 0.2 s from /proc so that
    short-lived processes (PostgreSQL's autovacuum workers) count too; PostgreSQL also by process title."""

    def __init__(self) -> None:
        self.ticks: dict[int, tuple[str, int]] = {}
        self.first: dict[int, int] = {}
        self.initial: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in _descendants(os.getpid()):
            with contextlib.suppress(OSError, IndexError, ValueError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                role = cpu.role_of(cmdline)
                if role is None:
                    continue
                if role == "postgres":
                    title = cmdline.split(b"\x00")[0].decode(errors="replace")
                    kind = title.removeprefix("postgres: ").split(" ")[0]
                    role = "postgres" if kind.startswith("/") else f"postgres {kind}"
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])
                self.first.setdefault(pid, ticks)
                self.ticks[pid] = (role, ticks)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()  # processes present now count from here, later ones from zero
        self.initial = set(self.first)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        seconds: dict[str, float] = {}
        for pid, (role, ticks) in self.ticks.items():
            start = self.first[pid] if pid in self.initial else 0
            seconds[role] = seconds.get(role, 0.0) + (ticks - start) / os.sysconf("SC_CLK_TCK")
        return {role: round(s, 2) for role, s in sorted(seconds.items()) if s > 0}

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def run_one(target: Target, count: int, http: httpx.Client) -> dict[str, Any]:
    r = redis.Redis.from_url(target.redis_url)
    name = f"bench-{count}-{random.randrange(1 << 30):x}"
    body = {
        "name": name,
        "voucher": {
            "type": "DISCOUNT_VOUCHER",
            "discount": {"type": "AMOUNT", "amount_off": 500},
            "redemption": {"quantity": 1},
            "code_config": {"length": 12, "prefix": "B-"},
        },
        "vouchers_count": count,
    }
    sampler = CpuSampler().__enter__()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    response = http.post(f"{target.url}/v1/campaigns", json=body, headers=target.headers)
    returned = time.perf_counter()
    response.raise_for_status()
    campaign = response.json()
    action_id = campaign["async_action_id"]
    deadline = returned + 300
    while True:
        action = http.get(f"{target.url}/v1/async-actions/{action_id}", headers=target.headers).json()
        if action["status"] in ("DONE", "FAILED"):
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the generation of {count} codes was not done in 300 s: {action}")
        time.sleep(0.05)
    done = time.perf_counter()
    cpu_used = sampler.stop()
    load_after = os.getloadavg()[0]
    # Codes from the first and the last listing pages, read back through the API as a client would.
    sample: list[dict[str, Any]] = []
    for page in (1, 99):
        sample += http.get(
            f"{target.url}/v1/vouchers",
            params={"campaign_id": campaign["id"], "limit": 50, "page": page},
            headers=target.headers,
        ).json()["vouchers"]
    total = http.get(f"{target.url}/v1/campaigns/{campaign['id']}", headers=target.headers).json()["vouchers_count"]
    validated = [_validate(http, target, v["code"]) for v in sample]
    present = sum(
        1 for v in sample if r.hget(keys.voucher_state(target.project_id, v["code"]), "id") == v["id"].encode()
    )
    redeemed = _redeem_twice(http, target, sample[-1]["code"]) if sample else "no codes"
    return {
        "count": count,
        "create_ms": (returned - t0) * 1000,
        "done_s": done - returned,
        "processing_ms": action.get("processing_time"),
        "status": action["status"],
        "result": action.get("result"),
        "total": total,
        "sample_valid": f"{validated.count('valid')}/{len(sample)}"
        + ("" if validated.count("valid") == len(sample) else f" ({sorted(set(validated))})"),
        "sample_state": f"{present}/{len(sample)}",
        "redeemed": redeemed,
        "cpu_s": cpu_used,
        "load": (load_before, load_after),
    }


def _redeem_twice(http: httpx.Client, target: Target, code: str) -> str:
    """The code's limit is 1: the first redemption succeeds, the second is refused."""
    body = {"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": 10000}}
    first = http.post(f"{target.url}/v1/redemptions", json=body, headers=target.headers)
    second = http.post(f"{target.url}/v1/redemptions", json=body, headers=target.headers)
    ok = first.status_code == 200 and first.json()["redemptions"][0].get("result") == "SUCCESS"
    refused = second.status_code == 400 and second.json().get("key") == "quantity_exceeded"
    return "redeemed once, refused after" if ok and refused else f"UNEXPECTED {first.text[:200]} / {second.text[:200]}"


def _validate(http: httpx.Client, target: Target, code: str) -> str:
    response = http.post(
        f"{target.url}/v1/validations",
        json={"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": 10000}},
        headers=target.headers,
    )
    if response.status_code == 404 and "not_found" not in response.text:
        return "no /v1/validations on this server yet"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    return "valid" if response.json().get("valid") else f"invalid: {response.text[:200]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="100000,1000000")
    parser.add_argument("--url")
    parser.add_argument("--app-id")
    parser.add_argument("--app-token")
    parser.add_argument("--redis-url")
    parser.add_argument("--project-id")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.url:
        stack: contextlib.AbstractContextManager[Target] = contextlib.nullcontext(
            Target(args.url, args.app_id, args.app_token, args.redis_url, args.project_id)
        )
    else:
        stack = own_stack()
    with stack as target, httpx.Client(timeout=60) as http:
        print(f"{'codes':>9} {'create ms':>9} {'→ DONE s':>8} {'codes/s':>9} {'action ms':>9}  checks")
        for count in counts:
            row = run_one(target, count, http)
            rate = row["count"] / row["done_s"] if row["done_s"] > 0 else float("inf")
            print(
                f"{row['count']:>9} {row['create_ms']:>9.1f} {row['done_s']:>8.2f} {rate:>9.0f} "
                f"{row['processing_ms']!s:>9}  {row['status']}, listed {row['total']}, "
                f"sample valid {row['sample_valid']}, state hashes after {row['sample_state']}, {row['redeemed']}; "
                f"{(row['result'] or {}).get('message')}; CPU s until DONE {row['cpu_s']}, "
                f"load {row['load'][0]:.1f}→{row['load'][1]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
