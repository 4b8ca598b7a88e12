"""Vouchers (``v_`` ids): codes of a campaign or standalone, their balances and transactions.

A voucher of a campaign inherits the campaign's voucher template (discount, gift effect, loyalty card
rules, validity) unless it overrides a field; its live counters live in Redis (voucherd.definitions.voucher_state),
written in the same call as PostgreSQL. Callers bump the definitions version after each change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from engine.codegen import code_space, generate_codes, validate_code_config
from engine.money import EngineInputError
from voucherd.definitions import categories, voucher_state
from voucherd.platform import keys
from voucherd.platform.errors import (
    DuplicateFound,
    InvalidAddBalanceParams,
    InvalidCodeConfig,
    InvalidPayload,
    InvalidQueryParams,
    InvalidVoucher,
    NotFound,
    VoucherdError,
)
from voucherd.platform.ids import new_id
from voucherd.platform.scripts import SOURCES
from voucherd.platform.timeutil import iso

VOUCHER_TYPES = ("DISCOUNT_VOUCHER", "GIFT_VOUCHER", "LOYALTY_CARD")
DISCOUNT_TYPES = ("AMOUNT", "PERCENT", "UNIT", "FIXED")
DISCOUNT_EFFECTS = (
    "APPLY_TO_ORDER",
    "APPLY_TO_ITEMS",
    "APPLY_TO_ITEMS_PROPORTIONALLY",
    "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY",
    "APPLY_TO_ITEMS_BY_QUANTITY",
    "ADD_MISSING_ITEMS",
    "ADD_NEW_ITEMS",
    "ADD_MANY_ITEMS",
)
GIFT_EFFECTS = ("APPLY_TO_ORDER", "APPLY_TO_ITEMS")
VALIDITY_FIELDS = ("validity_timeframe", "validity_day_of_week", "validity_hours")
MAX_CODE_LENGTH = 200
# The fields an update clears when sent as null (``redemption: null`` lifts the quantity limit); a null
# for any other field means "not given" (server.nulls).
CLEARS = frozenset(
    (
        "start_date",
        "expiration_date",
        *VALIDITY_FIELDS,
        "additional_info",
        "metadata",
        "category_id",
        "category",
        "redemption",
    )
)

# Every read of a voucher: its campaign (for the inherited template) and its category.
SELECT = """
SELECT v.*, c.name AS campaign_name, c.voucher AS template, c.start_date AS c_start_date,
       c.expiration_date AS c_expiration_date, c.validity_timeframe AS c_validity_timeframe,
       c.validity_day_of_week AS c_validity_day_of_week, c.validity_hours AS c_validity_hours,
       cat.name AS category_name, cat.hierarchy AS category_hierarchy,
       cat.created_at AS category_created_at, cat.updated_at AS category_updated_at
FROM vouchers v
LEFT JOIN campaigns c ON c.id = v.campaign_id
LEFT JOIN categories cat ON cat.id = v.category_id
WHERE v.project_id = $1 AND v.deleted_at IS NULL AND c.deleted_at IS NULL
"""


# --- field checks shared with campaigns ------------------------------------------------------------


def parse_datetime(value: Any, name: str) -> datetime | None:
    """ISO-8601 date (``2016-11-16``) or date-time; None stays None (explicit null clears)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"Property .{name} should be a date-time string")
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPayload(f"Property .{name} should be an ISO 8601 date-time, got {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def check_int(value: Any, name: str, *, minimum: int | None = 0, error: type[VoucherdError] = InvalidPayload) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise error(f"Property .{name} should be an integer")
    if minimum is not None and value < minimum:
        raise error(f"Property .{name} should be >= {minimum}")
    return int(value)


def check_number(value: Any, name: str, error: type[VoucherdError] = InvalidPayload) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise error(f"Property .{name} should be a number >= 0")
    return int(value) if float(value).is_integer() else value


def check_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayload(f"Property .{name} should be an object")
    return value


def check_str(value: Any, name: str, *, max_length: int = 1000) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidPayload(f"Property .{name} should be a string of at most {max_length} characters")
    return value


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidPayload(f"Property .{name} should be a boolean")
    return value


def check_validity(body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The validity fields present in ``body``, checked (explicit null kept, to clear)."""
    out: dict[str, Any] = {}
    if "validity_timeframe" in body:
        tf = body["validity_timeframe"]
        if tf is not None:
            tf = check_object(tf, f"{prefix}validity_timeframe")
            for part in ("interval", "duration"):
                if tf.get(part) is not None and not (isinstance(tf[part], str) and tf[part].startswith("P")):
                    raise InvalidPayload(f"Property .{prefix}validity_timeframe.{part} should be an ISO 8601 duration")
            tf = {k: tf[k] for k in ("interval", "duration") if tf.get(k) is not None}
        out["validity_timeframe"] = tf
    if "validity_day_of_week" in body:
        days = body["validity_day_of_week"]
        if days is not None and (
            not isinstance(days, list)
            or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days)
        ):
            raise InvalidPayload(f"Property .{prefix}validity_day_of_week should be a list of integers 0-6")
        out["validity_day_of_week"] = sorted(set(days)) if days is not None else None
    if "validity_hours" in body:
        hours = body["validity_hours"]
        if hours is not None:
            daily = check_object(hours, f"{prefix}validity_hours").get("daily", [])
            if not isinstance(daily, list):
                raise InvalidPayload(f"Property .{prefix}validity_hours.daily should be a list")
            for i, raw_item in enumerate(daily):
                item = check_object(raw_item, f"{prefix}validity_hours.daily[{i}]")
                for part in ("start_time", "expiration_time"):
                    text = item.get(part)
                    if not (isinstance(text, str) and len(text) == 5 and text[2] == ":"):
                        raise InvalidPayload(f"Property .{prefix}validity_hours.daily[{i}].{part} should be HH:MM")
                check_validity({"validity_day_of_week": item.get("days_of_week", [])}, f"{prefix}validity_hours.")
            hours = {"daily": daily}
        out["validity_hours"] = hours
    return out


def check_discount(value: Any, name: str = "discount") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidVoucher(f"Property .{name} should be an object")
    kind = value.get("type")
    if kind not in DISCOUNT_TYPES:
        raise InvalidVoucher(f"Property .{name}.type should be one of {', '.join(DISCOUNT_TYPES)}")
    if value.get("effect") is not None and value["effect"] not in DISCOUNT_EFFECTS:
        raise InvalidVoucher(f"Property .{name}.effect should be one of {', '.join(DISCOUNT_EFFECTS)}")
    required = {"AMOUNT": "amount_off", "PERCENT": "percent_off", "FIXED": "fixed_amount", "UNIT": "unit_off"}[kind]
    has_formula = isinstance(value.get(f"{required}_formula"), str)
    if kind == "UNIT" and isinstance(value.get("units"), list):
        has_formula = True
    if value.get(required) is None and not has_formula:
        raise InvalidVoucher(f"Property .{name}.{required} is required for a {kind} discount")
    if value.get("percent_off") is not None:
        value["percent_off"] = check_number(value["percent_off"], f"{name}.percent_off", InvalidVoucher)
    for field in ("amount_off", "fixed_amount", "amount_limit"):  # money: integer minor units
        if value.get(field) is not None:
            value[field] = check_int(value[field], f"{name}.{field}", error=InvalidVoucher)
    if value.get("percent_off") is not None and value["percent_off"] > 100:
        raise InvalidVoucher(f"Property .{name}.percent_off should be at most 100")
    for field in ("unit_off", "aggregated_amount_limit"):
        if value.get(field) is not None:
            value[field] = check_int(value[field], f"{name}.{field}", error=InvalidVoucher)
    return {k: v for k, v in value.items() if v is not None}


def check_gift(value: Any, name: str = "gift") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidVoucher(f"Property .{name} should be an object")
    out: dict[str, Any] = {"amount": check_int(value.get("amount", 0), f"{name}.amount", error=InvalidVoucher)}
    if value.get("effect") is not None:
        if value["effect"] not in GIFT_EFFECTS:
            raise InvalidVoucher(f"Property .{name}.effect should be one of {', '.join(GIFT_EFFECTS)}")
        out["effect"] = value["effect"]
    return out


def check_loyalty_card(value: Any, name: str = "loyalty_card") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidVoucher(f"Property .{name} should be an object")
    out: dict[str, Any] = {"points": check_int(value.get("points", 0), f"{name}.points", error=InvalidVoucher)}
    if value.get("expiration_rules") is not None:
        out["expiration_rules"] = check_object(value["expiration_rules"], f"{name}.expiration_rules")
    return out


def check_code_config(value: Any, count: int = 1) -> dict[str, Any]:
    """The normalized code_config (engine rules); 400 invalid_code_config when it cannot make ``count`` codes."""
    if value is not None and not isinstance(value, dict):
        raise InvalidCodeConfig("Property .code_config should be an object")
    raw = {k: v for k, v in (value or {}).items() if v is not None and k != "initial_count"}
    try:
        config = dict(validate_code_config(raw))
        space = code_space(config)
    except (EngineInputError, ValueError, TypeError) as exc:
        raise InvalidCodeConfig(str(exc)) from None
    if space < count:
        raise InvalidCodeConfig(f"The code_config allows only {space} codes; {count} were requested.")
    return config


def check_redemption_quantity(value: Any, name: str = "redemption") -> int | None:
    if value is None:
        return None
    quantity = check_object(value, name).get("quantity")
    return None if quantity is None else check_int(quantity, f"{name}.quantity", minimum=1)


def check_code(code: Any) -> str:
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH or any(ch.isspace() for ch in code):
        raise InvalidPayload(f"A code is a non-empty string without spaces, at most {MAX_CODE_LENGTH} characters")
    return code


async def resolve_category(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> str | None:
    """``category_id`` (must exist) or ``category`` (a name; created when new). None when neither is set."""
    if body.get("category_id") is not None:
        category_id = body["category_id"]
        found = await conn.fetchval(
            "SELECT id FROM categories WHERE project_id = $1 AND id = $2", project_id, category_id
        )
        if found is None:
            raise NotFound.of("category", str(category_id))
        return str(found)
    name = body.get("category")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise InvalidPayload("Property .category should be a non-empty string")
    found = await conn.fetchval(
        "INSERT INTO categories (id, project_id, name) VALUES ($1, $2, $3) "
        "ON CONFLICT (project_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        new_id("cat"),
        project_id,
        name,
    )
    return str(found)


# --- views -----------------------------------------------------------------------------------------


def _category_list(row: asyncpg.Record) -> list[dict[str, Any]]:
    return categories.joined_list(row)


def view(row: asyncpg.Record, live: dict[str, int] | None = None) -> dict[str, Any]:
    """The Voucherify voucher object; ``live`` overlays the Redis counters over PostgreSQL's."""
    template: dict[str, Any] = row["template"] or {}
    live = live or {}
    code = row["code"]
    kind = row["type"]
    voucher: dict[str, Any] = {
        "id": row["id"],
        "code": code,
        "campaign": row["campaign_name"],
        "campaign_id": row["campaign_id"],
        "category": row["category_name"],
        "category_id": row["category_id"],
        "type": kind,
        "discount": None,
        "gift": None,
        "loyalty_card": None,
        "start_date": iso(row["start_date"] or row["c_start_date"]),
        "expiration_date": iso(row["expiration_date"] or row["c_expiration_date"]),
    }
    for name in VALIDITY_FIELDS:
        voucher[name] = row[name] if row[name] is not None else row[f"c_{name}"]
    if kind == "DISCOUNT_VOUCHER":
        voucher["discount"] = row["discount"] if row["discount"] is not None else template.get("discount")
    elif kind == "GIFT_VOUCHER":
        gift = row["gift"] if row["gift"] is not None else template.get("gift") or {}
        voucher["gift"] = {
            "amount": live.get("amount", row["gift_amount"] or 0),
            "subtracted_amount": int(row["gift_subtracted"]),
            "balance": live.get("balance", row["gift_balance"] or 0),
            "effect": gift.get("effect", "APPLY_TO_ORDER"),
        }
    else:
        card = row["loyalty_card"] if row["loyalty_card"] is not None else template.get("loyalty_card") or {}
        voucher["loyalty_card"] = {
            "points": live.get("points_total", row["loyalty_points"] or 0),
            "balance": live.get("points", row["loyalty_balance"] or 0),
            "pending_points": 0,
            "expired_points": 0,
            "subtracted_points": int(row["loyalty_subtracted"]),
        }
        if card.get("expiration_rules") is not None:
            voucher["loyalty_card"]["expiration_rules"] = card["expiration_rules"]
    voucher.update(
        {
            "active": row["active"],
            "additional_info": row["additional_info"],
            "metadata": row["metadata"] or {},
            "is_referral_code": row["is_referral_code"],
            "holder_id": row["holder_id"],
            "referrer_id": row["referrer_id"],
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
            "object": "voucher",
            "publish": {
                "object": "list",
                "count": row["publish_count"],
                "url": f"/v1/vouchers/{code}/publications?page=1&limit=10",
            },
            "redemption": {
                "object": "list",
                "quantity": row["redemption_quantity"],
                "redeemed_quantity": live.get("redeemed", row["redeemed_quantity"]),
                "redeemed_points": int(row["redeemed_points"]),
                "url": f"/v1/vouchers/{code}/redemptions?page=1&limit=10",
            },
            "categories": _category_list(row),
        }
    )
    return voucher


async def views(redis: aioredis.Redis, project_id: str, rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """Voucher objects with their live counters from Redis (one pipelined round trip)."""
    live = await voucher_state.live_counters(redis, project_id, [r["code"] for r in rows])
    return [view(row, counters) for row, counters in zip(rows, live, strict=True)]


# --- reads -----------------------------------------------------------------------------------------


async def fetch_row(conn: asyncpg.Connection, project_id: str, code_or_id: str) -> asyncpg.Record:
    """A voucher by code, or by ``v_`` id; 404 when absent or in the bin."""
    row = await conn.fetchrow(SELECT + " AND v.code = $2", project_id, code_or_id)
    if row is None and code_or_id.startswith("v_"):
        row = await conn.fetchrow(SELECT + " AND v.id = $2", project_id, code_or_id)
    if row is None:
        raise NotFound.of("voucher", code_or_id)
    return row


async def get(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, code_or_id: str) -> dict[str, Any]:
    row = await fetch_row(conn, project_id, code_or_id)
    return (await views(redis, project_id, [row]))[0]


def _params(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in items:
        params.setdefault(name, []).append(value)
    return params


def paging(params: dict[str, list[str]], *, max_page: int | None = None) -> tuple[int, int]:
    """``(limit, offset)`` from ``limit`` (1-100, default 10) and ``page`` (from 1)."""

    def number(name: str, default: int, low: int, high: int | None) -> int:
        raw = params.get(name, [str(default)])[-1]
        try:
            value = int(raw)
        except ValueError:
            raise InvalidQueryParams(f"Query param {name} should be an integer") from None
        if value < low or (high is not None and value > high):
            raise InvalidQueryParams(f"Query param {name} should be between {low} and {high or 'any'}")
        return value

    limit = number("limit", 10, 1, 100)
    page = number("page", 1, 1, max_page)
    return limit, (page - 1) * limit


def date_filters(params: dict[str, list[str]], column: str, args: list[Any]) -> list[str]:
    """``created_at[before]=…`` / ``[created_at][after]=…`` style filters as SQL conditions."""
    where: list[str] = []
    field = column.rsplit(".", maxsplit=1)[-1]
    for name, values in params.items():
        bare = name.replace("[", " ").replace("]", " ").split()
        if len(bare) != 2 or bare[0] != field or bare[1] not in ("before", "after"):
            continue
        try:
            moment = parse_datetime(values[-1], name)
        except InvalidPayload as exc:
            raise InvalidQueryParams(str(exc)) from None
        args.append(moment)
        where.append(f"{column} {'<' if bare[1] == 'before' else '>'} ${len(args)}")
    return where


def order_by(params: dict[str, list[str]], allowed: Sequence[str], prefix: str, default: str) -> str:
    order = params.get("order", [default])[-1]
    field = order.lstrip("-")
    if field not in allowed:
        raise InvalidQueryParams(f"Query param order should be one of {', '.join(allowed)} (or -field)")
    direction = "DESC" if order.startswith("-") else "ASC"
    return f"{prefix}{field} {direction}, {prefix}id {direction}"


async def list_page(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, query: Iterable[tuple[str, str]]
) -> tuple[list[dict[str, Any]], int]:
    """``GET /v1/vouchers``: filters of SEMANTICS §1; returns (page of vouchers, total)."""
    params = _params(query)
    limit, offset = paging(params, max_page=99)
    args: list[Any] = [project_id]
    where: list[str] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if "campaign" in params:
        value = arg(params["campaign"][-1])
        where.append(f"(c.name = {value} OR v.campaign_id = {value})")
    if "campaign_id" in params:
        value = arg(params["campaign_id"][-1])
        where.append(f"(v.campaign_id = {value} OR c.name = {value})")
    if "category" in params:
        value = arg(params["category"][-1])
        where.append(f"(v.category_id = {value} OR cat.name = {value})")
    if "customer" in params:
        value = arg(params["customer"][-1])
        where.append(
            f"(v.holder_id = {value} OR v.holder_id IN "
            f"(SELECT cu.id FROM customers cu WHERE cu.project_id = $1 AND cu.source_id = {value}))"
        )
    if "code" in params:
        where.append(f"v.code = {arg(params['code'][-1])}")
    ids = [i for name in ("ids", "ids[]") for raw in params.get(name, []) for i in raw.split(",") if i]
    if ids:
        where.append(f"v.id = ANY({arg(ids)}::text[])")
    where += date_filters(params, "v.created_at", args)
    where += date_filters(params, "v.updated_at", args)
    where += _advanced_filters(params, args)
    sql_where = "".join(f" AND {w}" for w in where)
    order = order_by(params, ("created_at", "updated_at", "code"), "v.", "-created_at")
    total = await conn.fetchval(
        "SELECT count(*) FROM vouchers v LEFT JOIN campaigns c ON c.id = v.campaign_id "
        "LEFT JOIN categories cat ON cat.id = v.category_id "
        f"WHERE v.project_id = $1 AND v.deleted_at IS NULL AND c.deleted_at IS NULL{sql_where}",
        *args,
    )
    rows = await conn.fetch(f"{SELECT}{sql_where} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args)
    return await views(redis, project_id, rows), int(total)


_FILTER_COLUMNS = {
    "code": "v.code",
    "campaign_id": "v.campaign_id",
    "campaign": "c.name",
    "category_id": "v.category_id",
    "category": "cat.name",
    "holder_id": "v.holder_id",
    "type": "v.type",
    "id": "v.id",
}


def _advanced_filters(params: dict[str, list[str]], args: list[Any]) -> list[str]:
    """``filters[<field>][conditions][$op]=v`` for string fields and the ``active`` pseudo-field."""
    conditions: list[str] = []
    for name, values in params.items():
        if not name.startswith("filters["):
            continue
        parts = name.replace("[", " ").replace("]", " ").split()
        if parts == ["filters", "junction"]:
            continue
        if len(parts) < 4 or parts[2] != "conditions":
            raise InvalidQueryParams(f"Unsupported filter {name}")
        field, op = parts[1], parts[3]
        value = values[-1]
        if field == "active":
            flag = value.lower() == "true"
            expression = {
                "$enabled": "v.active",
                "$disabled": "NOT v.active",
                "$expired": "coalesce(v.expiration_date, c.expiration_date) < now()",
                "$active": "(v.active AND coalesce(c.active, true) AND coalesce(coalesce(v.expiration_date, "
                "c.expiration_date) >= now(), true) AND coalesce(coalesce(v.start_date, c.start_date) <= now(), true))",
            }.get(op)
            if expression is None:
                raise InvalidQueryParams(f"Unsupported filter {name}")
            conditions.append(expression if flag else f"NOT ({expression})")
            continue
        column = _FILTER_COLUMNS.get(field)
        if column is None:
            raise InvalidQueryParams(f"Unsupported filter field {field}")
        if op in ("$in", "$not_in"):
            listed = [v for n, vs in params.items() if n.startswith(f"filters[{field}][conditions][{op}]") for v in vs]
            args.append([i for v in listed for i in v.split(",")])
            neg = "NOT " if op == "$not_in" else ""
            conditions.append(f"{neg}(coalesce({column}, '') = ANY(${len(args)}::text[]))")
            continue
        simple = {
            "$is": "{c} = {v}",
            "$is_not": "{c} IS DISTINCT FROM {v}",
            "$starts_with": "{c} LIKE {v} || '%'",
            "$ends_with": "{c} LIKE '%' || {v}",
            "$contains": "{c} LIKE '%' || {v} || '%'",
            "$not_contain": "coalesce({c}, '') NOT LIKE '%' || {v} || '%'",
        }.get(op)
        if op == "$has_value":
            conditions.append(f"{column} IS NOT NULL")
        elif op == "$is_unknown":
            conditions.append(f"{column} IS NULL")
        elif simple is not None:
            args.append(value)
            conditions.append(simple.format(c=column, v=f"${len(args)}"))
        else:
            raise InvalidQueryParams(f"Unsupported filter condition {op}")
    junction = params.get("filters[junction]", ["and"])[-1].lower()
    if junction == "or" and len(conditions) > 1:
        return ["(" + " OR ".join(conditions) + ")"]
    return conditions


# --- writes ----------------------------------------------------------------------------------------


# The columns a new voucher is created with, and their SQL types (for INSERT … SELECT casts).
COLUMN_TYPES = {
    "id": "text",
    "project_id": "text",
    "code": "text",
    "campaign_id": "text",
    "category_id": "text",
    "type": "text",
    "discount": "jsonb",
    "gift": "jsonb",
    "loyalty_card": "jsonb",
    "start_date": "timestamptz",
    "expiration_date": "timestamptz",
    "validity_timeframe": "jsonb",
    "validity_day_of_week": "jsonb",
    "validity_hours": "jsonb",
    "active": "boolean",
    "additional_info": "text",
    "metadata": "jsonb",
    "is_referral_code": "boolean",
    "redemption_quantity": "integer",
    "gift_amount": "bigint",
    "gift_balance": "bigint",
    "loyalty_points": "bigint",
    "loyalty_balance": "bigint",
}
INSERT_COLUMNS = tuple(COLUMN_TYPES)


async def check_overrides(
    conn: asyncpg.Connection, project_id: str, body: dict[str, Any], campaign: dict[str, Any] | None
) -> dict[str, Any]:
    """The columns of a new voucher from its body, inheriting the campaign's template where absent."""
    template: dict[str, Any] = (campaign or {}).get("voucher") or {}
    fields: dict[str, Any] = {}
    if campaign is not None:
        if not template:
            raise InvalidVoucher(f"Campaign {campaign['name']!r} has no voucher template; it cannot hold codes.")
        kind = template["type"]
        if body.get("type") not in (None, kind):
            raise InvalidVoucher(f"Vouchers of campaign {campaign['name']!r} are of type {kind}")
        fields["campaign_id"] = campaign["id"]
        fields["is_referral_code"] = bool(template.get("is_referral_code", False))
        quantity = (template.get("redemption") or {}).get("quantity")
    else:
        kind = body.get("type") or "DISCOUNT_VOUCHER"
        if kind not in VOUCHER_TYPES:
            raise InvalidVoucher(f"Property .type should be one of {', '.join(VOUCHER_TYPES)}")
        fields["campaign_id"] = None
        fields["is_referral_code"] = bool(body.get("is_referral_code", False))
        quantity = None
        if kind == "DISCOUNT_VOUCHER" and body.get("discount") is None:
            raise InvalidVoucher("A DISCOUNT_VOUCHER needs a discount")
        if kind == "GIFT_VOUCHER" and body.get("gift") is None:
            raise InvalidVoucher("A GIFT_VOUCHER needs a gift")
    fields["type"] = kind
    if kind == "DISCOUNT_VOUCHER" and body.get("discount") is not None:
        fields["discount"] = check_discount(body["discount"])
    gift: dict[str, Any] = template.get("gift") or {}
    if kind == "GIFT_VOUCHER":
        if body.get("gift") is not None:
            gift = check_gift(body["gift"])
            if "effect" in gift or campaign is None:
                fields["gift"] = {"effect": gift.get("effect", "APPLY_TO_ORDER")}
        fields["gift_amount"] = fields["gift_balance"] = int(gift.get("amount", 0))
    card: dict[str, Any] = template.get("loyalty_card") or {}
    if kind == "LOYALTY_CARD":
        if body.get("loyalty_card") is not None:
            card = check_loyalty_card(body["loyalty_card"])
            if "expiration_rules" in card:
                fields["loyalty_card"] = {"expiration_rules": card["expiration_rules"]}
        fields["loyalty_points"] = fields["loyalty_balance"] = int(card.get("points", 0))
    if "redemption" in body and body["redemption"] is not None:
        quantity = check_redemption_quantity(body["redemption"])
    fields["redemption_quantity"] = quantity
    fields["start_date"] = parse_datetime(body.get("start_date"), "start_date")
    fields["expiration_date"] = parse_datetime(body.get("expiration_date"), "expiration_date")
    fields.update({k: v for k, v in check_validity(body).items() if v is not None})
    if body.get("active") is not None:
        fields["active"] = check_bool(body["active"], "active")
    if body.get("additional_info") is not None:
        fields["additional_info"] = check_str(body["additional_info"], "additional_info")
    if body.get("metadata") is not None:
        fields["metadata"] = check_object(body["metadata"], "metadata")
    fields["category_id"] = await resolve_category(conn, project_id, body)
    return fields


def _generator_config(body: dict[str, Any], campaign: dict[str, Any] | None) -> dict[str, Any]:
    if body.get("code_config") is not None:
        return check_code_config(body["code_config"])
    template = (campaign or {}).get("voucher") or {}
    return check_code_config(template.get("code_config"))


async def insert(conn: asyncpg.Connection, project_id: str, code: str, fields: dict[str, Any]) -> asyncpg.Record:
    """Insert one voucher row; 409 when the project already has the code."""
    values = {"id": new_id("v"), "project_id": project_id, "code": code, "active": True, **fields}
    values.setdefault("metadata", {})
    columns = [c for c in INSERT_COLUMNS if c in values]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    try:
        async with conn.transaction():
            await conn.execute(
                f"INSERT INTO vouchers ({', '.join(columns)}) VALUES ({placeholders})",
                *[values[c] for c in columns],
            )
            if values.get("campaign_id"):
                await conn.execute(
                    "UPDATE campaigns SET vouchers_count = vouchers_count + 1 WHERE id = $1", values["campaign_id"]
                )
    except asyncpg.UniqueViolationError:
        raise DuplicateFound(f"A voucher with code {code!r} already exists.") from None
    return await fetch_row(conn, project_id, code)


async def create(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    body: dict[str, Any],
    *,
    code: str | None = None,
    campaign: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create one voucher: with ``code``, or generated from the code_config (body's, else the campaign's).

    ``campaign`` (a campaign view) makes it a code of that campaign; without it the voucher is standalone
    (``campaigns.create_voucher`` resolves a campaign the body names).
    """
    code = code if code is not None else body.get("code")
    fields = await check_overrides(conn, project_id, body, campaign)
    if code is not None:
        row = await insert(conn, project_id, check_code(code), fields)
    else:
        config = _generator_config(body, campaign)
        row = None
        for _attempt in range(5):
            candidate = generate_codes(config, 1)[0]
            try:
                row = await insert(conn, project_id, candidate, fields)
                break
            except DuplicateFound:
                continue
        if row is None:
            raise InvalidCodeConfig("Could not find a free code for this code_config; make it longer.")
    await voucher_state.put(redis, project_id, row)
    if isinstance(body.get("validation_rules"), list) and body["validation_rules"]:
        from voucherd.definitions import validation_rules

        for rule_id in body["validation_rules"]:
            await validation_rules.assign(conn, project_id, str(rule_id), "voucher", row["id"])
    return view(row)


UPDATABLE = ("category", "category_id", "start_date", "expiration_date", "active", "additional_info", "metadata")


async def update(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, code_or_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``PUT /v1/vouchers/{code}``: partial; explicit null clears a nullable field."""
    row = await fetch_row(conn, project_id, code_or_id)
    sets: dict[str, Any] = {}
    for name in ("start_date", "expiration_date"):
        if name in body:
            sets[name] = parse_datetime(body[name], name)
    sets.update(check_validity(body))
    if body.get("active") is not None:
        sets["active"] = check_bool(body["active"], "active")
    if "additional_info" in body:
        sets["additional_info"] = check_str(body["additional_info"], "additional_info")
    if "metadata" in body:
        sets["metadata"] = {} if body["metadata"] is None else check_object(body["metadata"], "metadata")
    if "category_id" in body or "category" in body:
        sets["category_id"] = await resolve_category(conn, project_id, body)
    if "redemption" in body:
        sets["redemption_quantity"] = check_redemption_quantity(body["redemption"])
    if row["type"] == "DISCOUNT_VOUCHER" and body.get("discount") is not None:
        sets["discount"] = check_discount(body["discount"])
    if row["type"] == "GIFT_VOUCHER" and isinstance(body.get("gift"), dict) and body["gift"].get("effect"):
        sets["gift"] = {"effect": check_gift(body["gift"]).get("effect")}
    if row["type"] == "LOYALTY_CARD" and isinstance(body.get("loyalty_card"), dict):
        rules = body["loyalty_card"].get("expiration_rules")
        if rules is not None:
            sets["loyalty_card"] = {"expiration_rules": check_object(rules, "loyalty_card.expiration_rules")}
    assignments = [f"{name} = ${i}" for i, name in enumerate(sets, start=3)]
    await conn.execute(
        f"UPDATE vouchers SET {', '.join([*assignments, 'updated_at = now()'])} WHERE project_id = $1 AND id = $2",
        project_id,
        row["id"],
        *sets.values(),
    )
    fresh = await fetch_row(conn, project_id, row["code"])
    await voucher_state.patch(redis, project_id, fresh)
    return (await views(redis, project_id, [fresh]))[0]


async def set_active(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, code_or_id: str, active: bool
) -> dict[str, Any]:
    row = await fetch_row(conn, project_id, code_or_id)
    await conn.execute(
        "UPDATE vouchers SET active = $3, updated_at = now() WHERE project_id = $1 AND id = $2",
        project_id,
        row["id"],
        active,
    )
    fresh = await fetch_row(conn, project_id, row["code"])
    await voucher_state.patch(redis, project_id, fresh)
    return (await views(redis, project_id, [fresh]))[0]


async def delete(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, code_or_id: str, *, force: bool
) -> None:
    """Delete for good (``force``) or move to the bin; either way the code stops validating at once."""
    row = await fetch_row(conn, project_id, code_or_id)
    async with conn.transaction():
        if force:
            await conn.execute("DELETE FROM vouchers WHERE project_id = $1 AND id = $2", project_id, row["id"])
        else:
            await conn.execute(
                "UPDATE vouchers SET deleted_at = now() WHERE project_id = $1 AND id = $2", project_id, row["id"]
            )
        if row["campaign_id"]:
            await conn.execute(
                "UPDATE campaigns SET vouchers_count = greatest(vouchers_count - 1, 0) WHERE id = $1",
                row["campaign_id"],
            )
    await voucher_state.forget(redis, project_id, [row["code"]])


# --- balances and transactions ---------------------------------------------------------------------


def transaction_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "voucher_id": row["voucher_id"],
        "campaign_id": row["campaign_id"],
        "source": row["source"],
        "reason": row["reason"],
        "type": row["type"],
        "details": row["details"],
        "related_transaction_id": row["related_transaction_id"],
        "created_at": iso(row["created_at"]),
    }


async def adjust_balance(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    code: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """``POST /v1/vouchers/{code}/balance``: add (or remove, negative) gift credits or loyalty points.

    The live balance moves in Redis with one Lua script (guard: never below zero); PostgreSQL records
    the same delta and a transaction in one transaction. If that fails, the Redis move is undone.
    """
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise InvalidAddBalanceParams("Property .amount should be a non-zero integer")
    for name in ("source_id", "reason"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidAddBalanceParams(f"Property .{name} should be a string")
    row = await fetch_row(conn, project_id, code)
    if row["type"] == "GIFT_VOUCHER":
        fields, kind = ("balance", "amount"), "gift_voucher"
        tx_type = "CREDITS_ADDITION" if amount > 0 else "CREDITS_REMOVAL"
    elif row["type"] == "LOYALTY_CARD":
        fields, kind = ("points", "points_total"), "loyalty_card"
        tx_type = "POINTS_ADDITION" if amount > 0 else "POINTS_REMOVAL"
    else:
        raise InvalidAddBalanceParams(f"Voucher {row['code']} is a discount voucher; it has no balance.")
    key = keys.voucher_state(project_id, row["code"])
    script = redis.register_script(SOURCES["voucher_balance"])
    result: list[int] = [0]
    for _attempt in range(2):
        result = [int(x) for x in await script(keys=[key], args=[fields[0], fields[1], amount])]
        if result[0] != 0:
            break
        await voucher_state.load(redis, pool, project_id, row["code"])
    if result[0] == 0:
        raise NotFound.of("voucher", code)
    if result[0] == -1:
        raise InvalidAddBalanceParams(
            f"Cannot remove {-amount}: the balance of {row['code']} is {result[1]}.",
        )
    balance, total = result[1], result[2]
    balance_object = {
        "amount": amount,
        "total": total,
        "balance": balance,
        "type": kind,
        "operation_type": "MANUAL",
        "object": "balance",
        "related_object": {"type": "voucher", "id": row["id"]},
    }
    if kind == "loyalty_card":
        balance_object["points"] = amount
    try:
        async with conn.transaction():
            if kind == "gift_voucher":
                await conn.execute(
                    "UPDATE vouchers SET gift_balance = coalesce(gift_balance, 0) + $2, "
                    "gift_amount = coalesce(gift_amount, 0) + greatest($2, 0), "
                    "gift_subtracted = gift_subtracted + greatest(-$2, 0), updated_at = now() WHERE id = $1",
                    row["id"],
                    amount,
                )
            else:
                await conn.execute(
                    "UPDATE vouchers SET loyalty_balance = coalesce(loyalty_balance, 0) + $2, "
                    "loyalty_points = coalesce(loyalty_points, 0) + greatest($2, 0), "
                    "loyalty_subtracted = loyalty_subtracted + greatest(-$2, 0), updated_at = now() WHERE id = $1",
                    row["id"],
                    amount,
                )
            await conn.execute(
                "INSERT INTO voucher_transactions (id, project_id, voucher_id, campaign_id, source_id, source, "
                "reason, type, details) VALUES ($1, $2, $3, $4, $5, 'API', $6, $7, $8)",
                new_id("vtx"),
                project_id,
                row["id"],
                row["campaign_id"],
                body.get("source_id"),
                body.get("reason"),
                tx_type,
                {"balance": balance_object},
            )
    except BaseException:
        await script(keys=[key], args=[fields[0], fields[1], -amount])
        raise
    return {k: v for k, v in balance_object.items() if k != "points"}


async def list_transactions(
    conn: asyncpg.Connection, project_id: str, code: str, query: Iterable[tuple[str, str]]
) -> tuple[list[dict[str, Any]], bool]:
    """``GET /v1/vouchers/{code}/transactions``: cursor list; returns (page, has_more)."""
    params = _params(query)
    limit, _ = paging(params)
    order = params.get("order", ["-id"])[-1]
    if order not in ("id", "-id"):
        raise InvalidQueryParams("Query param order should be id or -id")
    row = await fetch_row(conn, project_id, code)
    args: list[Any] = [project_id, row["id"]]
    after = ""
    if params.get("starting_after_id"):
        seq = await conn.fetchval(
            "SELECT seq FROM voucher_transactions WHERE project_id = $1 AND id = $2",
            project_id,
            params["starting_after_id"][-1],
        )
        if seq is None:
            raise InvalidQueryParams("Query param starting_after_id names no transaction of this voucher")
        args.append(seq)
        after = f" AND seq {'<' if order == '-id' else '>'} $3"
    direction = "DESC" if order == "-id" else "ASC"
    rows = await conn.fetch(
        f"SELECT * FROM voucher_transactions WHERE project_id = $1 AND voucher_id = $2{after} "
        f"ORDER BY seq {direction} LIMIT {limit + 1}",
        *args,
    )
    return [transaction_view(r) for r in rows[:limit]], len(rows) > limit
