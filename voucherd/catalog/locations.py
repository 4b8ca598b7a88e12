"""Locations (``loc_``): named geographic areas (a circle or a GeoJSON polygon) for validation rules.

The API only reads them (``GET /v1/locations``, ``GET /v1/locations/{id}``); rows are written by the
operator, as Voucherify's are drawn in its dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from voucherd.platform import listing, sql_filters
from voucherd.platform.errors import InvalidExportParams, InvalidQueryParams, NotFound
from voucherd.platform.sql_filters import Catalog, Field
from voucherd.platform.timeutil import iso

_FILTERS = Catalog(
    source="locations l",
    scope="l.project_id = $1",
    key="l.id",
    fields={
        "name": Field("l.name"),
        "created_at": Field("l.created_at", "date"),
        "updated_at": Field("l.updated_at", "date"),
    },
    defaults=(),
    orders={},
)
_ORDERS = {
    "created_at": "created_at, id",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "updated_at NULLS FIRST, id",
    "-updated_at": "updated_at DESC NULLS LAST, id DESC",
}


def view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "location",
        "name": row["name"],
        "shape": row["shape"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def list_page(conn: asyncpg.Connection, project_id: str, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    items = list(query)
    params = dict(items)
    limit = listing.limit_param(params)
    order = listing.order_param(params, _ORDERS, "created_at")
    args: list[Any] = []
    try:
        where = sql_filters.where_sql(_FILTERS, sql_filters.filters_from_query(items), args)
    except InvalidExportParams as exc:
        raise InvalidQueryParams(str(exc).replace(".parameters.filters", " filters")) from None
    rows = await conn.fetch(
        f"SELECT * FROM locations l WHERE l.project_id = $1 AND ({where}) ORDER BY {order} LIMIT {limit + 1}",
        project_id,
        *args,
    )
    return {
        "object": "list",
        "data_ref": "data",
        "data": [view(r) for r in rows[:limit]],
        "has_more": len(rows) > limit,
    }


async def get(conn: asyncpg.Connection, project_id: str, location_id: str) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM locations WHERE project_id = $1 AND id = $2", project_id, location_id)
    if row is None:
        raise NotFound.of("location", location_id)
    return view(row)
