"""The trash bin (``tbe_`` entries): campaigns and codes deleted without ``force``.

A binned resource keeps its rows, marked by ``deleted_at``: it is out of every read and listing
(a campaign's name is free again, a code stays reserved), and can be moved back by clearing the mark.
The ``trash_bin`` view (migration 0014) lists them; deleting an entry deletes the resource for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.definitions import campaigns
from voucherd.platform import async_actions, listing, sql_filters
from voucherd.platform.errors import InvalidExportParams, InvalidQueryParams, NotFound
from voucherd.platform.sql_filters import Catalog, Field
from voucherd.platform.timeutil import iso

_FILTERS = Catalog(
    source="trash_bin b",
    scope="b.project_id = $1",
    key="b.id",
    fields={
        "id": Field("b.id"),
        "resource_id": Field("b.resource_id"),
        "resource_type": Field("b.resource_type"),
        "resource_name": Field("b.resource_name"),
        "resource_parent_id": Field("b.resource_parent_id"),
        "created_at": Field("b.created_at", "date"),
    },
    defaults=(),
    orders={},
)


def view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": iso(row["created_at"]),
        "deleted_by_user_id": None,  # moved through the API
        "resource_id": row["resource_id"],
        "resource_type": row["resource_type"],
        "resource_name": row["resource_name"],
        "resource_parent_id": row["resource_parent_id"],
        "object": row["resource_type"],
    }


async def list_page(conn: asyncpg.Connection, project_id: str, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    items = list(query)
    params = dict(items)
    limit = listing.limit_param(params)
    order = params.get("order") or "-id"
    if order not in ("id", "-id"):
        raise InvalidQueryParams("Query param order should be id or -id")
    args: list[Any] = []
    try:
        where = sql_filters.where_sql(_FILTERS, sql_filters.filters_from_query(items), args)
    except InvalidExportParams as exc:
        raise InvalidQueryParams(str(exc).replace(".parameters.filters", " filters")) from None
    direction = "DESC" if order == "-id" else "ASC"
    if params.get("starting_after_id"):
        args.append(params["starting_after_id"])
        where += f" AND b.id {'<' if direction == 'DESC' else '>'} ${len(args) + 1}"
    rows = await conn.fetch(
        f"SELECT * FROM trash_bin b WHERE b.project_id = $1 AND ({where}) ORDER BY b.id {direction} LIMIT {limit + 1}",
        project_id,
        *args,
    )
    page = [view(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    return {
        "object": "list",
        "data_ref": "data",
        "data": page,
        "total": len(page),  # the contract: entries in this page
        "has_more": has_more,
        "more_starting_after": page[-1]["id"] if has_more else None,
    }


async def delete(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, entry_id: str) -> None:
    """Delete the binned resource for good: a code at once, a campaign's codes in the worker."""
    entry = await conn.fetchrow("SELECT * FROM trash_bin WHERE project_id = $1 AND id = $2", project_id, entry_id)
    if entry is None:
        raise NotFound.of("bin_entry", entry_id)
    async with conn.transaction():
        if entry["resource_type"] == "voucher":
            await conn.execute(
                "DELETE FROM vouchers WHERE project_id = $1 AND id = $2 AND deleted_at IS NOT NULL",
                project_id,
                entry["resource_id"],
            )
            return
        # The campaign row goes now (nothing references it by key); the purge deletes its codes, tiers
        # and rule assignments in the worker, and the bin no longer lists codes of a missing campaign.
        await conn.execute(
            "DELETE FROM campaigns WHERE project_id = $1 AND id = $2 AND deleted_at IS NOT NULL",
            project_id,
            entry["resource_id"],
        )
        await async_actions.enqueue(
            conn, redis, project_id, campaigns.DELETE, {"campaign_id": entry["resource_id"], "force": True}
        )
