"""Reading redemptions back: PostgreSQL (where the worker writes them), merged with what Redis still
holds pending (``pending_redemptions``), so an id is readable from the moment its answer left.

Redis is asked first, PostgreSQL second; PostgreSQL's row wins where both have one, and a pending
rollback shows on the redemption it rolls back (see docs/durability.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.checkout import pending_redemptions
from voucherd.platform.errors import InvalidQueryParams, NotFound

RESULTS = ("SUCCESS", "FAILURE")


async def get(redis: aioredis.Redis, conn: asyncpg.Connection, project_id: str, redemption_id: str) -> dict[str, Any]:
    pending = await pending_redemptions.read(redis, project_id, [redemption_id])
    body = await conn.fetchval(
        "SELECT body FROM redemptions WHERE project_id = $1 AND id = $2", project_id, redemption_id
    )
    found: dict[str, Any] | None = pending.overlay(body) if body is not None else pending.body(redemption_id)
    if found is None:
        raise NotFound.of("redemption", redemption_id)
    return found


def _matches(
    body: dict[str, Any],
    *,
    result: str | None,
    campaign: str | None,
    customer: str | None,
    voucher_code: str | None,
    parent_id: str | None,
) -> bool:
    """The list's filters over a body, as the SQL applies them to the columns the worker fills."""
    voucher = body.get("voucher") or {}
    for value, actual in (
        (result, body.get("result", "SUCCESS")),
        (customer, body.get("customer_id")),
        (voucher_code, voucher.get("code")),
        (parent_id, body.get("redemption")),
    ):
        if value is not None and actual != value:
            return False
    return campaign is None or campaign in (voucher.get("campaign"), voucher.get("campaign_id"))


def _sort_key(body: dict[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(str(body["date"]).replace("Z", "+00:00")), str(body["id"])


async def list_page(
    redis: aioredis.Redis,
    conn: asyncpg.Connection,
    project_id: str,
    *,
    limit: int,
    page: int,
    result: str | None = None,
    campaign: str | None = None,
    customer: str | None = None,
    voucher_code: str | None = None,
    parent_id: str | None = None,
    descending: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    if result is not None and result.upper() not in RESULTS:
        raise InvalidQueryParams("result should be SUCCESS or FAILURE")
    result = result.upper() if result else None
    pending = await pending_redemptions.read_all(redis, project_id)
    where = ["project_id = $1", "object = 'redemption'"]
    args: list[Any] = [project_id]
    for column, value in (
        ("result", result),
        ("customer_id", customer),
        ("voucher_code", voucher_code),
        ("parent_id", parent_id),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if campaign is not None:
        args.append(campaign)
        where.append(f"(campaign_name = ${len(args)} OR campaign_id = ${len(args)})")
    clause = " AND ".join(where)
    filters = {
        "result": result,
        "campaign": campaign,
        "customer": customer,
        "voucher_code": voucher_code,
        "parent_id": parent_id,
    }
    unpersisted = [b for b in pending.redemptions.values() if _matches(b, **filters)]
    if not unpersisted:  # the usual case: PostgreSQL alone answers (pending rollbacks show by overlay)
        return await _merged_page(conn, project_id, clause, args, [], pending, limit, page, descending)
    # One snapshot for the queries below, so a row the worker commits meanwhile is counted once.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _merged_page(conn, project_id, clause, args, unpersisted, pending, limit, page, descending)


async def _merged_page(
    conn: asyncpg.Connection,
    project_id: str,
    clause: str,
    args: list[Any],
    unpersisted: list[dict[str, Any]],
    pending: pending_redemptions.Pending,
    limit: int,
    page: int,
    descending: bool,
) -> tuple[list[dict[str, Any]], int]:
    if unpersisted:  # drop those the worker has written meanwhile (PostgreSQL's copy wins)
        stored = await conn.fetch(
            "SELECT id FROM redemptions WHERE project_id = $1 AND id = ANY($2::text[])",
            project_id,
            [b["id"] for b in unpersisted],
        )
        known = {r["id"] for r in stored}
        unpersisted = [pending.overlay(b) for b in unpersisted if b["id"] not in known]
    total = int(await conn.fetchval(f"SELECT count(*) FROM redemptions WHERE {clause}", *args)) + len(unpersisted)
    direction = "DESC" if descending else "ASC"
    offset = (page - 1) * limit
    # With pending ones in the mix, the page is cut from the merged order: fetch every row up to its end.
    window = f"LIMIT {int(offset + limit)}" if unpersisted else f"LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = await conn.fetch(
        f"SELECT body FROM redemptions WHERE {clause} ORDER BY date {direction}, id {direction} {window}", *args
    )
    items = [pending.overlay(r["body"]) for r in rows]
    if unpersisted:
        items = sorted(items + unpersisted, key=_sort_key, reverse=descending)[offset : offset + limit]
    return items, total
