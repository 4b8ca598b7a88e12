"""What a checkout call costs the server's Python, without the HTTP server (plain script: prints a table).

.venv/bin/python -m loadtests.bench_checkout                  # CPU µs per call, 1 and 16 callers
.venv/bin/python -m loadtests.bench_checkout --profile 25     # and cProfile's top 25 frames by own time

The app runs in this process on its own Redis and PostgreSQL (started here, on free ports) and is called
as granian calls it: one ASGI call per request, concurrently from ``callers`` tasks. The load test's CPU
column mixes the server's Python with the HTTP server, the kernel and the other processes on two cores;
this isolates the part our code decides, so a change to the request path can be measured alone.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from server.app import build_app
from voucherd.platform import db, projects
from voucherd.platform.localstack import PostgresServer, RedisServer, free_port
from voucherd.platform.settings import Settings

CODES = 200
CUSTOMERS = 500
Body = dict[str, Any]


def single_code(rng: random.Random) -> Body:
    return {
        "redeemables": [{"object": "voucher", "id": f"BENCH-{rng.randrange(CODES)}"}],
        "order": {"amount": 12_000, "items": [{"sku_id": "sku-1", "quantity": 2, "price": 6_000}]},
        "customer": {"source_id": f"bench-customer-{rng.randrange(CUSTOMERS)}"},
    }


def five_redeemables(rng: random.Random) -> Body:
    body = single_code(rng)
    codes = rng.sample(range(CODES), k=3)
    body["redeemables"] = [{"object": "voucher", "id": f"BENCH-{c}"} for c in codes]
    body["redeemables"].append({"object": "voucher", "id": f"GIFT-{rng.randrange(CODES)}", "gift": {"credits": 1}})
    return body


CALLS: dict[str, tuple[str, Callable[[random.Random], Body]]] = {
    "validation": ("/v1/validations", single_code),
    "redemption": ("/v1/redemptions", single_code),
    "stack_redemption": ("/v1/redemptions", five_redeemables),
}


async def seed(app: Any, headers: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
        for n in range(CODES):
            coupon = {"code": f"BENCH-{n}", "type": "DISCOUNT_VOUCHER",
                      "discount": {"type": "PERCENT", "percent_off": 10}}  # fmt: skip
            gift = {"code": f"GIFT-{n}", "type": "GIFT_VOUCHER", "gift": {"amount": 10_000_000}}
            for voucher in (coupon, gift):
                answer = await client.post("/v1/vouchers", json=voucher)
                answer.raise_for_status()


class Caller:
    """Calls the ASGI app with one request the way an HTTP server does, and checks the status."""

    def __init__(self, app: Any, path: str, headers: dict[str, str]) -> None:
        self.app = app
        self.path = path
        self.headers = [(b"content-type", b"application/json")]
        self.headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def call(self, body: bytes) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": self.path, "raw_path": self.path.encode(), "query_string": b"", "root_path": "",
            "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # a disconnect that never comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


async def measure(caller: Caller, bodies: list[bytes], callers: int) -> float:
    """CPU µs per call of this process (the app's Python, its drivers and their system calls)."""
    queue = iter(bodies)
    statuses: dict[int, int] = {}

    async def one() -> None:
        for body in queue:
            status = await caller.call(body)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(callers)))
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses {statuses}")
    return spent / len(bodies) * 1e6


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="voucherd-bench-") as folder:
        root = Path(folder)
        root.chmod(0o755)  # PostgreSQL runs as its own user when we are root
        redis_server = RedisServer(root / "redis", free_port(), appendonly=False)
        postgres = PostgresServer(root / "pg", free_port(), durable=False)
        (root / "redis").mkdir()
        redis_server.start()
        postgres.start()
        try:
            await db.migrate_dsn(postgres.url)
            conn = await db.connect(postgres.url)
            try:
                _project, server_key, _client = await projects.create_project(conn, {"name": "bench"})
            finally:
                await conn.close()
            headers = {"X-App-Id": server_key.key_id, "X-App-Token": server_key.token}
            settings = Settings(redis_url=redis_server.url, database_url=postgres.url, access_log=False)
            app = build_app(settings)
            async with app.router.lifespan_context(app):
                await seed(app, headers)
                await report(app, headers, args)
        finally:
            redis_server.stop()
            postgres.stop()


async def report(app: Any, headers: dict[str, str], args: argparse.Namespace) -> None:
    rng = random.Random(7)
    print(f"{'call':18} {'callers':>7} {'CPU µs/call (rounds)':>40}")
    for name in args.calls.split(","):
        path, make = CALLS[name]
        caller = Caller(app, path, headers)
        await measure(caller, [orjson.dumps(make(rng)) for _ in range(200)], 4)  # warm: caches, connections
        for callers in (1, 16):
            rounds = [
                await measure(caller, [orjson.dumps(make(rng)) for _ in range(args.calls_per_round)], callers)
                for _ in range(args.rounds)
            ]
            print(f"{name:18} {callers:>7} {' / '.join(f'{r:6.0f}' for r in rounds):>40}")
        if args.profile:
            bodies = [orjson.dumps(make(rng)) for _ in range(args.calls_per_round)]
            profiler = cProfile.Profile()
            profiler.enable()
            await measure(caller, bodies, 16)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
            print(out.getvalue())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="validation,redemption,stack_redemption")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls-per-round", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N frames (16 callers)")
    asyncio.run(main(parser.parse_args()))
