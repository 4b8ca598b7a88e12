"""Read-your-writes for the customer and the order a redemption named (issue 17).

The hot path gives a new customer or order its id in Redis (``read_state.lua``) and the worker writes
it to PostgreSQL with the redemption. Until then ``GET /v1/customers/{id}`` and ``GET /v1/orders/{id}``
(by id or source_id) answer from the pending redemption events that named it
(``pending_redemptions``), shaped as the row the worker is about to write: the same columns,
PostgreSQL's defaults for the rest. A customer's ``summary.redemptions`` adds what its pending
redemptions and rollbacks will add, whether PostgreSQL has the customer yet or not.
Redis is asked first, PostgreSQL second, and PostgreSQL's row wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import customer_views, customers, orders
from voucherd.checkout import pending_redemptions
from voucherd.checkout.redemption_records import merge_named
from voucherd.platform import keys
from voucherd.platform.errors import NotFound

_CUSTOMER_DEFAULTS: dict[str, Any] = {
    "description": None,
    "phone": None,
    "birthdate": None,
    "birthday": None,
    "address": None,
    "redemptions_total_failed": 0,
    "redemptions_total_rollback_failed": 0,
    "gift_amount_to_go": 0,
    "loyalty_points_to_go": 0,
    "orders_total_amount": 0,
    "orders_total_count": 0,
    "orders_last_amount": 0,
    "orders_last_date": None,
    "loyalty": {"points": 0, "referred_customers": 0, "campaigns": {}},
    "referrals": {"total": 0, "campaigns": []},
    "system_metadata": {},
    "updated_at": None,
}


def _date(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def _pending_event(
    redis: aioredis.Redis, project_id: str, ref: str, ids_key: str, prefix: str
) -> dict[str, Any] | None:
    """The pending event naming the customer or order ``ref`` (an id, or a source_id Redis maps to one)."""
    raw = await redis.hget(ids_key, ref)
    names = [prefix + ref]
    if raw is not None:
        names.append(prefix + (raw.decode() if isinstance(raw, bytes) else str(raw)))
    return await pending_redemptions.read_event(redis, project_id, names)


def _merged(pending: pending_redemptions.Pending, event: dict[str, Any], name: str) -> tuple[dict[str, Any], datetime]:
    """The customer or order as the worker will write it from every pending event naming it, and the first date."""
    party_id = event[name]["id"]
    naming = [e for e in pending.events if (e.get(name) or {}).get("id") == party_id] or [event]
    naming.sort(key=lambda e: _date(e["date"]))
    merged: dict[str, Any] = {}
    for e in naming:
        merged = merge_named(merged, e[name])
    return merged, _date(naming[0]["date"])


_COUNTS = (
    "redemptions_total_redeemed",
    "redemptions_total_succeeded",
    "redemptions_total_rolled_back",
    "redemptions_total_rollback_succeeded",
    "gift_redeemed_amount",
    "loyalty_redeemed_points",
)


def _counted(pending: pending_redemptions.Pending, customer_id: str) -> list[dict[str, Any]]:
    """The customer's pending redemptions and rollbacks the worker's counters will count."""
    return [
        body
        for body in [*pending.redemptions.values(), *pending.rollbacks.values()]
        if body.get("customer_id") == customer_id
        and (body.get("voucher") or {}).get("code")
        and body.get("related_object_type") != "redemption"
        and body.get("result") == "SUCCESS"
    ]


def _summary_counts(bodies: list[dict[str, Any]]) -> dict[str, int]:
    """What the worker's counters (redemption_records._apply_counters) add for these bodies."""
    counts = dict.fromkeys(_COUNTS, 0)
    for body in bodies:
        sign = -1 if body.get("object") == "redemption_rollback" else 1
        if sign > 0:
            counts["redemptions_total_redeemed"] += 1
            counts["redemptions_total_succeeded"] += 1
        else:
            counts["redemptions_total_rolled_back"] += 1
            counts["redemptions_total_rollback_succeeded"] += 1
        counts["gift_redeemed_amount"] += sign * abs(int((body.get("gift") or {}).get("amount") or 0))
        counts["loyalty_redeemed_points"] += sign * abs(int((body.get("loyalty_card") or {}).get("points") or 0))
    return counts


def _names(event: dict[str, Any], ids: set[str], ref: str) -> bool:
    """Whether a pending event is about the customer ``ref`` (by id, by the id Redis maps it to, or by source_id)."""
    bodies = [event.get("customer") or {}, *(b.get("customer") or {} for b in event.get("applied") or [])]
    return any(c.get("id") in ids or c.get("source_id") == ref for c in bodies) or any(
        b.get("customer_id") in ids for b in event.get("applied") or []
    )


async def get_customer(redis: aioredis.Redis, conn: asyncpg.Connection, project_id: str, ref: str) -> dict[str, Any]:
    """The customer, with what its pending redemptions add to ``summary.redemptions`` (issue 17)."""
    mapped = await redis.hget(keys.customer_ids(project_id), ref)
    pending = await pending_redemptions.read_all(redis, project_id)
    ids = {ref, mapped.decode() if isinstance(mapped, bytes) else str(mapped or "")}
    if not any(_names(e, ids, ref) for e in pending.events):  # the usual case: PostgreSQL alone answers
        return await customers.get(conn, project_id, ref)
    # One snapshot: a batch the worker commits meanwhile is either in the row's counts or still added here.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await customers.find(conn, project_id, ref)
        if row is not None:
            bodies = _counted(pending, row["id"])
            if bodies:
                stored = await conn.fetch(
                    "SELECT id FROM redemptions WHERE project_id = $1 AND id = ANY($2::text[])",
                    project_id,
                    [b["id"] for b in bodies],
                )
                persisted = {r["id"] for r in stored}
                counts = _summary_counts([b for b in bodies if b["id"] not in persisted])
                return customer_views.customer_view({**dict(row), **{k: row[k] + v for k, v in counts.items()}})
            return customer_views.customer_view(row)
    event = next((e for e in pending.events if (e.get("customer") or {}).get("id") in ids), None)
    if event is None:
        raise NotFound.of("customer", ref)
    named, first = _merged(pending, event, "customer")
    row = {
        **_CUSTOMER_DEFAULTS,
        "id": named["id"],
        "source_id": named.get("source_id"),
        "name": named.get("name"),
        "email": named.get("email"),
        "metadata": named.get("metadata") or {},
        **_summary_counts(_counted(pending, named["id"])),
        "created_at": first,
    }
    return customer_views.customer_view(row)


async def get_order(redis: aioredis.Redis, conn: asyncpg.Connection, project_id: str, ref: str) -> dict[str, Any]:
    event = await _pending_event(redis, project_id, ref, keys.order_ids(project_id), "ord:")
    try:
        return await orders.get(conn, project_id, ref)
    except NotFound:
        if event is None:
            raise
    named, first = _merged(await pending_redemptions.read_all(redis, project_id), event, "order")
    row = {
        "id": named["id"],
        "source_id": named.get("source_id"),
        "status": "PAID",
        "amount": named.get("amount"),
        "initial_amount": named.get("initial_amount"),
        "discount_amount": named.get("discount_amount") or 0,
        "items_discount_amount": named.get("items_discount_amount") or 0,
        "items": named.get("items") or [],
        "metadata": named.get("metadata") or {},
        "customer_id": named.get("customer_id"),
        "referrer_id": None,
        "redemptions": {},
        "created_at": first,
        "updated_at": None,
    }
    return orders.order_view(row)
