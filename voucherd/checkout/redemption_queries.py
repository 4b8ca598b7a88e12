"""Reading redemptions back (from PostgreSQL, where the worker wrote them)."""

from __future__ import annotations

from typing import Any

import asyncpg

from voucherd.platform.errors import InvalidQueryParams, NotFound

RESULTS = ("SUCCESS", "FAILURE")


async def get(conn: asyncpg.Connection, project_id: str, redemption_id: str) -> dict[str, Any]:
    body = await conn.fetchval(
        "SELECT body FROM redemptions WHERE project_id = $1 AND id = $2", project_id, redemption_id
    )
    if body is None:
        raise NotFound.of("redemption", redemption_id)
    result: dict[str, Any] = body
    return result


async def list_page(
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
    where = ["project_id = $1", "object = 'redemption'"]
    args: list[Any] = [project_id]
    for column, value in (
        ("result", result.upper() if result else None),
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
    total = await conn.fetchval(f"SELECT count(*) FROM redemptions WHERE {clause}", *args)
    direction = "DESC" if descending else "ASC"
    rows = await conn.fetch(
        f"SELECT body FROM redemptions WHERE {clause} ORDER BY date {direction}, id {direction} "
        f"LIMIT {int(limit)} OFFSET {int((page - 1) * limit)}",
        *args,
    )
    return [r["body"] for r in rows], int(total)
