"""A project's stacking rules (``stk_`` id): how many and which redeemables combine in one request.

A project has at most one stacking-rules object. It stores only the fields the project set;
:func:`effective` merges them over :data:`DEFAULTS` (SEMANTICS §5.2, with the recommended
values where Voucherify documents none) for the hot path and the validation responses.
"""

from __future__ import annotations

import copy
from typing import Any

import asyncpg

from engine.stacking import DEFAULT_STACKING_RULES
from voucherd.platform.errors import InvalidPayload, NotFound, StackingRulesExist
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso

# The engine owns the defaults (SEMANTICS 5.2 with the recommended values where none are
# documented); grouped_redeemables_sorting_rule is not settable through the management API.
FIXED = {"grouped_redeemables_sorting_rule": DEFAULT_STACKING_RULES["grouped_redeemables_sorting_rule"]}
DEFAULTS: dict[str, Any] = {k: v for k, v in DEFAULT_STACKING_RULES.items() if k not in FIXED}

LIMITS: dict[str, tuple[int, int]] = {
    "redeemables_limit": (1, 30),
    "applicable_redeemables_limit": (1, 30),
    "applicable_redeemables_per_category_limit": (1, 30),
    "applicable_exclusive_redeemables_limit": (1, 5),
    "applicable_exclusive_redeemables_per_category_limit": (1, 5),
}
CATEGORY_LIMIT = (1, 10)
ENUMS: dict[str, tuple[str, ...]] = {
    "redeemables_application_mode": ("ALL", "PARTIAL"),
    "redeemables_sorting_rule": ("CATEGORY_HIERARCHY", "REQUESTED_ORDER"),
    "redeemables_products_application_mode": ("STACK", "ONCE"),
    "redeemables_no_effect_rule": ("REDEEM_ANYWAY", "SKIP"),
    "redeemables_rollback_order_mode": ("WITH_ORDER", "WITHOUT_ORDER"),
    "discount_calculation_mode": ("INITIAL_AMOUNT", "DISCOUNTED_AMOUNT"),
}
CATEGORY_LISTS = (
    "exclusive_categories",
    "joint_categories",
    "no_effect_skip_categories",
    "no_effect_redeem_anyway_categories",
    "initial_amount_mode_categories",
    "discounted_amount_mode_categories",
)
# Pairs of category lists that may not share a category.
DISJOINT = (
    ("exclusive_categories", "joint_categories"),
    ("no_effect_skip_categories", "no_effect_redeem_anyway_categories"),
    ("initial_amount_mode_categories", "discounted_amount_mode_categories"),
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(body: dict[str, Any]) -> dict[str, Any]:
    """The settable fields present in ``body``; ``None`` marks a field reset to its default."""
    fields: dict[str, Any] = {}
    for name, (low, high) in LIMITS.items():
        if name in body:
            value = body[name]
            if value is not None and (not _is_int(value) or not low <= value <= high):
                raise InvalidPayload(f"Property .{name} should be an integer from {low} to {high}")
            fields[name] = value
    if "applicable_redeemables_category_limits" in body:
        value = body["applicable_redeemables_category_limits"]
        if value is not None:
            if not isinstance(value, dict):
                raise InvalidPayload("Property .applicable_redeemables_category_limits should be an object")
            low, high = CATEGORY_LIMIT
            for category_id, limit in value.items():
                if not _is_int(limit) or not low <= limit <= high:
                    raise InvalidPayload(
                        f"Property .applicable_redeemables_category_limits.{category_id} should be an integer "
                        f"from {low} to {high}"
                    )
        fields["applicable_redeemables_category_limits"] = value
    for name, allowed in ENUMS.items():
        if name in body:
            value = body[name]
            if value is not None and value not in allowed:
                raise InvalidPayload(f"Property .{name} should be one of {', '.join(allowed)}")
            fields[name] = value
    for name in CATEGORY_LISTS:
        if name in body:
            value = body[name]
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise InvalidPayload(f"Property .{name} should be an array of category ids")
            fields[name] = None if value is None else list(dict.fromkeys(value))
    return fields


def _merge(stored: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stored)
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    settings = {**DEFAULTS, **merged}
    for first, second in DISJOINT:
        shared = set(settings[first]) & set(settings[second])
        if shared:
            raise InvalidPayload(f"Properties .{first} and .{second} share categories: {', '.join(sorted(shared))}")
    return merged


def stacking_rules_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        **copy.deepcopy(DEFAULTS),
        **row["settings"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def _require_project(conn: asyncpg.Connection, project_id: str) -> None:
    if await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", project_id) is None:
        raise NotFound.of("project", project_id)


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create the project's stacking rules; 409 ``stacking_rules_exist`` when it has them already."""
    await _require_project(conn, project_id)
    settings = _merge({}, _checked(body))
    row = await conn.fetchrow(
        "INSERT INTO stacking_rules (id, project_id, settings) VALUES ($1, $2, $3) "
        "ON CONFLICT (project_id) DO NOTHING RETURNING *",
        new_id("stk"),
        project_id,
        settings,
    )
    if row is None:
        raise StackingRulesExist(f"Project {project_id} already has stacking rules; update them instead.")
    return stacking_rules_view(row)


async def list_all(conn: asyncpg.Connection, project_id: str) -> list[dict[str, Any]]:
    await _require_project(conn, project_id)
    rows = await conn.fetch("SELECT * FROM stacking_rules WHERE project_id = $1", project_id)
    return [stacking_rules_view(r) for r in rows]


async def get(conn: asyncpg.Connection, project_id: str, stacking_rules_id: str) -> dict[str, Any]:
    await _require_project(conn, project_id)
    row = await conn.fetchrow(
        "SELECT * FROM stacking_rules WHERE project_id = $1 AND id = $2", project_id, stacking_rules_id
    )
    if row is None:
        raise NotFound.of("stacking_rules", stacking_rules_id)
    return stacking_rules_view(row)


async def update(
    conn: asyncpg.Connection, project_id: str, stacking_rules_id: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    """Partial update; an explicit ``null`` puts a field back to its default.

    ``stacking_rules_id`` None means the project's stacking rules, whatever their id.
    """
    await _require_project(conn, project_id)
    fields = _checked(body)
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, settings FROM stacking_rules WHERE project_id = $1 AND ($2::text IS NULL OR id = $2) "
            "FOR UPDATE",
            project_id,
            stacking_rules_id,
        )
        if row is None:
            raise NotFound.of("stacking_rules", stacking_rules_id or project_id)
        row = await conn.fetchrow(
            "UPDATE stacking_rules SET settings = $3, updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING *",
            project_id,
            row["id"],
            _merge(row["settings"], fields),
        )
    return stacking_rules_view(row)


async def delete(conn: asyncpg.Connection, project_id: str, stacking_rules_id: str | None) -> None:
    """Delete the project's stacking rules (``None``: whatever their id); the defaults apply again."""
    await _require_project(conn, project_id)
    status = await conn.execute(
        "DELETE FROM stacking_rules WHERE project_id = $1 AND ($2::text IS NULL OR id = $2)",
        project_id,
        stacking_rules_id,
    )
    if status == "DELETE 0":
        raise NotFound.of("stacking_rules", stacking_rules_id or project_id)


async def effective(conn: asyncpg.Connection, project_id: str) -> dict[str, Any]:
    """The stacking rules the engine applies: the project's own over the defaults (no id, no dates)."""
    stored = await conn.fetchval("SELECT settings FROM stacking_rules WHERE project_id = $1", project_id)
    return {**copy.deepcopy(DEFAULTS), **(stored or {}), **FIXED}
