"""Custom events (``POST /v1/events``): stored as customer activity, feeding segment filters,
earning rules on custom events and referral conversion (issue 9)."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import activity, customer_views, customers, segments
from voucherd.loyalty import referrals
from voucherd.platform import listing
from voucherd.platform.errors import InvalidPayload


def _optional_object(body: dict[str, Any], name: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidPayload(f"Property .{name} should be an object")
    for key in fields:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidPayload(f"Property .{name}.{key} should be a string")
    return {key: value.get(key) for key in fields if value.get(key) is not None}


async def track(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    name = body.get("event")
    if not isinstance(name, str) or not 1 <= len(name) <= 300:
        raise InvalidPayload("Property .event is required and should be a string of 1 to 300 characters")
    if not isinstance(body.get("customer"), dict):
        raise InvalidPayload("Property .customer is required and should be an object")
    referral = _optional_object(body, "referral", ("code", "referrer_id"))
    loyalty = _optional_object(body, "loyalty", ("code",))
    metadata = listing.checked_metadata(body.get("metadata")) or {}
    async with conn.transaction():
        customer = await customers.upsert_from_request(conn, project_id, body["customer"], redis=redis)
        data = {
            "event": name,
            "customer": customer_views.simple_view(customer),
            "referral": referral,
            "loyalty": loyalty,
            "metadata": metadata,
        }
        activity_id = await customers.record_activity(
            conn, project_id, customer["id"], "customer.custom_event", data, event_name=name
        )
        # Issue 9, in this transaction: an earning trigger keyed by the activity (the worker gives points
        # once), and a referral conversion when the event names a referral code converting on it.
        await activity.record_event(conn, project_id, customer["id"], name, metadata, loyalty, activity_id)
        await referrals.record_event(conn, project_id, customer["id"], name, referral, activity_id)
    await activity.ring(redis, [project_id])  # after commit: wake the worker's loyalty task
    await segments.refresh_customer(conn, redis, project_id, customer)
    return {
        "object": "event",
        "type": name,
        "customer": customer_views.simple_view(customer),
        "referral": referral,
        "loyalty": loyalty,
        "metadata": metadata,
    }
