"""``GET /v1/loyalties/{campaignId}/members/{memberId}/points-expiration``: a card's points buckets.

A bucket (``lopb_``) is points added with an expiry date. What is left in each is what was added less
the card's outflow (points spent or expired), taken from the soonest-expiring buckets first, as
``loyalty_cards.card_summary`` counts it for the next expiration. Expired buckets are left out (the
points expiration export lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.definitions import voucher_state
from voucherd.platform import listing
from voucherd.platform.timeutil import iso, utcnow


async def list_buckets(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    card: asyncpg.Record,
    query: Mapping[str, str],
    now: datetime | None = None,
) -> dict[str, Any]:
    limit, offset = listing.page_params(query)
    now = now or utcnow()
    live = (await voucher_state.live_counters(redis, project_id, [card["code"]]))[0] or {}
    balance = int(live.get("points", card["loyalty_balance"] or 0))
    total = int(live.get("points_total", card["loyalty_points"] or 0))
    rows = await conn.fetch(
        "SELECT * FROM loyalty_points_buckets WHERE project_id = $1 AND code = $2 ORDER BY expires_at, id",
        project_id,
        card["code"],
    )
    outflow = max(0, total - balance)
    buckets = []
    for row in rows:
        left = max(0, int(row["points"]) - outflow)
        outflow = max(0, outflow - int(row["points"]))
        if row["expires_at"] <= now:
            continue  # expired buckets are listed by the points expiration export, not here
        buckets.append(
            {
                "id": row["id"],
                "voucher_id": card["id"],
                "campaign_id": card["campaign_id"],
                "bucket": {"total_points": left},
                "status": "ACTIVE",
                "expires_at": row["expires_at"].date().isoformat(),
                "created_at": iso(row["created_at"]),
                "object": "loyalty_points_bucket",
            }
        )
    return {"object": "list", "data_ref": "data", "data": buckets[offset : offset + limit], "total": len(buckets)}
