"""Campaign templates (``camp_tpl_``): a discount or gift campaign's set-up, kept to make more like it.

A template is made from a campaign or a promotion tier (a tier becomes a ``DISCOUNT_COUPONS`` set-up).
It keeps what a campaign create body holds, without name, category and code count, and a copy of the
first validation rule set assigned to its source. ``campaign-setup`` creates a campaign from it (the
request's fields replace the template's), ``tier-setup`` adds a promotion tier with its discount to a
PROMOTION campaign; each gets a new rule set copied from the template's. Callers bump the definitions
version after either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.definitions import campaigns, promotions, validation_rules
from voucherd.platform import listing, sql_filters
from voucherd.platform.errors import DuplicateFound, InvalidExportParams, InvalidPayload, InvalidQueryParams, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.sql_filters import Catalog, Field
from voucherd.platform.timeutil import iso

# What a template keeps of a campaign: the create body's fields, less name, category and code count.
_CAMPAIGN_FIELDS = (
    "type",
    "join_once",
    "auto_join",
    "use_voucher_metadata_schema",
    "start_date",
    "expiration_date",
    "validity_timeframe",
    "validity_day_of_week",
    "validity_hours",
    "activity_duration_after_publishing",
    "metadata",
    "access_settings",
    "description",
)
_SETUP_FIELDS = (*_CAMPAIGN_FIELDS, "vouchers_count", "category_id", "category", "voucher")
_TIER_FIELDS = (
    "name",
    "banner",
    "metadata",
    "hierarchy",
    "active",
    "start_date",
    "expiration_date",
    "validity_timeframe",
    "validity_day_of_week",
    "validity_hours",
    "category",
    "category_id",
)
_FILTERS = Catalog(
    source="campaign_templates t",
    scope="t.project_id = $1",
    key="t.id",
    fields={
        "id": Field("t.id"),
        "name": Field("t.name"),
        "campaign_type": Field("t.campaign_type"),
        "created_at": Field("t.created_at", "date"),
        "updated_at": Field("t.updated_at", "date"),
    },
    defaults=(),
    orders={},
)
_RULE_FIELDS = ("name", "rules", "bundle_rules", "error", "applicable_to", "type", "context_type")


def view(row: asyncpg.Record, *, expand: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "campaign_type": row["campaign_type"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "campaign_template",
    }
    if expand:
        body["json_template"] = {**row["setup"], "validation_rule": row["validation_rule"]}
    return body


def _name_and_description(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidPayload(
                "Property .name is required and should be a non-empty string of at most 200 characters"
            )
        fields["name"] = name
    if "description" in body:
        if body["description"] is not None and not isinstance(body["description"], str):
            raise InvalidPayload("Property .description should be a string")
        fields["description"] = body["description"]
    return fields


async def _rule_copy(conn: asyncpg.Connection, project_id: str, object_id: str) -> dict[str, Any] | None:
    assigned = (await validation_rules.assignments_for(conn, project_id, [object_id]))[object_id]
    if not assigned:
        return None
    rule = await validation_rules.get(conn, project_id, assigned[0]["rule_id"])
    return {k: rule[k] for k in _RULE_FIELDS if k in rule}


async def _source(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(campaign type, set-up, validation rule copy) of the campaign or tier the body names."""
    campaign_id, tier_id = body.get("campaign_id"), body.get("promotion_tier_id")
    if (campaign_id is None) == (tier_id is None):
        raise InvalidPayload("Send exactly one of .campaign_id and .promotion_tier_id")
    if campaign_id is not None:
        if not isinstance(campaign_id, str):
            raise InvalidPayload("Property .campaign_id should be a string")
        campaign = await campaigns.get(conn, project_id, campaign_id)
        if campaign["campaign_type"] not in ("DISCOUNT_COUPONS", "GIFT_VOUCHERS"):
            raise InvalidPayload(
                f"Campaign {campaign_id} is a {campaign['campaign_type']} campaign; templates hold discount or "
                "gift campaigns"
            )
        voucher = dict(campaign["voucher"] or {})
        voucher["redemption"] = {"quantity": (voucher.get("redemption") or {}).get("quantity")}
        code_config = {k: v for k, v in (voucher.get("code_config") or {}).items() if k != "initial_count"}
        voucher["code_config"] = code_config
        setup = {k: campaign[k] for k in _CAMPAIGN_FIELDS if campaign.get(k) is not None}
        setup["voucher"] = voucher
        return campaign["campaign_type"], setup, await _rule_copy(conn, project_id, campaign["id"])
    if not isinstance(tier_id, str):
        raise InvalidPayload("Property .promotion_tier_id should be a string")
    tier = await promotions.get_tier(conn, project_id, tier_id)
    discount = (tier.get("action") or {}).get("discount")
    setup = {
        "type": "AUTO_UPDATE",
        "voucher": {"type": "DISCOUNT_VOUCHER", "discount": discount},
        **{
            k: tier[k]
            for k in ("start_date", "expiration_date", "validity_timeframe", "validity_day_of_week", "validity_hours")
            if tier.get(k) is not None
        },
    }
    if tier.get("metadata"):
        setup["metadata"] = tier["metadata"]
    return "DISCOUNT_COUPONS", setup, await _rule_copy(conn, project_id, tier["id"])


async def _row(conn: asyncpg.Connection, project_id: str, template_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM campaign_templates WHERE project_id = $1 AND id = $2", project_id, template_id
    )
    if row is None:
        raise NotFound.of("campaign_template", template_id)
    return row


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = _name_and_description(body, partial=False)
    campaign_type, setup, rule = await _source(conn, project_id, body)
    try:
        row = await conn.fetchrow(
            "INSERT INTO campaign_templates (id, project_id, name, description, campaign_type, setup, validation_rule) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
            new_id("camp_tpl"),
            project_id,
            fields["name"],
            fields.get("description"),
            campaign_type,
            setup,
            rule,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateFound(f"A campaign template named {fields['name']!r} already exists.") from None
    return view(row)


async def get(conn: asyncpg.Connection, project_id: str, template_id: str, *, expand: bool = False) -> dict[str, Any]:
    return view(await _row(conn, project_id, template_id), expand=expand)


async def list_page(conn: asyncpg.Connection, project_id: str, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    items = list(query)
    params = dict(items)
    limit = listing.limit_param(params)
    order = params.get("order") or "id"
    if order not in ("id", "-id"):
        raise InvalidQueryParams("Query param order should be id or -id")
    direction = "DESC" if order == "-id" else "ASC"
    args: list[Any] = []
    try:
        where = sql_filters.where_sql(_FILTERS, sql_filters.filters_from_query(items), args)
    except InvalidExportParams as exc:
        raise InvalidQueryParams(str(exc).replace(".parameters.filters", " filters")) from None
    if params.get("starting_after_id"):
        args.append(params["starting_after_id"])
        where += f" AND t.id {'<' if direction == 'DESC' else '>'} ${len(args) + 1}"
    rows = await conn.fetch(
        f"SELECT * FROM campaign_templates t WHERE t.project_id = $1 AND ({where}) "
        f"ORDER BY t.id {direction} LIMIT {limit + 1}",
        project_id,
        *args,
    )
    page = [view(r) for r in rows[:limit]]
    body: dict[str, Any] = {
        "object": "list",
        "data_ref": "data",
        "data": page,
        "has_more": len(rows) > limit,
        "more_starting_after": page[-1]["id"] if len(rows) > limit else None,
    }
    if params.get("include_total") == "true":
        body["total"] = await conn.fetchval("SELECT count(*) FROM campaign_templates WHERE project_id = $1", project_id)
    return body


async def update(conn: asyncpg.Connection, project_id: str, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = _name_and_description(body, partial=True)
    await _row(conn, project_id, template_id)
    if fields:
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=3))
        try:
            await conn.execute(
                f"UPDATE campaign_templates SET {sets}, updated_at = now() WHERE project_id = $1 AND id = $2",
                project_id,
                template_id,
                *fields.values(),
            )
        except asyncpg.UniqueViolationError:
            raise DuplicateFound(f"A campaign template named {fields['name']!r} already exists.") from None
    return await get(conn, project_id, template_id)


async def delete(conn: asyncpg.Connection, project_id: str, template_id: str) -> None:
    deleted = await conn.fetchval(
        "DELETE FROM campaign_templates WHERE project_id = $1 AND id = $2 RETURNING id", project_id, template_id
    )
    if deleted is None:
        raise NotFound.of("campaign_template", template_id)


async def _require_project(conn: asyncpg.Connection, project_id: str) -> None:
    if await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", project_id) is None:
        raise NotFound.of("project", project_id)


async def management_list(
    conn: asyncpg.Connection, project_id: str, query: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """``GET /management/v1/projects/{projectId}/templates/campaigns``: as ``list_page``, for one project."""
    await _require_project(conn, project_id)
    return await list_page(conn, project_id, query)


async def copy(conn: asyncpg.Connection, project_id: str, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Copy a template into ``destination_project_id`` under a new name; its rule set stays a copy inside the
    template until a campaign or tier is made from it there."""
    await _require_project(conn, project_id)
    row = await _row(conn, project_id, template_id)
    fields = _name_and_description(body, partial=False)
    destination = body.get("destination_project_id")
    if not isinstance(destination, str):
        raise InvalidPayload("Property .destination_project_id is required")
    await _require_project(conn, destination)
    try:
        copied = await conn.fetchrow(
            "INSERT INTO campaign_templates (id, project_id, name, description, campaign_type, setup, validation_rule) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
            new_id("camp_tpl"),
            destination,
            fields["name"],
            fields.get("description", row["description"]),
            row["campaign_type"],
            row["setup"],
            row["validation_rule"],
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateFound(f"A campaign template named {fields['name']!r} already exists there.") from None
    return view(copied)


async def _new_rule(conn: asyncpg.Connection, project_id: str, row: asyncpg.Record) -> list[dict[str, str]]:
    if row["validation_rule"] is None:
        return []
    rule = await validation_rules.create(conn, project_id, row["validation_rule"])
    return [{"id": rule["id"], "object": "validation_rules"}]


async def campaign_setup(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    template_id: str,
    body: dict[str, Any],
    request_id: str | None = None,
) -> dict[str, Any]:
    row = await _row(conn, project_id, template_id)
    if not isinstance(body.get("name"), str):
        raise InvalidPayload("Property .name is required")
    if body.get("validation_rules") is not None:
        raise InvalidPayload("Property .validation_rules cannot be set here; the template's rule set is copied")
    overrides = {k: body[k] for k in ("name", *_SETUP_FIELDS) if body.get(k) is not None}
    request = {**row["setup"], "campaign_type": row["campaign_type"], **overrides}
    async with conn.transaction():
        created = await _new_rule(conn, project_id, row)
        if created:
            request["validation_rules"] = [created[0]["id"]]
        campaign = await campaigns.create(conn, redis, project_id, request, request_id)
    return {"created_resources": created, "campaign": campaign, "object": "campaign_setup"}


async def tier_setup(
    conn: asyncpg.Connection, project_id: str, template_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    row = await _row(conn, project_id, template_id)
    campaign_id = body.get("campaign_id")
    if not isinstance(campaign_id, str):
        raise InvalidPayload("Property .campaign_id is required")
    if not isinstance(body.get("name"), str):
        raise InvalidPayload("Property .name is required")
    if row["campaign_type"] != "DISCOUNT_COUPONS":
        raise InvalidPayload(f"Template {template_id} holds a gift campaign; a promotion tier needs a discount")
    setup = row["setup"]
    tier = {
        k: setup[k]
        for k in ("start_date", "expiration_date", "validity_timeframe", "validity_day_of_week", "validity_hours")
        if setup.get(k) is not None
    }
    tier.update({k: body[k] for k in _TIER_FIELDS if body.get(k) is not None})
    tier["action"] = {"discount": (setup.get("voucher") or {}).get("discount")}
    async with conn.transaction():
        created = await _new_rule(conn, project_id, row)
        if created:
            tier["validation_rules"] = [created[0]["id"]]
        promotion_tier = await promotions.create_tier(conn, project_id, campaign_id, tier)
    return {"created_resources": created, "promotion_tier": promotion_tier, "object": "promotion_tier_setup"}
