"""CSV imports, end to end: ``POST /v1/vouchers/importCSV`` and ``POST /v1/customers/importCSV`` with N rows.

Starts its own Redis, PostgreSQL, one API server process and one worker process (``bench_generate.own_stack``).
For each kind it prints the upload call's latency, the time from upload until the async action is DONE, rows/s,
the action's own processing_time, the progress values seen while polling every 50 ms (progress must move), CPU
seconds by role from the upload to DONE (see bench_generate.CpuSampler) with the load average, and checks that the
last imported code validates (vouchers) or the last customer reads back (customers). The customer file is
imported three times: first into a project without customers (every row new), then again (every row an update),
then a file of new customers into the project that now has them.

    .venv/bin/python loadtests/bench_imports.py --rows 100000 [--customers-only]

To compare two checkouts, run this file from each (``cd <checkout> && python <this file>``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import CpuSampler, Target, own_stack


def voucher_csv(rows: int) -> bytes:
    lines = ["Code,Voucher Type,Value,Discount Type,Category,Expiration Date,Redemption Limit,Active,Region"]
    for i in range(rows):
        kind = ("AMOUNT", "PERCENT")[i % 2]
        lines.append(f"BENCH-{i:07d},DISCOUNT_VOUCHER,{5 + i % 20},{kind},Bench,2090-01-01,{1 + i % 3},TRUE,EU{i % 7}")
    return ("\n".join(lines) + "\n").encode()


def customer_csv(rows: int, prefix: str = "cust") -> bytes:
    lines = ["Name,Source_id,Email,Phone,City,Country,Birthdate,favorite_brand"]
    for i in range(rows):
        lines.append(
            f"Customer {i},{prefix}-{i:07d},c{i}@example.com,+1 555 {i:07d},Berlin,DE,1990-01-{1 + i % 28:02d},B{i % 9}"
        )
    return ("\n".join(lines) + "\n").encode()


def run_one(target: Target, http: httpx.Client, path: str, data: bytes, rows: int) -> dict[str, Any]:
    sampler = CpuSampler().__enter__()
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    response = http.post(f"{target.url}{path}", headers=target.headers, files={"file": ("bench.csv", data, "text/csv")})
    response.raise_for_status()
    uploaded = time.monotonic()
    action_id = response.json()["async_action_id"]
    seen: list[int] = []
    while True:
        action = http.get(f"{target.url}/v1/async-actions/{action_id}", headers=target.headers).json()
        if not seen or seen[-1] != action["progress"]:
            seen.append(action["progress"])
        if action["status"] in ("DONE", "FAILED"):
            break
        time.sleep(0.05)
    done = time.monotonic()
    cpu_used = sampler.stop()
    return {
        "path": path,
        "rows": rows,
        "upload_ms": round((uploaded - began) * 1000),
        "upload_to_done_s": round(done - uploaded, 2),
        "rows_per_s": round(rows / (done - uploaded)),
        "processing_time_ms": action["processing_time"],
        "status": action["status"],
        "done_count": (action["result"] or {}).get("done_count"),
        "failed_count": (action["result"] or {}).get("failed_count"),
        "message": (action["result"] or {}).get("message"),
        "progress_seen": seen,
        "cpu_s_upload_to_done": cpu_used,
        "load": (round(load_before, 2), round(os.getloadavg()[0], 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers-only", action="store_true", help="only the customer imports")
    parser.add_argument("--segments", action="store_true", help="3 auto-update segments first (as the load test)")
    parser.add_argument(
        "--api-customers", type=int, default=0, help="customers created one by one through the API first (the seed's)"
    )
    args = parser.parse_args()
    with own_stack() as target, httpx.Client(timeout=120) as http:
        if not args.customers_only:
            run_vouchers(target, http, args.rows)
        if args.segments:  # every imported customer is evaluated against them
            for tier in ("gold", "silver", "bronze"):
                body = {
                    "name": tier,
                    "type": "auto-update",
                    "filter": {"metadata.tier": {"conditions": {"$is": [tier]}}},
                }
                http.post(f"{target.url}/v1/segments", headers=target.headers, json=body).raise_for_status()
        if args.api_customers:
            create_customers(target, args.api_customers)
            plain = run_one(target, http, "/v1/customers/importCSV", customer_csv(args.rows, "plain"), args.rows)
            print({**plain, "note": f"new customers into a project with {args.api_customers} created by the API"})
        customers = run_one(target, http, "/v1/customers/importCSV", customer_csv(args.rows), args.rows)
        print({**customers, "note": "the first import into the project: every row is new"})
        again = run_one(target, http, "/v1/customers/importCSV", customer_csv(args.rows), args.rows)
        print({**again, "note": "the same file again: every row is an update"})
        known = run_one(target, http, "/v1/customers/importCSV", customer_csv(args.rows, "new"), args.rows)
        print({**known, "note": "new customers into a project that has customers (the load test's case)"})
        last_customer = http.get(f"{target.url}/v1/customers/cust-{args.rows - 1:07d}", headers=target.headers)
        print(f"last customer reads back: {last_customer.status_code == 200}")


def create_customers(target: Target, count: int) -> None:
    began = time.monotonic()

    def make(i: int) -> None:
        body = {"source_id": f"api-{i}", "name": f"Customer {i}", "email": f"c{i}@example.com"}
        httpx.post(f"{target.url}/v1/customers", headers=target.headers, json=body, timeout=30).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(count)))
    print(f"{count} customers created through the API in {time.monotonic() - began:.1f} s")


def run_vouchers(target: Target, http: httpx.Client, rows: int) -> None:
    vouchers = run_one(target, http, "/v1/vouchers/importCSV", voucher_csv(rows), rows)
    print(vouchers)
    last = f"BENCH-{rows - 1:07d}"
    body = {"redeemables": [{"object": "voucher", "id": last}], "order": {"amount": 10000}}
    valid = http.post(f"{target.url}/v1/validations", headers=target.headers, json=body).json().get("valid")
    print(f"last imported code {last} validates: {valid}")


if __name__ == "__main__":
    main()
