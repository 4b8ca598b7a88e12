"""CSV imports, end to end: ``POST /v1/vouchers/importCSV`` and ``POST /v1/customers/importCSV`` with N rows.

Starts its own Redis, PostgreSQL, one API server process and one worker process (``bench_generate.own_stack``).
For each kind it prints the upload call's latency, the time from upload until the async action is DONE, rows/s,
the action's own processing_time, the progress values seen while polling every 50 ms (progress must move), and
checks that the last imported code validates (vouchers) or the last customer reads back (customers).

    .venv/bin/python loadtests/bench_imports.py --rows 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import Target, own_stack


def voucher_csv(rows: int) -> bytes:
    lines = ["Code,Voucher Type,Value,Discount Type,Category,Expiration Date,Redemption Limit,Active,Region"]
    for i in range(rows):
        kind = ("AMOUNT", "PERCENT")[i % 2]
        lines.append(f"BENCH-{i:07d},DISCOUNT_VOUCHER,{5 + i % 20},{kind},Bench,2090-01-01,{1 + i % 3},TRUE,EU{i % 7}")
    return ("\n".join(lines) + "\n").encode()


def customer_csv(rows: int) -> bytes:
    lines = ["Name,Source_id,Email,Phone,City,Country,Birthdate,favorite_brand"]
    for i in range(rows):
        lines.append(
            f"Customer {i},cust-{i:07d},c{i}@example.com,+1 555 {i:07d},Berlin,DE,1990-01-{1 + i % 28:02d},B{i % 9}"
        )
    return ("\n".join(lines) + "\n").encode()


def run_one(target: Target, http: httpx.Client, path: str, data: bytes, rows: int) -> dict[str, Any]:
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
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with own_stack() as target, httpx.Client(timeout=120) as http:
        vouchers = run_one(target, http, "/v1/vouchers/importCSV", voucher_csv(args.rows), args.rows)
        print(vouchers)
        last = f"BENCH-{args.rows - 1:07d}"
        body = {"redeemables": [{"object": "voucher", "id": last}], "order": {"amount": 10000}}
        valid = http.post(f"{target.url}/v1/validations", headers=target.headers, json=body).json().get("valid")
        print(f"last imported code {last} validates: {valid}")
        customers = run_one(target, http, "/v1/customers/importCSV", customer_csv(args.rows), args.rows)
        print(customers)
        again = run_one(target, http, "/v1/customers/importCSV", customer_csv(args.rows), args.rows)
        print({**again, "note": "the same file again: every row is an update"})
        last_customer = http.get(f"{target.url}/v1/customers/cust-{args.rows - 1:07d}", headers=target.headers)
        print(f"last customer reads back: {last_customer.status_code == 200}")


if __name__ == "__main__":
    main()
