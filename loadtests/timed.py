"""Timed runs: bulk code generation (and, once the API has it, a CSV import).

Creating a campaign answers at once and generates its codes as an async action; the clock runs from
the request until the action reports DONE and a sample of the newest codes validates.
"""

from __future__ import annotations

import time
from typing import Any

from loadtests.api import Api, Target
from loadtests.seed import create_coupon_campaign, list_codes

CSV_IMPORT_NOTE = "not implemented yet: voucherd has no `POST /v1/vouchers/importCSV` (async CSV import) today"


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
