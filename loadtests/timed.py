"""Timed runs: bulk code generation and a customer CSV import.

Creating a campaign answers at once and generates its codes as an async action; the clock runs from
the request until the action reports DONE and a sample of the newest codes validates. The CSV import's
clock runs from the upload until its action reports DONE and the last customer reads back.
"""

from __future__ import annotations

import http.client
import time
import uuid
from typing import Any

import orjson

from loadtests.api import Api, Target, wait_until
from loadtests.seed import create_coupon_campaign, list_codes

CSV_GOAL_S = 5.0


def campaign_with_codes(target: Target, count: int, sample: int = 100) -> dict[str, Any]:
    api = Api(target)
    name = f"timed-{count}-{int(time.time() * 1000) % 10**8}"
    t0 = time.perf_counter()
    created = create_coupon_campaign(api, name, count)
    done_at = time.perf_counter() - t0
    codes = list_codes(api, name, sample)
    body = {"order": {"amount": 10000}}
    invalid = [
        c
        for c in codes
        if not api.post("/v1/validations", {"redeemables": [{"object": "voucher", "id": c}], **body})["valid"]
    ]
    validated_at = time.perf_counter() - t0
    total = api.get(f"/v1/campaigns/{created['campaign']['id']}")["vouchers_count"]
    return {
        "count": count,
        "create_call_ms": round(created["create_s"] * 1000, 1),
        "done_s": round(done_at, 2),
        "validated_s": round(validated_at, 2),
        "processing_ms": created["action"].get("processing_time"),
        "vouchers_count": total,
        "sample": len(codes),
        "invalid_in_sample": len(invalid),
        "ok": not invalid and len(codes) == min(sample, count),
    }


def customer_csv(rows: int, tag: str) -> bytes:
    lines = ["Name,Source_id,Email,Phone,City,Country,Birthdate,favorite_brand"]
    for i in range(rows):
        lines.append(
            f"Customer {i},csv-{tag}-{i:07d},c{i}@{tag}.example.com,+1 555 {i:07d},Berlin,DE,"
            f"1990-01-{1 + i % 28:02d},B{i % 9}"
        )
    return ("\n".join(lines) + "\n").encode()


def _upload(target: Target, path: str, data: bytes) -> dict[str, Any]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="customers.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    host, port = target.host_port
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        headers = {**target.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise RuntimeError(f"POST {path} -> HTTP {response.status}: {answer[:300]!r}")
        result: dict[str, Any] = orjson.loads(answer)
        return result
    finally:
        conn.close()


def customer_csv_import(target: Target, rows: int) -> dict[str, Any]:
    """``POST /v1/customers/importCSV`` of ``rows`` new customers into the seeded project."""
    api = Api(target)
    tag = f"t{int(time.time() * 1000) % 10**8}"
    data = customer_csv(rows, tag)
    t0 = time.perf_counter()
    action_id = _upload(target, "/v1/customers/importCSV", data)["async_action_id"]
    uploaded = time.perf_counter() - t0
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(api.get(f"/v1/async-actions/{action_id}"))
        return state["status"] in ("DONE", "FAILED")

    wait_until(done, 300, interval=0.05, what=f"import of {rows} customers")
    done_s = time.perf_counter() - t0
    last = api.get(f"/v1/customers/csv-{tag}-{rows - 1:07d}")
    result = state.get("result") or {}
    return {
        "rows": rows,
        "upload_ms": round(uploaded * 1000),
        "done_s": round(done_s, 2),
        "processing_ms": state.get("processing_time"),
        "done_count": result.get("done_count"),
        "failed_count": result.get("failed_count"),
        "ok": state["status"] == "DONE" and result.get("done_count") == rows and last.get("source_id") is not None,
    }
