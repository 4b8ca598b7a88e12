"""Exports, end to end: ``POST /v1/exports`` of N redemptions until the file is DONE, then its download.

Starts its own Redis, PostgreSQL, one API server process and one worker process (``bench_generate.own_stack``),
writes N redemption rows straight into PostgreSQL (as the worker would have persisted them, one customer in
a hundred distinct), then for each field set prints the time from the create call until the export is DONE,
rows/s, the async action's processing_time, the progress values seen while polling every 100 ms, and the
download's time and size (the file is streamed and counted, never held), and the worker's peak resident
memory (a file held whole would show as its size).

    .venv/bin/python loadtests/bench_exports.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import Target, own_stack

SEED = """
INSERT INTO customers (project_id, id, source_id, name)
SELECT $1, 'cust_bench_' || i, 'bench-' || i, 'Customer ' || i FROM generate_series(1, greatest($2 / 100, 1)) AS i;
INSERT INTO redemptions (id, project_id, object, result, status, customer_id, voucher_code, campaign_id, campaign_name,
                         related_object_type, related_object_id, order_id, tracking_id, date, body)
SELECT 'r_bench' || lpad(i::text, 12, '0'), $1, 'redemption', 'SUCCESS', 'SUCCEEDED',
       'cust_bench_' || (1 + i % greatest($2 / 100, 1)),
       'CODE-' || (i % 50000), 'camp_bench', 'Bench', 'voucher', 'v_bench' || (i % 50000), 'ord_bench' || i,
       'track_' || i, now() - make_interval(secs => i),
       jsonb_build_object('id', 'r_bench' || i, 'object', 'redemption', 'result', 'SUCCESS',
                          'order', jsonb_build_object('id', 'ord_bench' || i, 'amount', 1000 + i % 9000),
                          'metadata', jsonb_build_object('shop', 'shop-' || (i % 20)))
FROM generate_series(1, $2) AS i;
"""

FIELD_SETS = {
    "default fields": None,
    "with body fields": ["id", "date", "voucher_code", "customer_id", "order_amount", "result", "metadata"],
}


async def seed(database_url: str, project_id: str, rows: int) -> float:
    began = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        for statement in SEED.strip().split(";\n"):
            await conn.execute(statement.replace("$1", f"'{project_id}'").replace("$2", str(rows)))
        await conn.execute("ANALYZE redemptions; ANALYZE customers")
    finally:
        await conn.close()
    return time.monotonic() - began


def worker_peak_rss_mb() -> float | None:
    """The peak resident memory of this benchmark's worker process (a child running ``-m worker``)."""
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == me and b"worker" in cmdline and b"-m" in cmdline:
            return round(int(fields["VmHWM"].split()[0]) / 1024, 1)
    return None


def run_one(target: Target, http: httpx.Client, fields: list[str] | None, rows: int) -> dict[str, Any]:
    body: dict[str, Any] = {"exported_object": "redemption"}
    if fields:
        body["parameters"] = {"fields": fields}
    began = time.monotonic()
    response = http.post(f"{target.url}/v1/exports", headers=target.headers, json=body)
    response.raise_for_status()
    export = response.json()
    seen: list[int] = []
    while True:
        export = http.get(f"{target.url}/v1/exports/{export['id']}", headers=target.headers).json()
        actions = http.get(f"{target.url}/v1/async-actions?limit=1", headers=target.headers).json()["async_actions"]
        if actions and (not seen or seen[-1] != actions[0]["progress"]):
            seen.append(actions[0]["progress"])
        if export["status"] in ("DONE", "ERROR"):
            break
        time.sleep(0.1)
    done = time.monotonic()
    action = http.get(f"{target.url}/v1/async-actions/{actions[0]['id']}", headers=target.headers).json()
    size = lines = 0
    downloaded = time.monotonic()
    with http.stream("GET", export["result"]["url"]) as stream:
        stream.raise_for_status()
        for chunk in stream.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return {
        "rows": rows,
        "create_to_done_s": round(done - began, 2),
        "rows_per_s": round(rows / (done - began)),
        "processing_time_ms": action["processing_time"],
        "status": export["status"],
        "progress_seen": seen,
        "file_lines": lines,
        "file_mb": round(size / 1e6, 1),
        "download_s": round(time.monotonic() - downloaded, 2),
        "worker_peak_rss_mb": worker_peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with own_stack() as target, httpx.Client(timeout=120) as http:
        print(
            {
                "seeded_rows": args.rows,
                "seed_s": round(asyncio.run(seed(target.database_url, target.project_id, args.rows)), 1),
            }
        )
        for name, fields in FIELD_SETS.items():
            result = run_one(target, http, fields, args.rows)
            print({"fields": name, **result}, flush=True)
            assert result["status"] == "DONE" and result["file_lines"] == args.rows + 1, result


if __name__ == "__main__":
    main()
