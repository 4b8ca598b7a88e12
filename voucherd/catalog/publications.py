"""Publications (``pub_``): handing a code to a customer, which becomes the code's holder.

A publication names a code (``voucher``) or a campaign (``campaign{name, count}``) from which active,
unpublished codes are taken; an AUTO_UPDATE campaign mints new codes when it runs out. With
``join_once`` a customer who already holds a code of the campaign gets that code again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import customer_views, customers, wallets
from voucherd.definitions import campaigns, voucher_state, vouchers
from voucherd.platform import listing
from voucherd.platform.errors import (
    InvalidPayload,
    InvalidQueryParams,
    NoVoucherSuitableForPublication,
    PageOverLimit,
    TooManyVouchersRequested,
    VoucherAlreadyPublished,
)
from voucherd.platform.ids import new_id
from voucherd.platform.scripts import Scripts
from voucherd.platform.timeutil import iso

MAX_COUNT = 50
MAX_PAGE = 1000
_ORDERS = {
    "created_at": "p.created_at ASC, p.id ASC",
    "-created_at": "p.created_at DESC, p.id DESC",
    "id": "p.id ASC",
    "-id": "p.id DESC",
    "customer_id": "p.customer_id ASC, p.id ASC",
    "-customer_id": "p.customer_id DESC, p.id DESC",
    "voucher_code": "p.voucher_codes[1] ASC, p.id ASC",
    "-voucher_code": "p.voucher_codes[1] DESC, p.id DESC",
    "tracking_id": "c.source_id ASC NULLS FIRST, p.id ASC",
    "-tracking_id": "c.source_id DESC NULLS LAST, p.id DESC",
    "channel": "p.channel ASC, p.id ASC",
    "-channel": "p.channel DESC, p.id DESC",
}


def _view(
    row: asyncpg.Record, customer: dict[str, Any] | None, voucher_ids: list[str], voucher: dict[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"],
        "object": "publication",
        "created_at": iso(row["created_at"]),
        "customer_id": row["customer_id"],
        "tracking_id": customer["source_id"] if customer else None,
        "metadata": row["metadata"],
        "channel": row["channel"],
        "source_id": row["source_id"],
        "result": "SUCCESS",
        "customer": customer,
        "vouchers_id": voucher_ids,
    }
    if voucher is not None:
        body["voucher"] = voucher
    else:
        body["vouchers"] = list(row["voucher_codes"])
    return body


async def _response(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, row: asyncpg.Record
) -> dict[str, Any]:
    customer_row = await customers.find(conn, project_id, row["customer_id"])
    customer = customer_views.customer_view(customer_row) if customer_row is not None else None
    codes = list(row["voucher_codes"])
    rows = [await vouchers.fetch_row(conn, project_id, code) for code in codes]
    voucher = (await vouchers.views(redis, project_id, rows))[0] if len(rows) == 1 else None
    return _view(row, customer, [r["id"] for r in rows], voucher)


def _campaign_request(raw: Any) -> tuple[str, int]:
    if isinstance(raw, str) and raw:
        return raw, 1
    if not isinstance(raw, dict) or not isinstance(raw.get("name") or raw.get("id"), str):
        raise InvalidPayload("Property .campaign should be an object with a name")
    count = raw.get("count", 1)
    if count is None:
        count = 1
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidPayload("Property .campaign.count should be an integer >= 1")
    if count > MAX_COUNT:
        raise TooManyVouchersRequested(f"At most {MAX_COUNT} vouchers can be published at once.")
    return str(raw.get("name") or raw.get("id")), count


async def _take_codes(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    campaign: dict[str, Any],
    customer_id: str,
    count: int,
    join_once: bool,
) -> list[str]:
    if join_once:
        held = await conn.fetch(
            "SELECT code FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id = $3 "
            "AND deleted_at IS NULL ORDER BY created_at, id LIMIT $4",
            project_id,
            campaign["id"],
            customer_id,
            count,
        )
        if held:
            return [r["code"] for r in held]
    rows = await conn.fetch(
        "SELECT code FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id IS NULL "
        "AND deleted_at IS NULL AND active AND (expiration_date IS NULL OR expiration_date > now()) "
        "ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        project_id,
        campaign["id"],
        count,
    )
    codes = [r["code"] for r in rows]
    if len(codes) < count and campaign.get("type") == "AUTO_UPDATE":
        for _ in range(count - len(codes)):
            minted = await vouchers.create(conn, redis, project_id, {}, campaign=campaign)
            codes.append(minted["code"])
    if len(codes) < count:
        raise NoVoucherSuitableForPublication(
            f"Campaign {campaign['name']} has {len(codes)} codes left to publish; {count} were requested."
        )
    return codes


async def publish(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    body: dict[str, Any],
    *,
    join_once: bool = False,
) -> dict[str, Any]:
    """``POST /v1/publications``: publish a code, or codes of a campaign, to a customer."""
    if not isinstance(body.get("customer"), dict):
        raise InvalidPayload("Property .customer is required and should be an object")
    source_id = body.get("source_id")
    if source_id is not None and (not isinstance(source_id, str) or not source_id):
        raise InvalidPayload("Property .source_id should be a non-empty string")
    channel = body.get("channel") or "API"
    if channel != "API":
        raise InvalidPayload("Property .channel should be API")
    metadata = listing.checked_metadata(body.get("metadata")) or {}
    code = body.get("voucher")
    if code is not None and (not isinstance(code, str) or not code):
        raise InvalidPayload("Property .voucher should be a voucher code")
    if (code is None) == (body.get("campaign") is None):
        raise InvalidPayload("Send either .voucher (a code) or .campaign")
    campaign_ref, count = _campaign_request(body["campaign"]) if code is None else ("", 1)

    if source_id is not None:
        existing = await conn.fetchrow(
            "SELECT * FROM publications WHERE project_id = $1 AND source_id = $2", project_id, source_id
        )
        if existing is not None:  # a retried request: answer with what it did the first time
            return await _response(conn, redis, project_id, existing)

    async with conn.transaction():
        customer = await customers.upsert_from_request(conn, project_id, body["customer"], redis=redis)
        if code is not None:
            row = await vouchers.fetch_row(conn, project_id, code)
            if row["holder_id"] is not None and row["holder_id"] != customer["id"]:
                raise VoucherAlreadyPublished(f"Voucher {code} is already published to another customer.")
            codes, campaign_id = [row["code"]], row["campaign_id"]
        else:
            campaign = await campaigns.get(conn, project_id, campaign_ref)
            join = join_once or bool(campaign.get("join_once"))
            codes = await _take_codes(conn, redis, project_id, campaign, customer["id"], count, join)
            campaign_id = campaign["id"]
        await conn.execute(
            "UPDATE vouchers SET holder_id = $3, publish_count = publish_count + 1, updated_at = now() "
            "WHERE project_id = $1 AND code = ANY($2::text[])",
            project_id,
            codes,
            customer["id"],
        )
        publication = await conn.fetchrow(
            "INSERT INTO publications (project_id, id, source_id, customer_id, campaign_id, voucher_codes, "
            "channel, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
            project_id,
            new_id("pub"),
            source_id,
            customer["id"],
            campaign_id,
            codes,
            channel,
            metadata,
        )
        await customers.record_activity(
            conn,
            project_id,
            customer["id"],
            "customer.publication.succeeded",
            {"publication": {"id": publication["id"], "vouchers": codes, "object": "publication"}},
        )
    for published in codes:
        await voucher_state.patch(redis, project_id, await vouchers.fetch_row(conn, project_id, published))
    await wallets.add(Scripts(redis), project_id, customer["id"], codes)
    return await _response(conn, redis, project_id, publication)


def _deep(query: Mapping[str, str], name: str) -> dict[str, Any] | None:
    """A deepObject query parameter: ``customer[source_id]=x&customer[email]=y`` -> dict."""
    found: dict[str, Any] = {}
    prefix = f"{name}["
    for key, value in query.items():
        if key.startswith(prefix) and key.endswith("]"):
            found[key[len(prefix) : -1]] = value
    return found or None


def request_from_query(query: Mapping[str, str]) -> tuple[dict[str, Any], bool]:
    """The body and ``join_once`` of ``GET /v1/publications/create``."""
    body: dict[str, Any] = {"voucher": query.get("voucher"), "source_id": query.get("source_id")}
    body["customer"] = _deep(query, "customer") or ({"source_id": query["customer"]} if query.get("customer") else None)
    campaign = _deep(query, "campaign")
    if campaign is not None and "count" in campaign:
        try:
            campaign["count"] = int(campaign["count"])
        except ValueError:
            raise InvalidQueryParams("Query param campaign[count] should be an integer") from None
    body["campaign"] = campaign or query.get("campaign")
    body["metadata"] = _deep(query, "metadata")
    return body, join_once_param(query)


def join_once_param(query: Mapping[str, str]) -> bool:
    raw = query.get("join_once", "false").lower()
    if raw not in ("true", "false"):
        raise InvalidQueryParams("Query param join_once should be true or false")
    return raw == "true"


async def list_page(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    """``GET /v1/publications``: filters campaign, customer, voucher, source_id; newest first."""
    limit, offset = listing.page_params(query)
    if offset // limit >= MAX_PAGE:
        raise PageOverLimit(f"Query param page should be at most {MAX_PAGE}")
    order = listing.order_param(query, _ORDERS, "-created_at")
    where = ["p.project_id = $1"]
    args: list[Any] = [project_id]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if query.get("campaign"):
        add(
            "p.campaign_id IN (SELECT id FROM campaigns WHERE project_id = p.project_id AND (name = ? OR id = ?))",
            query["campaign"],
        )
    if query.get("customer"):
        add("(p.customer_id = ? OR c.source_id = ?)", query["customer"])
    if query.get("voucher"):
        add("? = ANY(p.voucher_codes)", query["voucher"])
    if query.get("source_id"):
        add("p.source_id = ?", query["source_id"])
    if query.get("result") == "FAILURE":
        where.append("false")  # failed publications are not stored
    condition = " AND ".join(where)
    base = (
        "FROM publications p LEFT JOIN customers c ON c.project_id = p.project_id AND c.id = p.customer_id "
        f"WHERE {condition}"
    )
    total = await conn.fetchval(f"SELECT count(*) {base}", *args)
    rows = await conn.fetch(f"SELECT p.* {base} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args)
    items = [await _list_item(conn, project_id, r) for r in rows]
    return {"object": "list", "data_ref": "publications", "publications": items, "total": total}


async def _list_item(conn: asyncpg.Connection, project_id: str, row: asyncpg.Record) -> dict[str, Any]:
    customer_row = await customers.find(conn, project_id, row["customer_id"])
    customer = customer_views.customer_view(customer_row) if customer_row is not None else None
    ids = await conn.fetch(
        "SELECT id, code FROM vouchers WHERE project_id = $1 AND code = ANY($2::text[])",
        project_id,
        list(row["voucher_codes"]),
    )
    by_code = {r["code"]: r["id"] for r in ids}
    body = _view(row, customer, [by_code[c] for c in row["voucher_codes"] if c in by_code], None)
    body["vouchers"] = list(row["voucher_codes"])
    return body
