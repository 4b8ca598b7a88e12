"""Redemption-to-persisted lag: how long after its commit a redemption is a row in PostgreSQL.

Starts its own stack (``bench_generate.own_stack``: Redis with AOF, durable PostgreSQL, one server process, one
worker process), then sends ``POST /v1/redemptions`` at a fixed arrival rate (default 1,000/s for 10 s, open loop:
requests are started on schedule, not after the previous answer). The lag of each redemption is its row's
``persisted_at`` (PostgreSQL's clock) minus the time in its stream entry id (Redis's clock, the instant the commit
script appended the event); both servers run on this machine, so the clocks agree. Prints p50/p95/p99/max lag,
the achieved request rate, and how long the worker needed after the last request.

    .venv/bin/python loadtests/bench_persist_lag.py [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import Target, own_stack

from voucherd.checkout import redemption_records
from voucherd.platform import keys

CODE = "LAG-BENCH"


async def send(target: Target, rate: float, seconds: float, concurrency: int) -> tuple[Counter[int | str], float]:
    """Redemptions at ``rate``/s for ``seconds``; returns the answers by status and the achieved rate."""
    total = int(rate * seconds)
    body = {"redeemables": [{"object": "voucher", "id": CODE}], "order": {"amount": 1000}}
    statuses: Counter[int | str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx2.AsyncClient) -> None:
        try:
            response = await client.post("/v1/redemptions", json=body)
            statuses[response.status_code] += 1
        except httpx2.HTTPError as exc:
            statuses[type(exc).__name__] += 1
        finally:
            gate.release()

    async with httpx2.AsyncClient(base_url=target.url, headers=target.headers, limits=limits, timeout=30) as client:
        started = time.monotonic()
        tasks = []
        for i in range(total):
            await gate.acquire()  # more than `concurrency` in flight: the generator (or server) is saturated
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            tasks.append(asyncio.ensure_future(one(client)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return statuses, total / elapsed


def committed_at(target: Target) -> dict[str, int]:
    """Redemption id -> epoch ms of its stream entry (the commit)."""
    client = redis.Redis.from_url(target.redis_url)
    stream = keys.project_stream(target.project_id, redemption_records.STREAM)
    out: dict[str, int] = {}
    last = "-"
    try:
        while True:
            entries: Any = client.xrange(stream, min=last, max="+", count=10_000)
            if last != "-":
                entries = entries[1:]
            if not entries:
                return out
            for entry_id, fields in entries:
                ms = int(entry_id.split(b"-")[0])
                payload = orjson.loads(fields[b"data"]) if b"data" in fields else {}
                for child in payload.get("applied") or []:
                    out[child["id"]] = ms
            last = entries[-1][0].decode()
    finally:
        client.close()


async def persisted_at(dsn: str, expected: int, wait_s: float) -> tuple[dict[str, int], float]:
    """Redemption id -> epoch ms of ``persisted_at``, once ``expected`` rows are there; and the wait."""
    conn = await asyncpg.connect(dsn)
    try:
        began = time.monotonic()
        while time.monotonic() - began < wait_s:
            count = await conn.fetchval("SELECT count(*) FROM redemptions WHERE voucher_code = $1", CODE)
            if count >= expected:
                break
            await asyncio.sleep(0.1)
        waited = time.monotonic() - began
        rows = await conn.fetch(
            "SELECT id, (extract(epoch FROM persisted_at) * 1000)::bigint AS ms FROM redemptions "
            "WHERE voucher_code = $1",
            CODE,
        )
        return {r["id"]: int(r["ms"]) for r in rows}, waited
    finally:
        await conn.close()


def percentile(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with own_stack() as target:
        created = httpx2.post(
            f"{target.url}/v1/vouchers/{CODE}",
            headers=target.headers,
            json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
            timeout=30,
        )
        created.raise_for_status()
        statuses, achieved = asyncio.run(send(target, args.rate, args.seconds, args.concurrency))
        ok = statuses.get(200, 0)
        stored, waited = asyncio.run(persisted_at(target.database_url, ok, wait_s=120))
        commits = committed_at(target)
    lags = [stored[i] - commits[i] for i in stored if i in commits]
    print(
        {
            "target_rate": args.rate,
            "achieved_rate": round(achieved),
            "statuses": dict(statuses),
            "persisted": len(stored),
            "matched": len(lags),
            "lag_ms_p50": percentile(lags, 50) if lags else None,
            "lag_ms_p95": percentile(lags, 95) if lags else None,
            "lag_ms_p99": percentile(lags, 99) if lags else None,
            "lag_ms_max": max(lags) if lags else None,
            "lag_ms_mean": round(statistics.fmean(lags)) if lags else None,
            "drain_after_load_s": round(waited, 2),
        }
    )


if __name__ == "__main__":
    main()
