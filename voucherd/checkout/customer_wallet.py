"""``GET /v1/customers/{id}/redeemables``: the codes a customer holds, with their status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import customers
from voucherd.definitions import vouchers
from voucherd.platform.errors import InvalidQueryParams
from voucherd.platform.timeutil import iso


def _status(voucher: dict[str, Any], now: datetime) -> str:
    if not voucher.get("active", True):
        return "DISABLED"
    start, end = voucher.get("start_date"), voucher.get("expiration_date")
    if start and datetime.fromisoformat(start.replace("Z", "+00:00")) > now:
        return "NOT_ACTIVE_YET"
    if end and datetime.fromisoformat(end.replace("Z", "+00:00")) < now:
        return "EXPIRED"
    redemption = voucher.get("redemption") or {}
    if redemption.get("quantity") is not None and redemption.get("redeemed_quantity", 0) >= redemption["quantity"]:
        return "USED"
    if voucher.get("type") == "GIFT_VOUCHER" and not (voucher.get("gift") or {}).get("balance"):
        return "NO_BALANCE"
    if voucher.get("type") == "LOYALTY_CARD" and not (voucher.get("loyalty_card") or {}).get("balance"):
        return "NO_BALANCE"
    return "ACTIVE"


def holder_id(voucher_id: str) -> str:
    """The holder record's id: one per code and holder, derived so that it is stable across calls."""
    return "rh_" + voucher_id.removeprefix("v_")


async def list_page(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    customer_ref: str,
    *,
    limit: int,
    starting_after_id: str | None,
    descending: bool,
) -> dict[str, Any]:
    customer = await customers.get(conn, project_id, customer_ref)
    args: list[Any] = [project_id, customer["id"]]
    where = "v.holder_id = $2"
    direction = "DESC" if descending else "ASC"
    if starting_after_id:
        if not starting_after_id.startswith("rh_"):
            raise InvalidQueryParams("starting_after_id should be the id of a customer redeemable (rh_...)")
        args.append("v_" + starting_after_id.removeprefix("rh_"))
        comparison = "<" if descending else ">"
        where += (
            f" AND (v.created_at, v.id) {comparison} "
            f"(SELECT created_at, id FROM vouchers WHERE project_id = $1 AND id = ${len(args)})"
        )
    # vouchers.SELECT is every voucher read (campaign template, category), scoped to the project and live rows.
    select = vouchers.SELECT.replace("SELECT v.*,", "SELECT v.*, c.campaign_type,", 1)
    rows = await conn.fetch(
        f"{select} AND {where} ORDER BY v.created_at {direction}, v.id {direction} LIMIT {int(limit) + 1}",
        *args,
    )
    page = rows[:limit]
    views = await vouchers.views(redis, project_id, page)
    now = datetime.now(UTC)
    data = []
    for row, voucher in zip(page, views, strict=True):
        data.append(
            {
                "id": holder_id(row["id"]),
                "created_at": iso(row["created_at"]),
                "redeemable_id": row["id"],
                "redeemable_object": "voucher",
                "customer_id": customer["id"],
                "holder_role": "OWNER",
                "campaign_id": row["campaign_id"],
                "campaign_type": row["campaign_type"],
                "voucher_type": row["type"],
                "redeemable": {"type": "voucher", "voucher": voucher, "status": _status(voucher, now)},
                "object": "customer_redeemable",
            }
        )
    has_more = len(rows) > limit
    body: dict[str, Any] = {
        "object": "list",
        "data_ref": "data",
        "data": data,
        "total": len(data),
        "has_more": has_more,
    }
    if body["has_more"]:
        body["more_starting_after"] = data[-1]["id"]
    return body
