"""Promotion tiers (``promo_``) and promotion stacks (``stack_``) of PROMOTION campaigns.

A tier is a code-less cart discount with its own validity window and rule sets; a stack is an
ordered group of at most 30 tiers of one campaign, redeemed together. Tier views embed the
campaign's validity fields, read from the ``campaigns`` table at view time so that enabling,
disabling or re-dating a campaign shows in its tiers at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from voucherd.definitions import validation_rules
from voucherd.definitions.categories import category_view
from voucherd.platform.errors import InvalidCampaign, InvalidPayload, InvalidQueryParams, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso

MAX_STACK_TIERS = 30
# The fields a tier update clears when sent as null; a null for any other field (a tier's name or
# action cannot be cleared) means "not given" (server.nulls).
TIER_CLEARS = frozenset(
    (
        "banner",
        "metadata",
        "start_date",
        "expiration_date",
        *("validity_timeframe", "validity_day_of_week", "validity_hours"),
        "category_id",
        "category",
    )
)
STACK_CLEARS = frozenset(("category_id",))  # as TIER_CLEARS, for a stack
DISCOUNT_TYPES = ("AMOUNT", "PERCENT", "FIXED", "UNIT")
DISCOUNT_EFFECTS: dict[str, tuple[str, ...]] = {
    "AMOUNT": (
        "APPLY_TO_ORDER",
        "APPLY_TO_ITEMS",
        "APPLY_TO_ITEMS_PROPORTIONALLY",
        "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY",
        "APPLY_TO_ITEMS_BY_QUANTITY",
    ),
    "PERCENT": ("APPLY_TO_ORDER", "APPLY_TO_ITEMS"),
    "FIXED": ("APPLY_TO_ORDER", "APPLY_TO_ITEMS"),
    "UNIT": ("ADD_MISSING_ITEMS", "ADD_NEW_ITEMS", "ADD_MANY_ITEMS"),
}
_DISCOUNT_VALUE = {"AMOUNT": "amount_off", "PERCENT": "percent_off", "FIXED": "fixed_amount", "UNIT": "unit_off"}
_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_TIER_ORDERS = {
    "created_at": "t.created_at, t.id",
    "-created_at": "t.created_at DESC, t.id DESC",
    "updated_at": "t.updated_at NULLS FIRST, t.id",
    "-updated_at": "t.updated_at DESC NULLS LAST, t.id DESC",
}
_STACK_ORDERS = {
    "created_at": "created_at, id",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "updated_at NULLS FIRST, id",
    "-updated_at": "updated_at DESC NULLS LAST, id DESC",
    "name": "name, id",
    "-name": "name DESC, id DESC",
}
_CAMPAIGN_FIELDS = (
    "start_date",
    "expiration_date",
    "validity_timeframe",
    "validity_day_of_week",
    "validity_hours",
    "active",
    "category_id",
)
_TIER_SELECT = (
    "SELECT t.*, "
    + ", ".join(f"c.{field} AS campaign_{field}" for field in _CAMPAIGN_FIELDS)
    + " FROM promotion_tiers t JOIN campaigns c"
    " ON c.id = t.campaign_id AND c.project_id = t.project_id AND c.deleted_at IS NULL"
)


# ----------------------------------------------------------------------------------------------- field checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_datetime(value: Any, field: str) -> datetime | None:
    """A body date: ``2016-11-16`` or an ISO 8601 date-time (UTC when no offset); ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidPayload(f"Property .{field} should be an ISO 8601 date or date-time")


def _check_discount(discount: Any, where: str) -> dict[str, Any]:
    if not isinstance(discount, dict):
        raise InvalidPayload(f"Property {where} should be an object")
    kind = discount.get("type")
    if kind not in DISCOUNT_TYPES:
        raise InvalidPayload(f"Property {where}.type should be one of {', '.join(DISCOUNT_TYPES)}")
    effect = discount.get("effect")
    if effect is not None and effect not in DISCOUNT_EFFECTS[kind]:
        raise InvalidPayload(f"Property {where}.effect should be one of {', '.join(DISCOUNT_EFFECTS[kind])}")
    if kind == "UNIT" and effect == "ADD_MANY_ITEMS":
        units = discount.get("units")
        if not isinstance(units, list) or not units:
            raise InvalidPayload(f"Property {where}.units should be a non-empty array for ADD_MANY_ITEMS")
        for index, unit in enumerate(units):
            if not isinstance(unit, dict):
                raise InvalidPayload(f"Property {where}.units[{index}] should be an object")
            _check_unit(unit, f"{where}.units[{index}]")
            if unit.get("effect") not in ("ADD_MISSING_ITEMS", "ADD_NEW_ITEMS"):
                raise InvalidPayload(
                    f"Property {where}.units[{index}].effect should be ADD_MISSING_ITEMS or ADD_NEW_ITEMS"
                )
        return discount
    if kind == "UNIT":
        _check_unit(discount, where)
        return discount
    value_field = _DISCOUNT_VALUE[kind]
    value = discount.get(value_field)
    formula = discount.get(f"{value_field}_formula")
    if value is None and not isinstance(formula, str):
        raise InvalidPayload(f"Property {where}.{value_field} is required for a {kind} discount")
    if value is not None and (not _is_number(value) or value < 0):
        raise InvalidPayload(f"Property {where}.{value_field} should be a non-negative number")
    if kind != "PERCENT" and value is not None and not _is_int(value):  # money: integer minor units
        raise InvalidPayload(f"Property {where}.{value_field} should be an integer")
    if kind == "PERCENT" and value is not None and value > 100:
        raise InvalidPayload(f"Property {where}.percent_off should be at most 100")
    for limit in ("amount_limit", "aggregated_amount_limit"):
        if discount.get(limit) is not None and (not _is_number(discount[limit]) or discount[limit] < 0):
            raise InvalidPayload(f"Property {where}.{limit} should be a non-negative number")
        if discount.get(limit) is not None and not _is_int(discount[limit]):
            raise InvalidPayload(f"Property {where}.{limit} should be an integer")
    return discount


def _check_unit(unit: dict[str, Any], where: str) -> None:
    unit_off = unit.get("unit_off")
    if unit_off is None and not isinstance(unit.get("unit_off_formula"), str):
        raise InvalidPayload(f"Property {where}.unit_off is required for a UNIT discount")
    if unit_off is not None and (not _is_int(unit_off) or unit_off < 0):
        raise InvalidPayload(f"Property {where}.unit_off should be a non-negative integer")
    if not isinstance(unit.get("unit_type"), str) or not unit["unit_type"]:
        raise InvalidPayload(f"Property {where}.unit_type should be a product or SKU id")


def _check_validity(fields: dict[str, Any], body: dict[str, Any], partial: bool) -> None:
    if "validity_timeframe" in body or not partial:
        timeframe = body.get("validity_timeframe")
        if timeframe is not None:
            if not isinstance(timeframe, dict):
                raise InvalidPayload("Property .validity_timeframe should be an object")
            for part in ("interval", "duration"):
                value = timeframe.get(part)
                if value is not None and (not isinstance(value, str) or not _DURATION.match(value)):
                    raise InvalidPayload(f"Property .validity_timeframe.{part} should be an ISO 8601 duration")
            timeframe = {k: timeframe.get(k) for k in ("interval", "duration") if timeframe.get(k) is not None}
        fields["validity_timeframe"] = timeframe or None
    if "validity_day_of_week" in body or not partial:
        days = body.get("validity_day_of_week")
        if days is not None and not _is_days(days):
            raise InvalidPayload("Property .validity_day_of_week should be an array of integers from 0 to 6")
        fields["validity_day_of_week"] = days
    if "validity_hours" in body or not partial:
        hours = body.get("validity_hours")
        if hours is not None:
            daily = hours.get("daily") if isinstance(hours, dict) else None
            if not isinstance(daily, list):
                raise InvalidPayload("Property .validity_hours should be an object with a daily array")
            for index, slot in enumerate(daily):
                where = f".validity_hours.daily[{index}]"
                if not isinstance(slot, dict):
                    raise InvalidPayload(f"Property {where} should be an object")
                for clock in ("start_time", "expiration_time"):
                    if not isinstance(slot.get(clock), str) or not _CLOCK.match(slot[clock]):
                        raise InvalidPayload(f"Property {where}.{clock} should be a time HH:MM")
                if slot.get("days_of_week") is not None and not _is_days(slot["days_of_week"]):
                    raise InvalidPayload(f"Property {where}.days_of_week should be an array of integers from 0 to 6")
        fields["validity_hours"] = hours


def _is_days(days: Any) -> bool:
    return isinstance(days, list) and all(_is_int(d) and 0 <= d <= 6 for d in days)


async def _category_id(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> str | None:
    """The category named by ``category_id`` (an id) or ``category`` (a name); 404 when unknown."""
    if body.get("category_id") is not None:
        category_id = body["category_id"]
        if not isinstance(category_id, str):
            raise InvalidPayload("Property .category_id should be a string")
        found = await conn.fetchval(
            "SELECT id FROM categories WHERE project_id = $1 AND id = $2", project_id, category_id
        )
        if found is None:
            raise NotFound.of("category", category_id)
        return str(found)
    if body.get("category") is not None:
        name = body["category"]
        if not isinstance(name, str):
            raise InvalidPayload("Property .category should be a category name")
        found = await conn.fetchval(
            "SELECT id FROM categories WHERE project_id = $1 AND (name = $2 OR id = $2)", project_id, name
        )
        if found is None:
            raise NotFound.of("category", name)
        return str(found)
    return None


async def _checked_tier(
    conn: asyncpg.Connection, project_id: str, body: dict[str, Any], *, partial: bool
) -> dict[str, Any]:
    """Column values for the tier fields present in ``body`` (all of them on create)."""
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidPayload("Property .name is required and should be a non-empty string")
        fields["name"] = name
    if "banner" in body or not partial:
        banner = body.get("banner")
        if banner is not None and not isinstance(banner, str):
            raise InvalidPayload("Property .banner should be a string")
        fields["banner"] = banner
    if "action" in body or not partial:
        action = body.get("action")
        if not isinstance(action, dict) or action.get("discount") is None:
            raise InvalidPayload("Property .action.discount is required")
        fields["action"] = {"discount": _check_discount(action["discount"], ".action.discount")}
    if "metadata" in body or not partial:
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidPayload("Property .metadata should be an object")
        fields["metadata"] = metadata or {}
    if "hierarchy" in body and body["hierarchy"] is not None:
        if not _is_int(body["hierarchy"]) or body["hierarchy"] < 0:
            raise InvalidPayload("Property .hierarchy should be an integer >= 0")
        fields["hierarchy"] = body["hierarchy"]
    if "active" in body and body["active"] is not None:
        if not isinstance(body["active"], bool):
            raise InvalidPayload("Property .active should be a boolean")
        fields["active"] = body["active"]
    for field in ("start_date", "expiration_date"):
        if field in body or not partial:
            fields[field] = parse_datetime(body.get(field), field)
    _check_validity(fields, body, partial)
    if "category_id" in body or "category" in body or not partial:
        fields["category_id"] = await _category_id(conn, project_id, body)
    return fields


def _check_window(start: datetime | None, end: datetime | None, timeframe: Any) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidPayload("Property .start_date should be before .expiration_date")
    if timeframe and start is None:
        raise InvalidPayload("Property .validity_timeframe needs a .start_date")


# ----------------------------------------------------------------------------------------------- campaigns


async def _campaign(conn: asyncpg.Connection, project_id: str, campaign_ref: str) -> asyncpg.Record:
    """The live PROMOTION campaign with this id or name; 404 when missing, 400 ``invalid_campaign`` otherwise."""
    row = await conn.fetchrow(
        "SELECT * FROM campaigns WHERE project_id = $1 AND (id = $2 OR name = $2) AND deleted_at IS NULL "
        "ORDER BY id = $2 DESC LIMIT 1",
        project_id,
        campaign_ref,
    )
    if row is None:
        raise NotFound.of("campaign", campaign_ref)
    if row["campaign_type"] != "PROMOTION":
        raise InvalidCampaign(
            f"Campaign {row['id']} is a {row['campaign_type']} campaign; promotion tiers and stacks "
            "belong to PROMOTION campaigns."
        )
    return row


def _as_iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return iso(datetime(value.year, value.month, value.day, tzinfo=UTC))
    return None if value is None else str(value)


def _campaign_part(values: dict[str, Any], campaign_id: str) -> dict[str, Any]:
    return {
        "id": campaign_id,
        "start_date": _as_iso(values.get("start_date")),
        "expiration_date": _as_iso(values.get("expiration_date")),
        "validity_timeframe": values.get("validity_timeframe"),
        "validity_day_of_week": values.get("validity_day_of_week"),
        "validity_hours": values.get("validity_hours"),
        "active": values.get("active", True),
        "category_id": values.get("category_id"),
        "object": "campaign",
    }


# ----------------------------------------------------------------------------------------------- tier views


async def _tier_views(
    conn: asyncpg.Connection,
    project_id: str,
    rows: Sequence[asyncpg.Record],
    campaign: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Views of tier rows; the campaign part comes from ``campaign_*`` columns or from ``campaign``."""
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    assignments = await validation_rules.assignments_for(conn, project_id, ids)
    categories = await _categories(conn, project_id, [row["category_id"] for row in rows])
    views = []
    for row in rows:
        if campaign is not None:
            campaign_values = campaign
        else:
            campaign_values = {field: row[f"campaign_{field}"] for field in _CAMPAIGN_FIELDS}
        tier_assignments = assignments[row["id"]]
        views.append(
            {
                "id": row["id"],
                "created_at": iso(row["created_at"]),
                "updated_at": iso(row["updated_at"]),
                "name": row["name"],
                "banner": row["banner"],
                "action": row["action"],
                "metadata": row["metadata"],
                "hierarchy": row["hierarchy"],
                "promotion_id": row["campaign_id"],
                "campaign": _campaign_part(campaign_values, row["campaign_id"]),
                "campaign_id": row["campaign_id"],
                "active": row["active"],
                "start_date": iso(row["start_date"]),
                "expiration_date": iso(row["expiration_date"]),
                "validity_timeframe": row["validity_timeframe"],
                "validity_day_of_week": row["validity_day_of_week"],
                "validity_hours": row["validity_hours"],
                "object": "promotion_tier",
                "validation_rule_assignments": {
                    "object": "list",
                    "data_ref": "data",
                    "data": tier_assignments,
                    "total": len(tier_assignments),
                },
                "category_id": row["category_id"],
                "categories": categories.get(row["category_id"], []) if row["category_id"] else [],
            }
        )
    return views


async def _categories(
    conn: asyncpg.Connection, project_id: str, category_ids: list[str | None]
) -> dict[str, list[dict[str, Any]]]:
    wanted = sorted({c for c in category_ids if c})
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM categories WHERE project_id = $1 AND id = ANY($2::text[])", project_id, wanted
    )
    return {row["id"]: [category_view(row)] for row in rows}


async def _tier_row(conn: asyncpg.Connection, project_id: str, tier_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"{_TIER_SELECT} WHERE t.project_id = $1 AND t.id = $2", project_id, tier_id)
    if row is None:
        raise NotFound.of("promotion_tier", tier_id)
    return row


# ----------------------------------------------------------------------------------------------- tiers


async def _insert_tiers(
    conn: asyncpg.Connection, project_id: str, campaign_id: str, tiers: list[dict[str, Any]]
) -> list[asyncpg.Record]:
    checked = []
    for index, body in enumerate(tiers):
        if not isinstance(body, dict):
            raise InvalidPayload(f"Promotion tier {index} should be an object")
        fields = await _checked_tier(conn, project_id, body, partial=False)
        _check_window(fields["start_date"], fields["expiration_date"], fields["validity_timeframe"])
        rule_ids = body.get("validation_rules") or []
        if not isinstance(rule_ids, list) or not all(isinstance(r, str) for r in rule_ids):
            raise InvalidPayload("Property .validation_rules should be an array of validation rule ids")
        checked.append((fields, rule_ids))
    async with conn.transaction():
        # Serialise tier creation per campaign so that default hierarchies stay consecutive.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"promotion_tiers:{campaign_id}")
        top = await conn.fetchval(
            "SELECT coalesce(max(hierarchy), 0) FROM promotion_tiers WHERE project_id = $1 AND campaign_id = $2",
            project_id,
            campaign_id,
        )
        rows = []
        for fields, rule_ids in checked:
            if "hierarchy" not in fields:
                top += 1
                fields["hierarchy"] = top
            else:
                top = max(top, fields["hierarchy"])
            row = await conn.fetchrow(
                "INSERT INTO promotion_tiers (id, project_id, campaign_id, name, banner, action, metadata, hierarchy, "
                "active, start_date, expiration_date, validity_timeframe, validity_day_of_week, validity_hours, "
                "category_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                "clock_timestamp()) RETURNING *",
                new_id("promo"),
                project_id,
                campaign_id,
                fields["name"],
                fields["banner"],
                fields["action"],
                fields["metadata"],
                fields["hierarchy"],
                fields.get("active", True),
                fields["start_date"],
                fields["expiration_date"],
                fields["validity_timeframe"],
                fields["validity_day_of_week"],
                fields["validity_hours"],
                fields["category_id"],
            )
            for rule_id in rule_ids:
                await validation_rules.assign(conn, project_id, rule_id, "promotion_tier", row["id"])
            rows.append(row)
    return rows


async def create_tiers(
    conn: asyncpg.Connection, project_id: str, campaign: dict[str, Any], tiers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Create the tiers of a PROMOTION campaign that is being created (called inside its transaction).

    ``campaign`` is the campaign row as a dict: at least ``id``, ``start_date``, ``expiration_date``,
    ``active`` and ``category_id`` (``validity_*`` when set). Each tier body is a
    ``PromotionTierCreateParams``; ``validation_rules: [val_…]`` become assignments. The caller bumps
    the definitions version.
    """
    if not isinstance(tiers, list):
        raise InvalidPayload("Property .promotion.tiers should be an array")
    rows = await _insert_tiers(conn, project_id, str(campaign["id"]), tiers)
    return await _tier_views(conn, project_id, rows, campaign)


async def list_tiers(conn: asyncpg.Connection, project_id: str, campaign_id: str) -> list[dict[str, Any]]:
    """The tiers of one campaign (by id), in hierarchy order, for the campaign view."""
    rows = await conn.fetch(
        f"{_TIER_SELECT} WHERE t.project_id = $1 AND t.campaign_id = $2 ORDER BY t.hierarchy, t.created_at, t.id",
        project_id,
        campaign_id,
    )
    return await _tier_views(conn, project_id, rows)


async def create_tier(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``POST /v1/promotions/{campaignId}/tiers``: add a tier to an existing PROMOTION campaign."""
    campaign = await _campaign(conn, project_id, campaign_ref)
    rows = await _insert_tiers(conn, project_id, campaign["id"], [body])
    return (await _tier_views(conn, project_id, rows, dict(campaign)))[0]


async def campaign_tiers(conn: asyncpg.Connection, project_id: str, campaign_ref: str) -> list[dict[str, Any]]:
    """``GET /v1/promotions/{campaignId}/tiers`` (campaign by id or name)."""
    campaign = await _campaign(conn, project_id, campaign_ref)
    return await list_tiers(conn, project_id, campaign["id"])


async def list_all_tiers(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    is_available: bool = False,
    limit: int = 10,
    page: int = 1,
    order: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's tiers and the total; ``is_available`` keeps active, current ones."""
    if order and order not in _TIER_ORDERS:
        raise InvalidQueryParams(f"Query parameter order should be one of {', '.join(_TIER_ORDERS)}")
    order_by = _TIER_ORDERS[order or "created_at"]
    where = "t.project_id = $1"
    if is_available:
        where += (
            " AND t.active AND c.active"
            " AND (t.start_date IS NULL OR t.start_date <= now())"
            " AND (t.expiration_date IS NULL OR t.expiration_date > now())"
            " AND (c.start_date IS NULL OR c.start_date <= now())"
            " AND (c.expiration_date IS NULL OR c.expiration_date > now())"
        )
    total = await conn.fetchval(
        "SELECT count(*) FROM promotion_tiers t JOIN campaigns c"
        " ON c.id = t.campaign_id AND c.project_id = t.project_id AND c.deleted_at IS NULL"
        f" WHERE {where}",
        project_id,
    )
    rows = await conn.fetch(
        f"{_TIER_SELECT} WHERE {where} ORDER BY {order_by} LIMIT $2 OFFSET $3",
        project_id,
        limit,
        (page - 1) * limit,
    )
    return await _tier_views(conn, project_id, rows), int(total)


async def get_tier(conn: asyncpg.Connection, project_id: str, tier_id: str) -> dict[str, Any]:
    row = await _tier_row(conn, project_id, tier_id)
    return (await _tier_views(conn, project_id, [row]))[0]


async def update_tier(conn: asyncpg.Connection, project_id: str, tier_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Partial update; explicit ``null`` clears a nullable field."""
    fields = await _checked_tier(conn, project_id, body, partial=True)
    async with conn.transaction():
        current = await conn.fetchrow(
            "SELECT * FROM promotion_tiers WHERE project_id = $1 AND id = $2 FOR UPDATE", project_id, tier_id
        )
        if current is None:
            raise NotFound.of("promotion_tier", tier_id)
        merged = {**dict(current), **fields}
        _check_window(merged["start_date"], merged["expiration_date"], merged["validity_timeframe"])
        if fields:
            sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
            await conn.execute(
                f"UPDATE promotion_tiers SET {', '.join([*sets, 'updated_at = now()'])} "
                "WHERE project_id = $1 AND id = $2",
                project_id,
                tier_id,
                *fields.values(),
            )
    return await get_tier(conn, project_id, tier_id)


async def set_tier_active(conn: asyncpg.Connection, project_id: str, tier_id: str, active: bool) -> dict[str, Any]:
    status = await conn.execute(
        "UPDATE promotion_tiers SET active = $3, updated_at = now() WHERE project_id = $1 AND id = $2",
        project_id,
        tier_id,
        active,
    )
    if status == "UPDATE 0":
        raise NotFound.of("promotion_tier", tier_id)
    return await get_tier(conn, project_id, tier_id)


async def delete_tier(conn: asyncpg.Connection, project_id: str, tier_id: str) -> None:
    """Delete a tier, its rule assignments, and its place in stacks (a stack left empty goes too)."""
    async with conn.transaction():
        campaign_id = await conn.fetchval(
            "DELETE FROM promotion_tiers WHERE project_id = $1 AND id = $2 RETURNING campaign_id", project_id, tier_id
        )
        if campaign_id is None:
            raise NotFound.of("promotion_tier", tier_id)
        await validation_rules.unassign_all(conn, project_id, [tier_id])
        await conn.execute(
            "UPDATE promotion_stacks SET tier_ids = tier_ids - $3::text, updated_at = now() "
            "WHERE project_id = $1 AND campaign_id = $2 AND tier_ids ? $3",
            project_id,
            campaign_id,
            tier_id,
        )
        await conn.execute(
            "DELETE FROM promotion_stacks WHERE project_id = $1 AND campaign_id = $2 "
            "AND jsonb_array_length(tier_ids) = 0",
            project_id,
            campaign_id,
        )


async def delete_for_campaign(conn: asyncpg.Connection, project_id: str, campaign_id: str) -> None:
    """Remove the tiers, stacks and tier rule assignments of a campaign deleted for good."""
    async with conn.transaction():
        tier_ids = [
            r["id"]
            for r in await conn.fetch(
                "DELETE FROM promotion_tiers WHERE project_id = $1 AND campaign_id = $2 RETURNING id",
                project_id,
                campaign_id,
            )
        ]
        if tier_ids:
            await validation_rules.unassign_all(conn, project_id, tier_ids)
        await conn.execute(
            "DELETE FROM promotion_stacks WHERE project_id = $1 AND campaign_id = $2", project_id, campaign_id
        )


# ----------------------------------------------------------------------------------------------- stacks


def _stack_view(row: asyncpg.Record, categories: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "tiers": {"ids": row["tier_ids"], "hierarchy_mode": row["hierarchy_mode"]},
        "campaign_id": row["campaign_id"],
        "category_id": row["category_id"],
        "categories": categories.get(row["category_id"], []) if row["category_id"] else [],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "promotion_stack",
    }


async def _stack_views(
    conn: asyncpg.Connection, project_id: str, rows: Sequence[asyncpg.Record]
) -> list[dict[str, Any]]:
    categories = await _categories(conn, project_id, [row["category_id"] for row in rows])
    return [_stack_view(row, categories) for row in rows]


async def _checked_stack(
    conn: asyncpg.Connection, project_id: str, campaign_id: str, body: dict[str, Any], *, partial: bool
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidPayload("Property .name is required and should be a non-empty string")
        fields["name"] = name
    if "tiers" in body or not partial:
        tiers = body.get("tiers")
        ids = tiers.get("ids") if isinstance(tiers, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise InvalidPayload("Property .tiers.ids is required: an array of promotion tier ids")
        if len(ids) > MAX_STACK_TIERS:
            raise InvalidPayload(f"Property .tiers.ids should hold at most {MAX_STACK_TIERS} tiers")
        if len(set(ids)) != len(ids):
            raise InvalidPayload("Property .tiers.ids should not repeat a tier")
        mode = tiers.get("hierarchy_mode") or "MANUAL"  # type: ignore[union-attr]
        if mode != "MANUAL":
            raise InvalidPayload("Property .tiers.hierarchy_mode should be MANUAL")
        found = {
            r["id"]: r["campaign_id"]
            for r in await conn.fetch(
                "SELECT id, campaign_id FROM promotion_tiers WHERE project_id = $1 AND id = ANY($2::text[])",
                project_id,
                ids,
            )
        }
        for tier_id in ids:
            if tier_id not in found:
                raise NotFound.of("promotion_tier", tier_id)
            if found[tier_id] != campaign_id:
                raise InvalidPayload(f"Promotion tier {tier_id} belongs to another campaign")
        fields["tier_ids"] = ids
        fields["hierarchy_mode"] = mode
    if "category_id" in body or not partial:
        fields["category_id"] = await _category_id(conn, project_id, {"category_id": body.get("category_id")})
    return fields


async def create_stack(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    campaign = await _campaign(conn, project_id, campaign_ref)
    fields = await _checked_stack(conn, project_id, campaign["id"], body, partial=False)
    row = await conn.fetchrow(
        "INSERT INTO promotion_stacks (id, project_id, campaign_id, name, tier_ids, hierarchy_mode, category_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        new_id("stack"),
        project_id,
        campaign["id"],
        fields["name"],
        fields["tier_ids"],
        fields["hierarchy_mode"],
        fields["category_id"],
    )
    return (await _stack_views(conn, project_id, [row]))[0]


async def campaign_stacks(conn: asyncpg.Connection, project_id: str, campaign_ref: str) -> list[dict[str, Any]]:
    campaign = await _campaign(conn, project_id, campaign_ref)
    rows = await conn.fetch(
        "SELECT * FROM promotion_stacks WHERE project_id = $1 AND campaign_id = $2 ORDER BY created_at, id",
        project_id,
        campaign["id"],
    )
    return await _stack_views(conn, project_id, rows)


async def list_all_stacks(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    limit: int = 10,
    page: int = 1,
    order: str | None = None,
    created_before: datetime | None = None,
    created_after: datetime | None = None,
    updated_before: datetime | None = None,
    updated_after: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's stacks (of live campaigns) and the total count."""
    if order and order not in _STACK_ORDERS:
        raise InvalidQueryParams(f"Query parameter order should be one of {', '.join(_STACK_ORDERS)}")
    order_by = _STACK_ORDERS[order or "-created_at"]
    where = (
        "s.project_id = $1"
        " AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = s.campaign_id AND c.deleted_at IS NULL)"
        " AND ($2::timestamptz IS NULL OR s.created_at < $2) AND ($3::timestamptz IS NULL OR s.created_at > $3)"
        " AND ($4::timestamptz IS NULL OR s.updated_at < $4) AND ($5::timestamptz IS NULL OR s.updated_at > $5)"
    )
    args = (project_id, created_before, created_after, updated_before, updated_after)
    total = await conn.fetchval(f"SELECT count(*) FROM promotion_stacks s WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT s.* FROM promotion_stacks s WHERE {where} ORDER BY {order_by} LIMIT $6 OFFSET $7",
        *args,
        limit,
        (page - 1) * limit,
    )
    return await _stack_views(conn, project_id, rows), int(total)


async def _stack_row(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, stack_id: str
) -> tuple[asyncpg.Record, asyncpg.Record]:
    campaign = await _campaign(conn, project_id, campaign_ref)
    row = await conn.fetchrow(
        "SELECT * FROM promotion_stacks WHERE project_id = $1 AND campaign_id = $2 AND id = $3",
        project_id,
        campaign["id"],
        stack_id,
    )
    if row is None:
        raise NotFound.of("promotion_stack", stack_id)
    return campaign, row


async def get_stack(conn: asyncpg.Connection, project_id: str, campaign_ref: str, stack_id: str) -> dict[str, Any]:
    _campaign_row, row = await _stack_row(conn, project_id, campaign_ref, stack_id)
    return (await _stack_views(conn, project_id, [row]))[0]


async def update_stack(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, stack_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    campaign, _row = await _stack_row(conn, project_id, campaign_ref, stack_id)
    fields = await _checked_stack(conn, project_id, campaign["id"], body, partial=True)
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
    row = await conn.fetchrow(
        f"UPDATE promotion_stacks SET {', '.join([*sets, 'updated_at = now()'])} "
        "WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        stack_id,
        *fields.values(),
    )
    if row is None:
        raise NotFound.of("promotion_stack", stack_id)
    return (await _stack_views(conn, project_id, [row]))[0]


async def delete_stack(conn: asyncpg.Connection, project_id: str, campaign_ref: str, stack_id: str) -> None:
    campaign, _row = await _stack_row(conn, project_id, campaign_ref, stack_id)
    status = await conn.execute(
        "DELETE FROM promotion_stacks WHERE project_id = $1 AND campaign_id = $2 AND id = $3",
        project_id,
        campaign["id"],
        stack_id,
    )
    if status == "DELETE 0":
        raise NotFound.of("promotion_stack", stack_id)
