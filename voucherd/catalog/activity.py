"""What happened to customers that programs react to: a paid order, a segment entered, a custom event.

Each is written as a row of ``loyalty_triggers`` in the transaction that records the fact, with an id
derived from it, and the project's ``loyalty`` stream is rung after the commit; the worker's loyalty task
(voucherd/loyalty/earning.py) turns triggers into points. The catalog writes triggers without knowing
the programs, so it never imports loyalty.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.platform import keys
from voucherd.platform.ids import stable_id
from voucherd.platform.messages import encode

STREAM = "loyalty"
ORDER_PAID = "order.paid"
SEGMENT_ENTERED = "customer.segment.entered"


async def record_trigger(
    conn: asyncpg.Connection, project_id: str, trigger_id: str, kind: str, customer_id: str | None, data: Any
) -> None:
    """One trigger row, once per id (call in the transaction that records its cause)."""
    await record_triggers(conn, [(trigger_id, project_id, kind, customer_id, data)])


async def record_triggers(conn: asyncpg.Connection, rows: list[tuple[str, str, str, str | None, Any]]) -> None:
    """Trigger rows ``(id, project id, kind, customer id, data)``, each once per id, in one round trip."""
    if rows:
        await conn.executemany(
            "INSERT INTO loyalty_triggers (id, project_id, kind, customer_id, data) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (id) DO NOTHING",
            rows,
        )


async def record_order(
    conn: asyncpg.Connection, project_id: str, before: asyncpg.Record | None, row: asyncpg.Record
) -> None:
    """An order that became PAID over ``/v1/orders`` (call in the order's transaction)."""
    if row["status"] != "PAID" or row["customer_id"] is None or (before is not None and before["status"] == "PAID"):
        return
    order = {
        "id": row["id"],
        "source_id": row["source_id"],
        "amount": row["amount"],
        "initial_amount": row["initial_amount"],
        "discount_amount": row["discount_amount"],
        "items": row["items"] or [],
        "metadata": row["metadata"] or {},
    }
    await record_trigger(
        conn, project_id, stable_id("ltrg", ORDER_PAID, row["id"]), ORDER_PAID, row["customer_id"], {"order": order}
    )


async def record_event(
    conn: asyncpg.Connection,
    project_id: str,
    customer_id: str,
    name: str,
    metadata: dict[str, Any],
    loyalty: dict[str, Any] | None,
    event_id: str,
) -> None:
    """A custom event (call in the event's transaction)."""
    await record_trigger(
        conn,
        project_id,
        stable_id("ltrg", "event", event_id),
        "custom_event",
        customer_id,
        {"event": name, "metadata": metadata, "loyalty": loyalty, "event_id": event_id},
    )


async def record_segment_entries(
    conn: asyncpg.Connection, project_id: str, entries: list[tuple[str, list[str]]], at: datetime
) -> set[str]:
    """Customers entered segments, ``(customer id, segment ids)`` each (call in the transaction that recorded
    the entries): one trigger per entry into a segment an earning rule rewards entering. Returns the customers
    a trigger was written for (then ``ring`` after commit)."""
    entered = sorted({segment_id for _, segment_ids in entries for segment_id in segment_ids})
    if not entered:
        return set()
    rewarded = {
        r["id"]
        for r in await conn.fetch(
            "SELECT DISTINCT segment->>'id' AS id FROM earning_rules WHERE project_id = $1 AND event = $2 "
            "AND active AND segment->>'id' = ANY($3::text[])",
            project_id,
            SEGMENT_ENTERED,
            entered,
        )
    }
    rows: list[tuple[str, str, str, str | None, Any]] = [
        (
            stable_id("ltrg", SEGMENT_ENTERED, segment_id, customer_id, at.isoformat()),
            project_id,
            SEGMENT_ENTERED,
            customer_id,
            {"segment_id": segment_id},
        )
        for customer_id, segment_ids in entries
        for segment_id in segment_ids
        if segment_id in rewarded
    ]
    await record_triggers(conn, rows)
    return {str(row[3]) for row in rows}


async def announce(redis: aioredis.Redis, project_id: str) -> None:
    """Make workers read the project's loyalty stream from now on (once it has earning rules)."""
    await redis.sadd(keys.stream_index(STREAM), keys.project_stream(project_id, STREAM))


async def ring(redis: aioredis.Redis, project_ids: Iterable[str]) -> None:
    """Wake the worker's loyalty task for these projects (after their triggers were committed)."""
    for project_id in set(project_ids):
        stream_key = keys.project_stream(project_id, STREAM)
        await redis.sadd(keys.stream_index(STREAM), stream_key)
        await redis.xadd(stream_key, encode({"project_id": project_id}), maxlen=1000)  # type: ignore[arg-type]
