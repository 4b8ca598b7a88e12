"""``GET /v1/campaigns/{campaignId}/transactions``: credit and point movements on every card of a gift
card or loyalty campaign (a campaign of discount codes has none), newest first by default."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from voucherd.definitions import campaigns, vouchers
from voucherd.platform import listing, sql_filters
from voucherd.platform.errors import InvalidExportParams, InvalidQueryParams
from voucherd.platform.sql_filters import Catalog, Field

_FILTERS = Catalog(
    source="voucher_transactions t",
    scope="t.project_id = $1",
    key="t.seq",
    fields={"id": Field("t.id"), "voucher_id": Field("t.voucher_id")},
    defaults=(),
    orders={},
)


async def list_page(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, query: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    campaign = await campaigns.fetch_row(conn, project_id, campaign_ref)
    items = list(query)
    params = dict(items)
    limit = listing.limit_param(params)
    order = params.get("order") or "-id"
    if order not in ("id", "-id"):
        raise InvalidQueryParams("Query param order should be id or -id")
    args: list[Any] = [campaign["id"]]
    try:
        where = sql_filters.where_sql(_FILTERS, sql_filters.filters_from_query(items), args)
    except InvalidExportParams as exc:
        raise InvalidQueryParams(str(exc).replace(".parameters.filters", " filters")) from None
    direction = "DESC" if order == "-id" else "ASC"
    if params.get("starting_after_id"):
        args.append(params["starting_after_id"])
        where += (
            f" AND t.seq {'<' if direction == 'DESC' else '>'} "
            f"(SELECT seq FROM voucher_transactions WHERE project_id = $1 AND id = ${len(args) + 1})"
        )
    rows = await conn.fetch(
        f"SELECT * FROM voucher_transactions t WHERE t.project_id = $1 AND t.campaign_id = $2 AND ({where}) "
        f"ORDER BY t.seq {direction} LIMIT {limit + 1}",
        project_id,
        *args,
    )
    page = [vouchers.transaction_view(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    return {
        "object": "list",
        "data_ref": "data",
        "data": page,
        "has_more": has_more,
        "more_starting_after": page[-1]["id"] if has_more else None,
    }
