"""Customers (``cust_``): upserted by id or ``source_id``, with activity (``evcus_``) and a summary.

Also the small listing helpers (paging, query dates) the catalog modules share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd import customer_ids, metadata_schemas, segments
from voucherd.errors import InvalidPayload, InvalidQueryParams, NotFound
from voucherd.ids import new_id
from voucherd.listing import (  # used here and by modules importing them from customers
    checked_metadata,
    limit_param,
    merge_metadata,
    order_param,
    page_params,
    parse_date,
    time_param,
)
from voucherd.timeutil import iso

_TEXT_FIELDS = ("name", "description", "email", "phone")
_ADDRESS_FIELDS = ("city", "state", "line_1", "line_2", "country", "postal_code")
_ORDERS = {
    "created_at": "created_at ASC, id ASC",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "updated_at ASC NULLS FIRST, id ASC",
    "-updated_at": "updated_at DESC NULLS LAST, id DESC",
    "source_id": "source_id ASC NULLS FIRST, id ASC",
    "-source_id": "source_id DESC NULLS LAST, id DESC",
}
ACTIVITY_PAGE_MAX = 100


# --- customers ---


def _summary(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    count = row["orders_total_count"]
    return {
        "redemptions": {
            "total_redeemed": row["redemptions_total_redeemed"],
            "total_failed": row["redemptions_total_failed"],
            "total_succeeded": row["redemptions_total_succeeded"],
            "total_rolled_back": row["redemptions_total_rolled_back"],
            "total_rollback_failed": row["redemptions_total_rollback_failed"],
            "total_rollback_succeeded": row["redemptions_total_rollback_succeeded"],
            "gift": {"redeemed_amount": row["gift_redeemed_amount"], "amount_to_go": row["gift_amount_to_go"]},
            "loyalty_card": {
                "redeemed_points": row["loyalty_redeemed_points"],
                "points_to_go": row["loyalty_points_to_go"],
            },
        },
        "orders": {
            "total_amount": row["orders_total_amount"],
            "total_count": count,
            "average_amount": row["orders_total_amount"] // count if count else 0,
            "last_order_amount": row["orders_last_amount"],
            "last_order_date": iso(row["orders_last_date"]),
        },
    }


def customer_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "name": row["name"],
        "description": row["description"],
        "email": row["email"],
        "phone": row["phone"],
        "birthdate": row["birthdate"].isoformat() if row["birthdate"] else None,
        "birthday": row["birthday"].isoformat() if row["birthday"] else None,
        "address": row["address"],
        "summary": _summary(row),
        "loyalty": row["loyalty"],
        "referrals": row["referrals"],
        "metadata": row["metadata"],
        "system_metadata": row["system_metadata"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "customer",
    }


def simple_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The short customer object that events and orders embed."""
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "name": row["name"],
        "email": row["email"],
        "metadata": row["metadata"],
        "object": "customer",
    }


def _checked(body: dict[str, Any]) -> dict[str, Any]:
    """The customer columns the body sets (null values are ignored: the SDKs send explicit nulls)."""
    fields: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidPayload(f"Property .{name} should be a string")
        fields[name] = value
    for name in ("birthdate", "birthday"):
        if body.get(name) is not None:
            fields[name] = parse_date(body[name], name)
    address = body.get("address")
    if address is not None:
        if not isinstance(address, dict):
            raise InvalidPayload("Property .address should be an object")
        for key, value in address.items():
            if key in _ADDRESS_FIELDS and value is not None and not isinstance(value, str):
                raise InvalidPayload(f"Property .address.{key} should be a string")
        fields["address"] = {k: address.get(k) for k in _ADDRESS_FIELDS if k in address}
    metadata = checked_metadata(body.get("metadata"))
    if metadata is not None:
        fields["metadata"] = metadata
    return fields


async def find(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record | None:
    """The customer whose id or source_id is ``ref`` (the id wins)."""
    return await conn.fetchrow(
        "SELECT * FROM customers WHERE project_id = $1 AND (id = $2 OR source_id = $2) ORDER BY id = $2 DESC LIMIT 1",
        project_id,
        ref,
    )


async def _require(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record:
    row = await find(conn, project_id, ref)
    if row is None:
        raise NotFound.of("customer", ref)
    return row


async def record_activity(
    conn: asyncpg.Connection,
    project_id: str,
    customer_id: str,
    type: str,
    data: dict[str, Any],
    *,
    event_name: str | None = None,
    group_id: str | None = None,
) -> str:
    activity_id = new_id("evcus")
    await conn.execute(
        "INSERT INTO customer_activity (project_id, id, customer_id, type, event_name, data, group_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        project_id,
        activity_id,
        customer_id,
        type,
        event_name,
        data,
        group_id,
    )
    return activity_id


async def _write(
    conn: asyncpg.Connection,
    project_id: str,
    existing: asyncpg.Record | None,
    fields: dict[str, Any],
    source_id: str | None,
    new_customer_id: str | None = None,
) -> tuple[asyncpg.Record, bool]:
    """Insert or update one customer and its segment membership; returns (row, changed)."""
    if existing is not None:
        changes = dict(fields)
        if "metadata" in changes:
            changes["metadata"] = merge_metadata(existing["metadata"], changes["metadata"])
        if "address" in changes:
            changes["address"] = {**(existing["address"] or {}), **changes["address"]}
        changes = {k: v for k, v in changes.items() if existing[k] != v}
        if not changes:
            return existing, False
        if "metadata" in changes:
            await metadata_schemas.check(conn, project_id, "customer", changes["metadata"])
        sets = [f"{name} = ${i}" for i, name in enumerate(changes, start=3)]
        row = await conn.fetchrow(
            f"UPDATE customers SET {', '.join([*sets, 'updated_at = now()'])} "
            "WHERE project_id = $1 AND id = $2 RETURNING *",
            project_id,
            existing["id"],
            *changes.values(),
        )
        await record_activity(conn, project_id, row["id"], "customer.updated", {"customer": simple_view(row)})
        return row, True
    if "metadata" in fields:
        fields["metadata"] = merge_metadata({}, fields["metadata"])
        await metadata_schemas.check(conn, project_id, "customer", fields["metadata"])
    columns = ["project_id", "id", "source_id", *fields]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO customers ({', '.join(columns)}) VALUES ({placeholders}) "
        "ON CONFLICT (project_id, source_id) DO NOTHING RETURNING *",
        project_id,
        new_customer_id or new_id("cust"),
        source_id,
        *fields.values(),
    )
    if row is None:  # a concurrent request created the same source_id first: update that one
        raced = await conn.fetchrow(
            "SELECT * FROM customers WHERE project_id = $1 AND source_id = $2", project_id, source_id
        )
        return await _write(conn, project_id, raced, fields, source_id)
    await record_activity(conn, project_id, row["id"], "customer.created", {"customer": simple_view(row)})
    return row, True


async def _upsert(
    conn: asyncpg.Connection, redis: aioredis.Redis | None, project_id: str, body: dict[str, Any]
) -> asyncpg.Record:
    fields = _checked(body)
    customer_id, source_id = body.get("id"), body.get("source_id")
    for name, value in (("id", customer_id), ("source_id", source_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidPayload(f"Property .{name} should be a non-empty string")
    async with conn.transaction():
        existing = None
        if customer_id is not None:
            existing = await conn.fetchrow(
                "SELECT * FROM customers WHERE project_id = $1 AND id = $2 FOR UPDATE", project_id, customer_id
            )
            if existing is None:
                raise NotFound.of("customer", customer_id)
        elif source_id is not None:
            existing = await conn.fetchrow(
                "SELECT * FROM customers WHERE project_id = $1 AND source_id = $2 FOR UPDATE", project_id, source_id
            )
        new_customer_id = None
        if existing is None and source_id is not None and redis is not None:
            new_customer_id = await customer_ids.claim(redis, project_id, source_id)
        row, changed = await _write(conn, project_id, existing, fields, source_id, new_customer_id)
        membership = await segments.evaluate_customer(conn, project_id, customer_view(row)) if changed else None
    if membership is not None and redis is not None:
        await segments.store_memberships(redis, project_id, [membership])
    return row


async def create(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``POST /v1/customers``: creates, or updates the customer named by ``id`` / ``source_id``."""
    return customer_view(await _upsert(conn, redis, project_id, body))


async def upsert_from_request(
    conn: asyncpg.Connection, project_id: str, customer: dict[str, Any], *, redis: aioredis.Redis | None = None
) -> dict[str, Any]:
    """The customer object of a redemption, order, event or publication, upserted by id or source_id.

    Pass ``redis`` so that a change of segment membership reaches the hot path's cache at once; without it only
    PostgreSQL is updated (``segments.rebuild_cache`` re-derives Redis from it).
    """
    if not isinstance(customer, dict):
        raise InvalidPayload("Property .customer should be an object")
    return customer_view(await _upsert(conn, redis, project_id, customer))


async def get(conn: asyncpg.Connection, project_id: str, ref: str) -> dict[str, Any]:
    return customer_view(await _require(conn, project_id, ref))


async def update(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``PUT /v1/customers/{id}``: fields sent replace stored ones (metadata and address key by key)."""
    row = await _require(conn, project_id, ref)
    return customer_view(await _upsert(conn, redis, project_id, {**body, "id": row["id"], "source_id": None}))


async def _remove(conn: asyncpg.Connection, project_id: str, row: asyncpg.Record, *, orders: bool) -> dict[str, int]:
    counts = {}
    status = await conn.execute(
        "DELETE FROM customer_activity WHERE project_id = $1 AND customer_id = $2", project_id, row["id"]
    )
    counts["customer_events"] = int(status.split()[-1])
    status = await conn.execute(
        "DELETE FROM segment_members WHERE project_id = $1 AND customer_id = $2", project_id, row["id"]
    )
    counts["segments"] = int(status.split()[-1])
    counts["orders"] = 0
    if orders:
        status = await conn.execute(
            "DELETE FROM orders WHERE project_id = $1 AND customer_id = $2", project_id, row["id"]
        )
        counts["orders"] = int(status.split()[-1])
    await conn.execute("DELETE FROM customers WHERE project_id = $1 AND id = $2", project_id, row["id"])
    return counts


async def delete(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, ref: str) -> None:
    """Removes the customer, its activity and segment memberships; its orders stay."""
    async with conn.transaction():
        row = await _require(conn, project_id, ref)
        await _remove(conn, project_id, row, orders=False)
    await segments.forget_customer(redis, project_id, row["id"], row["source_id"])


async def delete_permanently(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, ref: str
) -> dict[str, Any]:
    """Removes the customer with its activity, memberships and orders; reports what went."""
    async with conn.transaction():
        row = await _require(conn, project_id, ref)
        counts = await _remove(conn, project_id, row, orders=True)
        created_at = await conn.fetchval("SELECT now()")
    await segments.forget_customer(redis, project_id, row["id"], row["source_id"])
    return {
        "id": new_id("del"),
        "created_at": iso(created_at),
        "related_object_id": row["id"],
        "related_object": "customer",
        "status": "DONE",
        "data_json": {
            "events": counts["customer_events"],
            "customer_events": counts["customer_events"],
            "daily_events": 0,
            "segments": counts["segments"],
            "orders": counts["orders"],
            "order_events": 0,
            "customer": 1,
        },
        "object": "pernament_deletion",
    }


async def list_page(conn: asyncpg.Connection, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """``GET /v1/customers``: filters email, city, name, segment_id, created_at/updated_at ranges; paging."""
    limit, offset = page_params(query)
    order = order_param(query, _ORDERS, "-created_at")
    where = ["c.project_id = $1"]
    args: list[Any] = [project_id]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    for name in ("email", "name"):
        if query.get(name):
            add(f"c.{name} = ?", query[name])
    if query.get("city"):
        add("c.address->>'city' = ?", query["city"])
    if query.get("segment_id"):
        add(
            "EXISTS (SELECT 1 FROM segment_members m WHERE m.project_id = c.project_id "
            "AND m.customer_id = c.id AND m.segment_id = ?)",
            query["segment_id"],
        )
    for column in ("created_at", "updated_at"):
        for bound, op in (("before", "<"), ("after", ">")):
            value = time_param(query, f"{column}[{bound}]")
            if value is not None:
                add(f"date_trunc('milliseconds', c.{column}) {op} ?", value)
    starting_after = time_param(query, "starting_after")
    if starting_after is not None:
        add("c.created_at < ?" if order.startswith("created_at DESC") else "c.created_at > ?", starting_after)
    condition = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM customers c WHERE {condition}", *args)
    rows = await conn.fetch(
        f"SELECT c.* FROM customers c WHERE {condition} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args
    )
    return {
        "object": "list",
        "data_ref": "customers",
        "customers": [customer_view(r) for r in rows],
        "total": total,
        "has_more": offset + len(rows) < total,
    }


def activity_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "data": row["data"],
        "created_at": iso(row["created_at"]),
        "group_id": row["group_id"],
    }


async def activity(conn: asyncpg.Connection, project_id: str, ref: str, query: Mapping[str, str]) -> dict[str, Any]:
    """``GET /v1/customers/{id}/activity``: a cursor list (``starting_after_id``), newest first by default."""
    customer = await _require(conn, project_id, ref)
    limit = limit_param(query)
    descending = order_param(query, {"created_at": "ASC", "-created_at": "DESC"}, "-created_at") == "DESC"
    where = ["project_id = $1", "customer_id = $2"]
    args: list[Any] = [project_id, customer["id"]]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    after_id = query.get("starting_after_id")
    if after_id:
        seq = await conn.fetchval(
            "SELECT seq FROM customer_activity WHERE project_id = $1 AND customer_id = $2 AND id = $3",
            project_id,
            customer["id"],
            after_id,
        )
        if seq is None:
            raise InvalidQueryParams(f"Query param starting_after_id names no activity of this customer: {after_id}")
        add("seq < ?" if descending else "seq > ?", seq)
    start, end = time_param(query, "start_date"), time_param(query, "end_date")
    if start is not None:
        add("created_at >= ?", start)
    if end is not None:
        add("created_at <= ?", end)
    if query.get("type"):
        add("type = ?", query["type"])
    rows = await conn.fetch(
        f"SELECT * FROM customer_activity WHERE {' AND '.join(where)} "
        f"ORDER BY seq {'DESC' if descending else 'ASC'} LIMIT {limit + 1}",
        *args,
    )
    has_more = len(rows) > limit
    items = [activity_view(r) for r in rows[:limit]]
    body: dict[str, Any] = {"object": "list", "data_ref": "data", "data": items, "has_more": has_more}
    if has_more:
        body["more_starting_after"] = items[-1]["id"]
    return body


async def customer_segments(conn: asyncpg.Connection, project_id: str, ref: str) -> dict[str, Any]:
    """``GET /v1/customers/{id}/segments``."""
    customer = await _require(conn, project_id, ref)
    items = await segments.of_customer(conn, project_id, customer["id"])
    return {"object": "list", "data_ref": "data", "data": items, "total": len(items)}


async def refresh_order_summary(conn: asyncpg.Connection, project_id: str, customer_id: str) -> None:
    """Recompute ``summary.orders`` from the customer's orders that were not canceled."""
    await conn.execute(
        """UPDATE customers c SET
               orders_total_amount = s.total, orders_total_count = s.count,
               orders_last_amount = COALESCE(s.last_amount, 0), orders_last_date = s.last_date
           FROM (SELECT COALESCE(sum(COALESCE(amount, 0)), 0) AS total, count(*) AS count,
                        (array_agg(COALESCE(amount, 0) ORDER BY created_at DESC, id DESC))[1] AS last_amount,
                        max(created_at) AS last_date
                 FROM orders WHERE project_id = $1 AND customer_id = $2 AND status <> 'CANCELED') s
           WHERE c.project_id = $1 AND c.id = $2""",
        project_id,
        customer_id,
    )
