"""Campaigns (``camp_`` ids): a voucher template and its codes, or the tiers of a promotion.

Creating more than one code is the ``CAMPAIGN.VOUCHERS_GENERATE`` async action: :func:`generate_codes`
runs in the worker (compiled generator, PostgreSQL COPY, Redis state in pipelined Lua batches).
Deleting is ``CAMPAIGN.VOUCHERS_DELETE``: the campaign leaves every read at once, its codes follow
in the worker (:func:`purge_codes`). Callers bump the definitions version after each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from engine.codegen import generate_codes as engine_generate_codes
from voucherd.definitions import categories, voucher_state, vouchers
from voucherd.platform import async_actions, copy_binary, db, keys, redis_bulk
from voucherd.platform.errors import (
    DuplicateFound,
    InvalidCampaign,
    InvalidCampaignParams,
    InvalidPayload,
    InvalidQueryParams,
    InvalidVoucher,
    NotFound,
)
from voucherd.platform.ids import new_id
from voucherd.platform.scripts import SOURCES
from voucherd.platform.timeutil import iso

CAMPAIGN_TYPES = ("DISCOUNT_COUPONS", "GIFT_VOUCHERS", "LOYALTY_PROGRAM", "PROMOTION", "REFERRAL_PROGRAM")
TYPES = ("AUTO_UPDATE", "STATIC", "STANDALONE")
VOUCHER_TYPE_OF = {
    "DISCOUNT_COUPONS": "DISCOUNT_VOUCHER",
    "REFERRAL_PROGRAM": "DISCOUNT_VOUCHER",
    "GIFT_VOUCHERS": "GIFT_VOUCHER",
    "LOYALTY_PROGRAM": "LOYALTY_CARD",
}
CAMPAIGN_TYPE_OF = {
    "DISCOUNT_VOUCHER": "DISCOUNT_COUPONS",
    "GIFT_VOUCHER": "GIFT_VOUCHERS",
    "LOYALTY_CARD": "LOYALTY_PROGRAM",
}
MAX_VOUCHERS_COUNT = 10_000_000
# The fields an update clears when sent as null (the contract's PUT sets what it is sent); a null
# for any other field means "not given" (server.nulls).
CLEARS = frozenset(
    (
        "description",
        "start_date",
        "expiration_date",
        *("validity_timeframe", "validity_day_of_week", "validity_hours"),
        "activity_duration_after_publishing",
        "metadata",
        "category_id",
        "category",
        "referral_program",
        "loyalty_tiers_expiration",
        "access_settings",
    )
)
GENERATE = "CAMPAIGN.VOUCHERS_GENERATE"
DELETE = "CAMPAIGN.VOUCHERS_DELETE"

SELECT = """
SELECT c.*, cat.name AS category_name, cat.hierarchy AS category_hierarchy,
       cat.created_at AS category_created_at, cat.updated_at AS category_updated_at
FROM campaigns c LEFT JOIN categories cat ON cat.id = c.category_id
WHERE c.project_id = $1 AND c.deleted_at IS NULL
"""


# --- views -----------------------------------------------------------------------------------------


def _categories(row: asyncpg.Record) -> list[dict[str, Any]]:
    return categories.joined_list(row)


def view(
    row: asyncpg.Record,
    *,
    tiers: list[dict[str, Any]] | None = None,
    assignments: list[dict[str, Any]] | None = None,
    with_categories: bool = True,
) -> dict[str, Any]:
    campaign: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "campaign_type": row["campaign_type"],
        "type": row["type"],
        "voucher": row["voucher"],
        "auto_join": row["auto_join"],
        "join_once": row["join_once"],
        "use_voucher_metadata_schema": row["use_voucher_metadata_schema"],
        "validity_timeframe": row["validity_timeframe"],
        "validity_day_of_week": row["validity_day_of_week"],
        "validity_hours": row["validity_hours"],
        "activity_duration_after_publishing": row["activity_duration_after_publishing"],
        "vouchers_count": row["vouchers_count"],
        "start_date": iso(row["start_date"]),
        "expiration_date": iso(row["expiration_date"]),
        "active": row["active"],
        "metadata": row["metadata"] or {},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "category": row["category_name"],
        "category_id": row["category_id"],
        "categories": _categories(row) if with_categories else [],
        "creation_status": row["creation_status"],
        "vouchers_generation_status": row["vouchers_generation_status"],
        "protected": row["protected"],
        "object": "campaign",
    }
    if row["referral_program"] is not None:
        campaign["referral_program"] = row["referral_program"]
    if row["loyalty_tiers_expiration"] is not None:
        campaign["loyalty_tiers_expiration"] = row["loyalty_tiers_expiration"]
    if tiers is not None:
        campaign["promotion"] = {
            "object": "list",
            "data_ref": "tiers",
            "tiers": tiers,
            "total": len(tiers),
            "has_more": False,
        }
    if assignments is not None:
        campaign["validation_rules_assignments"] = {
            "object": "list",
            "data_ref": "data",
            "data": assignments,
            "total": len(assignments),
        }
    return campaign


async def _full_view(conn: asyncpg.Connection, project_id: str, row: asyncpg.Record) -> dict[str, Any]:
    from voucherd.definitions import validation_rules

    tiers = None
    if row["campaign_type"] == "PROMOTION":
        from voucherd.definitions import promotions

        tiers = await promotions.list_tiers(conn, project_id, row["id"])
    assignments = (await validation_rules.assignments_for(conn, project_id, [row["id"]]))[row["id"]]
    return view(row, tiers=tiers, assignments=assignments)


# --- reads -----------------------------------------------------------------------------------------


async def fetch_row(conn: asyncpg.Connection, project_id: str, id_or_name: str) -> asyncpg.Record:
    """A live campaign by id, else by name; 404 when absent or in the bin."""
    row = await conn.fetchrow(SELECT + " AND c.id = $2", project_id, id_or_name)
    if row is None:
        row = await conn.fetchrow(SELECT + " AND c.name = $2", project_id, id_or_name)
    if row is None:
        raise NotFound.of("campaign", id_or_name)
    return row


async def get(conn: asyncpg.Connection, project_id: str, id_or_name: str) -> dict[str, Any]:
    return await _full_view(conn, project_id, await fetch_row(conn, project_id, id_or_name))


async def create_voucher(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, body: dict[str, Any], *, code: str | None = None
) -> dict[str, Any]:
    """``POST /v1/vouchers``: a code of the campaign the body names (``campaign_id``/``campaign``), else standalone."""
    ref = body.get("campaign_id") or body.get("campaign")
    campaign = await get(conn, project_id, str(ref)) if ref else None
    return await vouchers.create(conn, redis, project_id, body, code=code, campaign=campaign)


async def list_page(
    conn: asyncpg.Connection, project_id: str, query: Iterable[tuple[str, str]]
) -> tuple[list[dict[str, Any]], int]:
    """``GET /v1/campaigns``: paging, ``campaign_type``, ``campaign_status``, ``is_referral_code``, order,
    ``expand=category``, and ``filters[campaigns|campaigns_id|campaign_status|…]`` string conditions."""
    params: dict[str, list[str]] = {}
    for name, value in query:
        params.setdefault(name, []).append(value)
    limit, offset = vouchers.paging(params)
    args: list[Any] = [project_id]
    where: list[str] = []
    if "campaign_type" in params:
        kind = params["campaign_type"][-1]
        if kind not in CAMPAIGN_TYPES:
            raise InvalidQueryParams(f"Query param campaign_type should be one of {', '.join(CAMPAIGN_TYPES)}")
        args.append(kind)
        where.append(f"c.campaign_type = ${len(args)}")
    if "campaign_status" in params:
        args.append(params["campaign_status"][-1])
        where.append(f"c.creation_status = ${len(args)}")
    if "is_referral_code" in params:
        flag = params["is_referral_code"][-1].lower() == "true"
        where.append(("" if flag else "NOT ") + "(c.campaign_type = 'REFERRAL_PROGRAM')")
    columns = {"campaigns": "c.name", "campaigns_id": "c.id", "campaign_status": "c.creation_status"}
    for name, values in params.items():
        parts = name.replace("[", " ").replace("]", " ").split()
        if not parts or parts[0] != "filters" or parts == ["filters", "junction"]:
            continue
        if len(parts) < 4 or parts[1] not in columns or parts[2] != "conditions":
            raise InvalidQueryParams(f"Unsupported filter {name}")
        column, op = columns[parts[1]], parts[3]
        if op in ("$in", "$not_in"):
            args.append([v for value in values for v in value.split(",")])
            where.append(f"{'NOT ' if op == '$not_in' else ''}({column} = ANY(${len(args)}::text[]))")
        elif op in ("$is", "$is_not"):
            args.append(values[-1])
            where.append(f"{column} {'=' if op == '$is' else '<>'} ${len(args)}")
        else:
            raise InvalidQueryParams(f"Unsupported filter condition {op}")
    order = vouchers.order_by(params, ("created_at", "updated_at"), "c.", "-created_at")
    sql_where = "".join(f" AND {w}" for w in where)
    total = await conn.fetchval(
        f"SELECT count(*) FROM campaigns c WHERE c.project_id = $1 AND c.deleted_at IS NULL{sql_where}", *args
    )
    rows = await conn.fetch(f"{SELECT}{sql_where} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args)
    expand = {e for value in params.get("expand", []) for e in value.split(",")}
    return [view(r, with_categories="category" in expand) for r in rows], int(total)


# --- create ----------------------------------------------------------------------------------------


def _template(body: dict[str, Any], campaign_type: str, count: int) -> dict[str, Any] | None:
    """The checked voucher template (always with a normalized ``code_config``), None for promotions."""
    if campaign_type == "PROMOTION":
        return None
    raw = body.get("voucher")
    if raw is None:
        if campaign_type == "REFERRAL_PROGRAM":
            raise InvalidCampaign("A referral program needs a voucher with a discount")
        raise InvalidVoucher("Property .voucher is required for a campaign of codes")
    if not isinstance(raw, dict):
        raise InvalidVoucher("Property .voucher should be an object")
    kind = raw.get("type") or VOUCHER_TYPE_OF[campaign_type]
    if kind != VOUCHER_TYPE_OF[campaign_type]:
        raise InvalidCampaignParams(
            f"A {campaign_type} campaign holds {VOUCHER_TYPE_OF[campaign_type]} vouchers, not {kind}"
        )
    template: dict[str, Any] = {"type": kind}
    if kind == "DISCOUNT_VOUCHER":
        if raw.get("discount") is None:
            if campaign_type == "REFERRAL_PROGRAM":
                raise InvalidCampaign("A referral program needs a voucher with a discount")
            raise InvalidVoucher("Property .voucher.discount is required for a DISCOUNT_VOUCHER")
        template["discount"] = vouchers.check_discount(raw["discount"], "voucher.discount")
    elif kind == "GIFT_VOUCHER":
        if raw.get("gift") is None:
            raise InvalidVoucher("Property .voucher.gift is required for a GIFT_VOUCHER")
        template["gift"] = vouchers.check_gift(raw["gift"], "voucher.gift")
    else:
        template["loyalty_card"] = vouchers.check_loyalty_card(raw.get("loyalty_card") or {}, "voucher.loyalty_card")
    quantity = vouchers.check_redemption_quantity(raw.get("redemption"), "voucher.redemption")
    template["redemption"] = {"quantity": quantity}
    config = vouchers.check_code_config(raw.get("code_config"), max(count, 1))
    if isinstance(raw.get("code_config"), dict) and raw["code_config"].get("initial_count") is not None:
        config["initial_count"] = raw["code_config"]["initial_count"]
    template["code_config"] = config
    template["is_referral_code"] = campaign_type == "REFERRAL_PROGRAM" or bool(raw.get("is_referral_code", False))
    return template


def _campaign_type(body: dict[str, Any]) -> str:
    campaign_type = body.get("campaign_type")
    if campaign_type is None:
        voucher = body.get("voucher")
        voucher_type = voucher.get("type") if isinstance(voucher, dict) else None
        if voucher_type is None and isinstance(voucher, dict) and voucher.get("discount") is not None:
            voucher_type = "DISCOUNT_VOUCHER"
        if voucher_type is None and body.get("promotion") is not None:
            return "PROMOTION"
        if voucher_type not in CAMPAIGN_TYPE_OF:
            raise InvalidCampaignParams("Set campaign_type, or voucher.type to infer it from")
        return CAMPAIGN_TYPE_OF[str(voucher_type)]
    if campaign_type not in CAMPAIGN_TYPES:
        raise InvalidCampaignParams(f"Property .campaign_type should be one of {', '.join(CAMPAIGN_TYPES)}")
    return str(campaign_type)


async def _checked_fields(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The columns common to create and update that are present in ``body`` (null kept: it clears)."""
    fields: dict[str, Any] = {}
    if "description" in body:
        fields["description"] = vouchers.check_str(body["description"], "description")
    for name in ("start_date", "expiration_date"):
        if name in body:
            fields[name] = vouchers.parse_datetime(body[name], name)
    fields.update(vouchers.check_validity(body))
    for name in ("join_once", "auto_join", "use_voucher_metadata_schema"):
        if body.get(name) is not None:
            fields[name] = vouchers.check_bool(body[name], name)
    if "activity_duration_after_publishing" in body:
        value = body["activity_duration_after_publishing"]
        if value is not None and not (isinstance(value, str) and value.startswith("P")):
            raise InvalidPayload("Property .activity_duration_after_publishing should be an ISO 8601 duration")
        fields["activity_duration_after_publishing"] = value
    if "metadata" in body:
        fields["metadata"] = {} if body["metadata"] is None else vouchers.check_object(body["metadata"], "metadata")
    if "category_id" in body or "category" in body:
        fields["category_id"] = await vouchers.resolve_category(conn, project_id, body)
    for name in ("referral_program", "loyalty_tiers_expiration", "access_settings"):
        if name in body:
            fields[name] = None if body[name] is None else vouchers.check_object(body[name], name)
    start, end = fields.get("start_date"), fields.get("expiration_date")
    if start is not None and end is not None and start > end:
        raise InvalidPayload("Property .start_date should be before .expiration_date")
    return fields


async def create(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    body: dict[str, Any],
    request_id: str | None = None,
) -> dict[str, Any]:
    """Create a campaign; one code is made at once, more by the ``CAMPAIGN.VOUCHERS_GENERATE`` action."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidPayload("Property .name is required and should be a non-empty string of at most 200 characters")
    campaign_type = _campaign_type(body)
    kind = body.get("type") or "AUTO_UPDATE"
    if kind not in TYPES:
        raise InvalidCampaignParams(f"Property .type should be one of {', '.join(TYPES)}")
    if kind == "STANDALONE" and campaign_type not in ("DISCOUNT_COUPONS", "GIFT_VOUCHERS"):
        raise InvalidCampaignParams("A STANDALONE campaign holds discount or gift codes")
    count = vouchers.check_int(body.get("vouchers_count") or 0, "vouchers_count", error=InvalidCampaignParams)
    if count > MAX_VOUCHERS_COUNT:
        raise InvalidCampaignParams(f"Property .vouchers_count should be at most {MAX_VOUCHERS_COUNT}")
    if campaign_type == "PROMOTION" and count:
        raise InvalidCampaignParams("A PROMOTION campaign has tiers, not codes")
    template = _template(body, campaign_type, count)
    fields = await _checked_fields(conn, project_id, body)
    if fields.get("validity_timeframe") and fields.get("start_date") is None:
        raise InvalidPayload("Property .validity_timeframe needs a start_date")
    if campaign_type == "LOYALTY_PROGRAM":
        fields["join_once"] = True
    if kind == "STANDALONE":
        fields["join_once"] = False
    rule_ids = body.get("validation_rules") or []
    if not isinstance(rule_ids, list) or not all(isinstance(r, str) for r in rule_ids):
        raise InvalidPayload("Property .validation_rules should be an array of validation rule ids")
    tiers_body = (body.get("promotion") or {}).get("tiers") if campaign_type == "PROMOTION" else None
    status = "IN_PROGRESS" if count > 1 else "DONE"
    campaign_id = new_id("camp")
    values: dict[str, Any] = {
        "id": campaign_id,
        "project_id": project_id,
        "name": name,
        "campaign_type": campaign_type,
        "type": kind,
        "voucher": template,
        "creation_status": status,
        "vouchers_generation_status": status,
        **fields,
    }
    if body.get("active") is not None:
        values["active"] = vouchers.check_bool(body["active"], "active")
    columns = list(values)
    action: dict[str, str] | None = None
    async with conn.transaction():
        try:
            await conn.execute(
                f"INSERT INTO campaigns ({', '.join(columns)}) VALUES "
                f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
                *values.values(),
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateFound(f"A campaign named {name!r} already exists.") from None
        row = await fetch_row(conn, project_id, campaign_id)
        if tiers_body:
            from voucherd.definitions import promotions

            await promotions.create_tiers(conn, project_id, dict(row), tiers_body)
        if rule_ids:
            from voucherd.definitions import validation_rules

            for rule_id in rule_ids:
                await validation_rules.assign(conn, project_id, rule_id, "campaign", campaign_id)
        if count > 1:
            action = await async_actions.enqueue(
                conn,
                redis,
                project_id,
                GENERATE,
                {"campaign_id": campaign_id, "count": count, "base": 0},
                request_id=request_id,
            )
    if count == 1:
        await vouchers.create(conn, redis, project_id, {}, campaign=view(row))
    campaign = await get(conn, project_id, campaign_id)
    if action is not None:
        campaign["async_action_id"] = action["async_action_id"]
    return campaign


# --- update, enable/disable, delete, summary -------------------------------------------------------


async def update(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, id_or_name: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``PUT /v1/campaigns/{id}``: partial; explicit null clears. ``discount``/``gift`` (top level, as the
    API has them) update the voucher template, which inheriting codes follow at once."""
    row = await fetch_row(conn, project_id, id_or_name)
    fields = await _checked_fields(conn, project_id, body)
    if body.get("type") is not None:
        if body["type"] not in ("AUTO_UPDATE", "STATIC") or row["type"] == "STANDALONE":
            raise InvalidCampaignParams("Property .type can change between AUTO_UPDATE and STATIC only")
        fields["type"] = body["type"]
    if body.get("active") is not None:
        fields["active"] = vouchers.check_bool(body["active"], "active")
    if row["campaign_type"] == "LOYALTY_PROGRAM":
        fields.pop("join_once", None)
    if isinstance(body.get("unset_metadata_fields"), list):
        metadata = dict(fields.get("metadata", row["metadata"]) or {})
        for key in body["unset_metadata_fields"]:
            metadata.pop(key, None)
        fields["metadata"] = metadata
    template = dict(row["voucher"] or {})
    if body.get("discount") is not None:
        if template.get("type") != "DISCOUNT_VOUCHER":
            raise InvalidVoucher("Only a campaign of DISCOUNT_VOUCHER codes has a discount")
        template["discount"] = vouchers.check_discount(body["discount"])
        fields["voucher"] = template
    if body.get("gift") is not None:
        if template.get("type") != "GIFT_VOUCHER":
            raise InvalidVoucher("Only a campaign of GIFT_VOUCHER codes has a gift")
        gift = vouchers.check_gift(body["gift"])
        template["gift"] = {**template.get("gift", {}), **gift}
        fields["voucher"] = template
    start = fields.get("start_date", row["start_date"])
    end = fields.get("expiration_date", row["expiration_date"])
    if start is not None and end is not None and start > end:
        raise InvalidPayload("Property .start_date should be before .expiration_date")
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
    await conn.execute(
        f"UPDATE campaigns SET {', '.join([*sets, 'updated_at = now()'])} WHERE project_id = $1 AND id = $2",
        project_id,
        row["id"],
        *fields.values(),
    )
    return await get(conn, project_id, row["id"])


async def set_active(conn: asyncpg.Connection, project_id: str, id_or_name: str, active: bool) -> None:
    row = await fetch_row(conn, project_id, id_or_name)
    await conn.execute(
        "UPDATE campaigns SET active = $3, updated_at = now() WHERE project_id = $1 AND id = $2",
        project_id,
        row["id"],
        active,
    )


async def delete(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    id_or_name: str,
    *,
    force: bool,
    request_id: str | None = None,
) -> dict[str, str]:
    """Take the campaign out of every read now (its name is free again); its codes go in the worker."""
    row = await fetch_row(conn, project_id, id_or_name)
    async with conn.transaction():
        await conn.execute(
            "UPDATE campaigns SET deleted_at = now() WHERE project_id = $1 AND id = $2", project_id, row["id"]
        )
        return await async_actions.enqueue(
            conn, redis, project_id, DELETE, {"campaign_id": row["id"], "force": force}, request_id=request_id
        )


async def summary(conn: asyncpg.Connection, project_id: str, id_or_name: str) -> dict[str, Any]:
    """``GET /v1/campaigns/{id}/summary``: the counts voucherd records so far (redemption counts come
    from the redemptions the worker has persisted)."""
    row = await fetch_row(conn, project_id, id_or_name)
    stats = await conn.fetchrow(
        "SELECT count(*) AS created, coalesce(sum(redeemed_quantity), 0) AS redeemed, "
        "coalesce(sum(gift_amount), 0) AS gift_amount, coalesce(sum(gift_subtracted), 0) AS gift_subtracted, "
        "coalesce(sum(loyalty_points), 0) AS points, coalesce(sum(loyalty_subtracted), 0) AS points_subtracted, "
        "coalesce(sum(publish_count), 0) AS publications "
        "FROM vouchers WHERE campaign_id = $1 AND deleted_at IS NULL",
        row["id"],
    )
    deleted = await conn.fetchval(
        "SELECT count(*) FROM vouchers WHERE campaign_id = $1 AND deleted_at IS NOT NULL", row["id"]
    )
    zero = 0
    return {
        "object": "campaign_summary",
        "campaign": view(row, with_categories=False),
        "redemptions": int(stats["redeemed"]),
        "redemptions_succeeded": int(stats["redeemed"]),
        "redemptions_failed": zero,
        "rollbacks": zero,
        "rollbacks_succeeded": zero,
        "rollbacks_failed": zero,
        "validations": zero,
        "validations_succeeded": zero,
        "validations_failed": zero,
        "orders_amount": zero,
        "orders_rolledback_amount": zero,
        "vouchers_created": int(stats["created"]),
        "vouchers_deleted": int(deleted),
        "publications": int(stats["publications"]),
        "publications_succeeded": int(stats["publications"]),
        "publications_failed": zero,
        "discounted_amount": zero,
        "rolledback_discounted_amount": zero,
        "created_vouchers_amount": int(stats["gift_amount"]),
        "amount_added": zero,
        "amount_deleted": zero,
        "amount_redeemed": zero,
        "amount_rolledback": zero,
        "amount_subtracted": int(stats["gift_subtracted"]),
        "created_vouchers_points": int(stats["points"]),
        "points_deleted": zero,
        "points_subtracted": int(stats["points_subtracted"]),
        "points_added": zero,
        "points_rewarded": zero,
        "points_redeemed": zero,
        "points_rolledback": zero,
        "points_expired": zero,
        "points_transferred_out": zero,
        "points_transferred_in": zero,
        "pending_points_added": zero,
        "pending_points_subtracted": zero,
        "pending_points_activated": zero,
    }


# --- codes of a campaign ---------------------------------------------------------------------------


async def add_vouchers(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    id_or_name: str,
    body: dict[str, Any],
    count_param: str | None,
    *,
    code: str | None = None,
    request_id: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """``POST /v1/campaigns/{id}/vouchers[/{code}]``: one code → (200, voucher); more → (202, action)."""
    count = 1
    if count_param is not None:
        try:
            count = int(count_param)
        except ValueError:
            raise InvalidQueryParams("Query param vouchers_count should be an integer") from None
        if not 1 <= count <= MAX_VOUCHERS_COUNT:
            raise InvalidQueryParams(f"Query param vouchers_count should be between 1 and {MAX_VOUCHERS_COUNT}")
    campaign = view(await fetch_row(conn, project_id, id_or_name))
    if campaign["voucher"] is None:
        raise InvalidCampaignParams(f"Campaign {campaign['name']!r} is a promotion; it holds no codes")
    if code is not None or count == 1:
        return 200, await vouchers.create(conn, redis, project_id, body, code=code, campaign=campaign)
    if body.get("code") is not None:
        raise InvalidPayload("Property .code names one code; it cannot be used with vouchers_count > 1")
    # Check the overrides now so that a bad body is a 400 here, not a failed action later.
    await vouchers.check_overrides(conn, project_id, body, campaign)
    config = body.get("code_config")
    if config is not None:
        vouchers.check_code_config(config, count)
    async with conn.transaction():
        await conn.execute(
            "UPDATE campaigns SET vouchers_generation_status = 'IN_PROGRESS', updated_at = now() WHERE id = $1",
            campaign["id"],
        )
        action = await async_actions.enqueue(
            conn,
            redis,
            project_id,
            GENERATE,
            {"campaign_id": campaign["id"], "count": count, "body": body, "base": campaign["vouchers_count"]},
            request_id=request_id,
        )
    return 202, action


Progress = Callable[[int], Awaitable[None]]
Chunk = tuple[list[bytes], list[bytes]]  # voucher ids, codes
CHUNK = 25_000
REDIS_BATCH = 5_000
# Chunks in flight at once, each on its own connection: index upkeep is most of a COPY's cost and one
# backend uses one core.
PARALLEL = 2
# Generations up to this many codes write each code's state hash at once; larger ones record each code
# as a generated entry (voucher_state: a fifth of the Redis work), made a hash on its first read.
EAGER_STATE_MAX = 10_000


async def generate_codes(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """The ``CAMPAIGN.VOUCHERS_GENERATE`` operation: make ``count`` new unique codes of a campaign.

    Per chunk: the compiled generator draws codes, COPY loads them into a temporary table, one
    ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` keeps the free ones (codes are unique per
    project), only the few that collided are drawn again, and once the chunk commits its Redis state is
    written with pipelined Lua batches while further chunks go to PostgreSQL (``PARALLEL`` at a time).
    """
    campaign_id, count = str(params["campaign_id"]), int(params["count"])
    body: dict[str, Any] = params.get("body") or {}
    started = time.monotonic()
    async with pool.acquire() as conn:
        row = await conn.fetchrow(SELECT + " AND c.id = $2", project_id, campaign_id)
        if row is None:
            return {"message": f"Campaign {campaign_id} no longer exists; no codes generated.", "done_count": 0}
        campaign = view(row)
        fields = await vouchers.check_overrides(conn, project_id, body, campaign)
    # A retried action continues where the last attempt stopped instead of generating twice as many.
    count = max(0, int(params.get("base", 0)) + count - int(row["vouchers_count"]))
    template = campaign["voucher"] or {}
    config = vouchers.check_code_config(body.get("code_config") or template.get("code_config"), max(count, 1))
    shared: dict[str, Any] = {"active": True, "metadata": {}, **fields, "project_id": project_id}
    shared = {k: v for k, v in shared.items() if k in vouchers.COLUMN_TYPES and k not in ("id", "code")}
    select_list = ", ".join(f"${i}::{vouchers.COLUMN_TYPES[c]}" for i, c in enumerate(shared, start=1))
    insert_sql = (
        f"INSERT INTO vouchers (id, code, {', '.join(shared)}) SELECT n.id, n.code, {select_list} "
        "FROM voucherd_new_codes n ON CONFLICT DO NOTHING RETURNING id, code"
    )
    state = voucher_state.state_fields(
        {**dict.fromkeys(vouchers.COLUMN_TYPES), **shared, "holder_id": None, "redeemed_quantity": 0}
    )
    # Empty fields are left out of bulk hashes (an absent field reads as "none" too): less to write.
    state = {name: value for name, value in state.items() if value != "" and name != "id"}
    write_state = _state_writer(redis, project_id, state, lazy=count > EAGER_STATE_MAX)

    timings = {"generate": 0.0, "postgres": 0.0, "redis": 0.0}

    # Fast path: COPY straight into vouchers (no speculative insertion); a chunk with a taken code fails
    # as a whole and goes through the temporary table instead. JSON columns keep their defaults there.
    json_columns = {c for c, kind in vouchers.COLUMN_TYPES.items() if kind == "jsonb"}
    direct = all(shared[c] in (None, {}) for c in shared if c in json_columns)
    copy_columns = [c for c in shared if c not in json_columns and shared[c] is not None]
    copy_kinds = [vouchers.COLUMN_TYPES[c] for c in copy_columns]
    copy_values = tuple(shared[c] for c in copy_columns)
    # The shared fields in COPY's binary form, encoded once (copy_binary); None: records through asyncpg.
    shared_fields: bytes | None = None
    with contextlib.suppress(TypeError):
        shared_fields = b"".join(map(copy_binary.field, copy_kinds, copy_values))

    async def copy_direct(conn: asyncpg.Connection, ids: list[bytes], codes: list[bytes]) -> None:
        columns = ["id", "code", *copy_columns]
        if shared_fields is None:
            records = [(i.decode(), c.decode(), *copy_values) for i, c in zip(ids, codes, strict=True)]
            await conn.copy_records_to_table("vouchers", records=records, columns=columns)
            return
        data = copy_binary.two_text_columns(ids, codes, shared_fields, len(columns))
        # A memoryview: asyncpg takes bytes for a file name.
        await conn.copy_to_table("vouchers", source=memoryview(data), columns=columns, format="binary")

    async def insert_chunk(conn: asyncpg.Connection, ids: list[bytes], codes: list[bytes]) -> Chunk:
        began = time.monotonic()
        async with conn.transaction():
            inserted: Chunk | None = None
            if direct:
                try:
                    async with conn.transaction():
                        await copy_direct(conn, ids, codes)
                    inserted = (ids, codes)
                except asyncpg.UniqueViolationError:
                    inserted = None
            if inserted is None:
                await conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS voucherd_new_codes (id text, code text) ON COMMIT DELETE ROWS"
                )
                records = [(i.decode(), c.decode()) for i, c in zip(ids, codes, strict=True)]
                await conn.copy_records_to_table("voucherd_new_codes", records=records)
                rows = await conn.fetch(insert_sql, *shared.values())
                inserted = ([r["id"].encode() for r in rows], [r["code"].encode() for r in rows])
            await conn.execute(
                "UPDATE campaigns SET vouchers_count = vouchers_count + $2 WHERE id = $1",
                campaign_id,
                len(inserted[0]),
            )
        timings["postgres"] += time.monotonic() - began
        return inserted

    async def after(previous: asyncio.Task[None] | None, inserted: Chunk) -> None:
        if previous is not None:
            await previous  # one chunk's state at a time, in order
        began = time.monotonic()
        await write_state(*inserted)
        timings["redis"] += time.monotonic() - began

    seen: set[str] = set()
    done = fruitless = 0
    writing: asyncio.Task[None] | None = None
    in_flight: dict[asyncio.Task[Chunk], tuple[int, asyncpg.Connection]] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            free = [await stack.enter_async_context(pool.acquire()) for _ in range(PARALLEL)]
            wanted = 0  # codes in the chunks in flight
            while True:
                while free and done + wanted < count:
                    want = min(CHUNK, count - done - wanted)
                    began = time.monotonic()
                    codes = engine_generate_codes(config, want, exclude=seen)
                    seen.update(codes)
                    # Sorted codes and consecutive ids (a random 10-hex prefix per chunk, then a counter) make
                    # both unique indexes take the chunk in key order: far fewer random page touches.
                    codes.sort()
                    prefix = b"v_" + os.urandom(5).hex().encode()
                    ids = [b"%s%010x" % (prefix, i) for i in range(len(codes))]
                    encoded = [code.encode() for code in codes]
                    timings["generate"] += time.monotonic() - began
                    conn = free.pop()
                    in_flight[asyncio.create_task(insert_chunk(conn, ids, encoded))] = (want, conn)
                    wanted += want
                if not in_flight:
                    break
                finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    want, conn = in_flight.pop(task)
                    wanted -= want
                    free.append(conn)
                    inserted = task.result()
                    writing = asyncio.create_task(after(writing, inserted))
                    done += len(inserted[0])
                    fruitless = 0 if inserted[0] else fruitless + 1
                    if fruitless >= 3:
                        raise OperationError(f"Only {done} free codes found for this code_config; make it longer.")
                await progress(min(99, done * 100 // count))
            if writing is not None:
                await writing
                writing = None
            await db.analyse_after_bulk(free[0], "vouchers", done)
            await free[0].execute(
                "UPDATE campaigns SET creation_status = 'DONE', vouchers_generation_status = 'DONE', "
                "updated_at = now() WHERE id = $1",
                campaign_id,
            )
    except BaseException:
        pending = [*in_flight, *([writing] if writing is not None else [])]
        await asyncio.gather(*pending, return_exceptions=True)
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE campaigns SET creation_status = 'FAILED', vouchers_generation_status = 'FAILED', "
                "updated_at = now() WHERE id = $1 AND vouchers_generation_status = 'IN_PROGRESS'",
                campaign_id,
            )
        raise
    spent = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    return {
        "message": f"{done} vouchers generated in {time.monotonic() - started:.2f} s ({spent})",
        "done_count": done,
    }


def _state_writer(
    redis: aioredis.Redis, project_id: str, state: dict[str, str | bytes], *, lazy: bool
) -> Callable[[list[bytes], list[bytes]], Awaitable[None]]:
    """What writes the Redis state of a committed chunk (voucher ids, codes): a hash per code
    (``voucher_put_many.lua``), or with ``lazy`` a generated entry per code (see voucher_state)."""
    flat: list[bytes] = []
    for name, value in state.items():
        flat += [name.encode(), value if isinstance(value, bytes) else value.encode()]
    state_prefix = keys.voucher_state(project_id, "").encode()

    async def hashes(ids: list[bytes], codes: list[bytes]) -> None:
        shared_args = [b"%d" % (len(flat) // 2), *flat]
        batches = [
            (codes[start : start + REDIS_BATCH], [*shared_args, *ids[start : start + REDIS_BATCH]])
            for start in range(0, len(codes), REDIS_BATCH)
        ]
        await redis_bulk.run_script_batches(redis, SOURCES["voucher_put_many"], batches, state_prefix)

    templates = keys.generated_templates(project_id).encode()
    template = orjson.dumps([value.decode() for value in flat])
    template_id = hashlib.blake2b(template, digest_size=4).hexdigest().encode()
    bucket_names = [keys.generated_bucket(project_id, n).encode() for n in range(keys.GENERATED_BUCKETS)]

    def careful(ids: list[bytes], codes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
        """The batch as ``voucher_put_generated.lua`` takes it."""
        by_bucket: dict[int, list[int]] = {}
        for index, code in enumerate(codes):
            by_bucket.setdefault(zlib.crc32(code) % keys.GENERATED_BUCKETS, []).append(index)
        order = [index for group in by_bucket.values() for index in group]
        batch_keys = [templates, *(bucket_names[n] for n in by_bucket), *(state_prefix + codes[i] for i in order)]
        args = [
            template_id,
            template,
            b"%d" % len(by_bucket),
            b"%d" % len(state_prefix),
            *(b"%d" % len(group) for group in by_bucket.values()),
            *(ids[i] for i in order),
        ]
        return batch_keys, args

    async def entries(ids: list[bytes], codes: list[bytes]) -> None:
        spans = [(start, start + REDIS_BATCH) for start in range(0, len(codes), REDIS_BATCH)]
        if not redis_bulk.plain(redis):  # a cluster client: the script, batch by batch
            batches = [careful(ids[a:b], codes[a:b]) for a, b in spans]
            await redis_bulk.run_script_batches(redis, SOURCES["voucher_put_generated"], batches, b"")
            return
        # Almost always no key is there yet; where one is (a "missing" marker, a hash loaded from the row just
        # committed, a stale hash) the batch goes through voucher_put_generated.lua, which decides per code.
        taken = await redis_bulk.run_packed(
            redis, [redis_bulk.pack_keys_command(b"EXISTS", codes[a:b], state_prefix) for a, b in spans]
        )
        by_bucket: dict[int, tuple[list[bytes], list[bytes]]] = {}
        hard = []
        for (a, b), present in zip(spans, taken, strict=True):
            if int(present):
                hard.append(careful(ids[a:b], codes[a:b]))
                continue
            for voucher_id, code in zip(ids[a:b], codes[a:b], strict=True):
                names, values = by_bucket.setdefault(zlib.crc32(code) % keys.GENERATED_BUCKETS, ([], []))
                names.append(code)
                values.append(voucher_id)
        commands = [redis_bulk.pack_command([b"HSET", templates, template_id, template])]
        commands += [
            redis_bulk.pack_hset(bucket_names[n], names, values, template_id + b"|")
            for n, (names, values) in by_bucket.items()
        ]
        await redis_bulk.run_packed(redis, commands)
        if hard:
            await redis_bulk.run_script_batches(redis, SOURCES["voucher_put_generated"], hard, b"")

    return entries if lazy else hashes


class OperationError(Exception):
    """A generation that cannot complete (the code space is exhausted)."""


async def purge_codes(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The ``CAMPAIGN.VOUCHERS_DELETE`` operation: the campaign's codes go to the bin (or for good with
    ``force``) and their Redis state is dropped."""
    campaign_id, force = str(params["campaign_id"]), bool(params.get("force"))
    done = 0
    async with pool.acquire() as conn:
        while True:
            async with conn.transaction():
                if force:
                    rows = await conn.fetch(
                        "DELETE FROM vouchers WHERE id IN (SELECT id FROM vouchers WHERE campaign_id = $1 "
                        "LIMIT 50000) RETURNING code",
                        campaign_id,
                    )
                else:
                    rows = await conn.fetch(
                        "UPDATE vouchers SET deleted_at = now() WHERE id IN (SELECT id FROM vouchers "
                        "WHERE campaign_id = $1 AND deleted_at IS NULL LIMIT 50000) RETURNING code",
                        campaign_id,
                    )
            if not rows:
                break
            await voucher_state.forget(redis, project_id, [r["code"] for r in rows])
            done += len(rows)
        if force:
            from voucherd.definitions import promotions, validation_rules

            await promotions.delete_for_campaign(conn, project_id, campaign_id)
            await validation_rules.unassign_all(conn, project_id, [campaign_id])
            await conn.execute("DELETE FROM campaigns WHERE project_id = $1 AND id = $2", project_id, campaign_id)
    return {"message": f"{done} vouchers {'deleted' if force else 'moved to the bin'}", "done_count": done}
