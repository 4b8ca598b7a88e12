"""Validation rule sets (``val_`` ids) and their assignments (``asgm_`` ids).

The definitions are stored as the API gives them, after a shape check: numbered rule keys,
a ``logic`` expression over those keys, known rule names and operators. The engine compiles
them (``engine.rules.compile_rules``); :func:`rules_for` hands the hot path the rule sets
assigned to the objects it evaluates.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from voucherd.platform.errors import (
    DuplicateFound,
    InvalidPayload,
    InvalidQueryParams,
    InvalidValidationRules,
    NotFound,
)
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso

# Rule names (SEMANTICS §4); those in PROPERTY_RULES need a ``property`` (a metadata key).
PROPERTY_RULES = frozenset(
    {
        "customer.metadata",
        "order.items.metadata_any",
        "order.items.metadata_each",
        "order.metadata",
        "order.items.metadata",
        "product.metadata",
        "product.metadata.aggregated_quantity",
        "product.metadata.aggregated_amount",
        "product.metadata.discount_applicable",
        "product.metadata.match_all",
        "redemption.metadata",
        "custom_event.metadata",
    }
)
_PERIODS = ("", ".daily", ".weekly", ".monthly")
RULE_NAMES = PROPERTY_RULES | frozenset(
    [
        "customer.segment",
        "order.amount",
        "order.total_amount",
        "order.initial_amount",
        "order.items.count",
        "order.items.price_any",
        "order.items.price_each",
        "order.items.every",
        "order.items.any",
        "order.items.none",
        "order.items.cheapest",
        "order.items.most_expensive",
        "order.items.quantity",
        "order.items.aggregated_quantity",
        "order.items.price",
        "order.items.aggregated_amount",
        "product.id",
        "product.price",
        "product.quantity",
        "product.discount_applicable",
        "sku.id",
        "sku.price",
        "sku.quantity",
        "sku.discount_applicable",
        "campaign.orders.amount_discounted",
        "campaign.orders.amount",
        "redemption.gift.amount",
        "redemption.api_key",
        "redemption.count.per_api_key",
        "redemption.user.login",
        "redemption.count.per_user",
        "redemption.reward.pay_with_points.points_used",
        "publication.redeemable_by_linked_customer",
        *(f"campaign.redemptions.count{p}" for p in _PERIODS),
        *(f"campaign.redemptions.customers_count{p}" for p in _PERIODS),
        *(f"redemption.count{p}" for p in _PERIODS[1:]),
        *(f"redemption.count.per_customer{p}" for p in _PERIODS),
    ]
)
# Operators, with the aliases the documentation's examples use.
OPERATORS = frozenset(
    {
        "$is",
        "$is_not",
        "$in",
        "$not_in",
        "$less_than",
        "$less_than_or_equal",
        "$less_than_equal",
        "$more_than",
        "$greater_than",
        "$more_than_or_equal",
        "$more_than_equal",
        "$greater_than_or_equal",
        "$starts_with",
        "$ends_with",
        "$contains",
        "$not_contain",
        "$has_value",
        "$is_unknown",
        "$timeframe",
        "$timeframe_absolute",
        "$timeframe_daily_hours",
        "$dow",
        "$count",
        "$count_more",
        "$count_less",
        "$not_differ",
        "$not_intersect",
        "$from",
        "$after",
        "$before",
        "$more_than_ago",
        "$less_than_ago",
        "$is_days_ago",
        "$more_than_future",
        "$less_than_future",
        "$is_days_in_future",
    }
)
TYPES = ("expression", "basic", "advanced", "complex")
# The fields an update removes when sent as null; a null for any other field means "not given" (server.nulls).
CLEARS = frozenset(("bundle_rules", "error", "applicable_to"))
_CONTEXT_BASES = {
    "campaign.discount_coupons": "discount",
    "campaign.referral_program": "discount",
    "campaign.promotion": "discount",
    "voucher.discount_voucher": "discount",
}
_DISCOUNT_EFFECTS = (
    "apply_to_order",
    "apply_to_items",
    "apply_to_items_proportionally",
    "apply_to_items_proportionally_by_quantity",
    "apply_to_items_by_quantity",
    "fixed.apply_to_items",
    "percent.apply_to_items",
)
CONTEXT_TYPES = frozenset(
    [
        "global",
        *(f"earning_rule.{e}" for e in ("order.paid", "custom_event", "customer.segment.entered")),
        *(f"earning_rule.customer.tier.{e}" for e in ("joined", "left", "upgraded", "downgraded", "prolonged")),
        *_CONTEXT_BASES,
        *(f"{base}.discount.{effect}" for base in _CONTEXT_BASES for effect in _DISCOUNT_EFFECTS),
        "campaign.gift_vouchers",
        "campaign.gift_vouchers.gift.apply_to_order",
        "campaign.gift_vouchers.gift.apply_to_items",
        "campaign.loyalty_program",
        "voucher.gift_voucher",
        "voucher.gift_voucher.gift.apply_to_order",
        "voucher.gift_voucher.gift.apply_to_items",
        "voucher.loyalty_card",
        *(
            f"distribution.{e}"
            for e in ("custom_event", "order.paid", "order.created", "order.canceled", "order.updated")
        ),
        "reward_assignment.pay_with_points",
    ]
)
APPLICABLE_OBJECTS = ("product", "sku", "products_collection")
APPLICABLE_EFFECTS = (
    "APPLY_TO_EVERY",
    "APPLY_TO_CHEAPEST",
    "APPLY_FROM_CHEAPEST",
    "APPLY_TO_MOST_EXPENSIVE",
    "APPLY_FROM_MOST_EXPENSIVE",
)
RELATED_OBJECT_TYPES = (
    "voucher",
    "campaign",
    "promotion_tier",
    "earning_rule",
    "reward_assignment",
    "distribution",
)
_LIST_ORDERS = {
    "created_at": "created_at, id",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "updated_at NULLS FIRST, id",
    "-updated_at": "updated_at DESC NULLS LAST, id DESC",
    "name": "name NULLS FIRST, id",
    "-name": "name DESC NULLS LAST, id DESC",
}
_ASSIGNMENT_ORDERS = {"created_at": "a.created_at, a.id", "-created_at": "a.created_at DESC, a.id DESC"}
_LOGIC_TOKEN = re.compile(r"\s*(?:(\()|(\))|(\d+)|([A-Za-z]+)|(\S))")
_EMPTY_APPLICABLE_TO: dict[str, Any] = {"excluded": [], "included": [], "included_all": False}


# ----------------------------------------------------------------------------------------------- shape checks


def _check_logic(logic: Any, keys: set[str], where: str) -> None:
    """``logic`` is empty (all rules must pass) or and/or/parentheses over this level's keys."""
    if logic is None:
        return
    if not isinstance(logic, str):
        raise InvalidValidationRules(f"{where}.logic should be a string")
    tokens: list[str] = []
    for match in _LOGIC_TOKEN.finditer(logic):
        opening, closing, number, word, other = match.groups()
        if other is not None or (word is not None and word.lower() not in ("and", "or")):
            raise InvalidValidationRules(f"{where}.logic has an unexpected token {other or word!r}")
        tokens.append(opening or closing or number or word.lower())
    if not tokens:
        return
    position = 0

    def operand() -> None:
        nonlocal position
        if position >= len(tokens):
            raise InvalidValidationRules(f"{where}.logic ends too early: {logic!r}")
        token = tokens[position]
        position += 1
        if token == "(":
            expression()
            if position >= len(tokens) or tokens[position] != ")":
                raise InvalidValidationRules(f"{where}.logic has an unclosed parenthesis: {logic!r}")
            position += 1
        elif token.isdigit():
            if token not in keys:
                raise InvalidValidationRules(f"{where}.logic refers to rule {token}, which is not defined")
        else:
            raise InvalidValidationRules(f"{where}.logic expects a rule number or '(' instead of {token!r}")

    def expression() -> None:
        nonlocal position
        operand()
        while position < len(tokens) and tokens[position] in ("and", "or"):
            position += 1
            operand()

    expression()
    if position != len(tokens):
        raise InvalidValidationRules(f"{where}.logic has an unexpected {tokens[position]!r}: {logic!r}")


def _check_rule(rule: Any, where: str, *, check_names: bool) -> None:
    if not isinstance(rule, dict):
        raise InvalidValidationRules(f"{where} should be an object")
    name = rule.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidValidationRules(f"{where}.name is required")
    if check_names and name not in RULE_NAMES:
        raise InvalidValidationRules(f"{where}.name {name!r} is not a known rule")
    prop = rule.get("property")
    if prop is not None and not isinstance(prop, str):
        raise InvalidValidationRules(f"{where}.property should be a string")
    if check_names and name in PROPERTY_RULES and not prop:
        raise InvalidValidationRules(f"{where}.property is required for the rule {name}")
    conditions = rule.get("conditions")
    if conditions is not None:
        if not isinstance(conditions, dict):
            raise InvalidValidationRules(f"{where}.conditions should be an object")
        for operator, operands in conditions.items():
            if operator not in OPERATORS:
                raise InvalidValidationRules(f"{where}.conditions: {operator!r} is not a known operator")
            if not isinstance(operands, list):
                raise InvalidValidationRules(f"{where}.conditions.{operator} should be an array of values")
    error = rule.get("error")
    if error is not None and (not isinstance(error, dict) or not isinstance(error.get("message", ""), str | None)):
        raise InvalidValidationRules(f"{where}.error should be an object with a string message")
    nested = rule.get("rules")
    if nested is not None:
        _check_rule_set(nested, f"{where}.rules", check_names=check_names)


def _check_rule_set(rules: Any, where: str, *, check_names: bool = True) -> None:
    if not isinstance(rules, dict):
        raise InvalidValidationRules(f"{where} should be an object")
    keys: set[str] = set()
    for key, rule in rules.items():
        if key == "logic":
            continue
        if not (key.isdigit() and not key.startswith("0")):
            raise InvalidValidationRules(f"{where} keys should be rule numbers from 1 or 'logic', not {key!r}")
        keys.add(key)
        _check_rule(rule, f"{where}.{key}", check_names=check_names)
    _check_logic(rules.get("logic"), keys, where)


def _check_applicable_to(value: Any) -> dict[str, Any]:
    if value is None:
        return dict(_EMPTY_APPLICABLE_TO)
    if not isinstance(value, dict):
        raise InvalidPayload("Property .applicable_to should be an object")
    out: dict[str, Any] = {}
    for side in ("included", "excluded"):
        items = value.get(side) or []
        if not isinstance(items, list):
            raise InvalidPayload(f"Property .applicable_to.{side} should be an array")
        checked = []
        for index, given in enumerate(items):
            where = f".applicable_to.{side}[{index}]"
            if not isinstance(given, dict):
                raise InvalidPayload(f"Property {where} should be an object")
            item = dict(given)
            if item.get("object") is not None and item["object"] not in APPLICABLE_OBJECTS:
                raise InvalidPayload(f"Property {where}.object should be one of {', '.join(APPLICABLE_OBJECTS)}")
            if not isinstance(item.get("id"), str) and not isinstance(item.get("source_id"), str):
                raise InvalidPayload(f"Property {where} needs an id or a source_id")
            item.setdefault("effect", "APPLY_TO_EVERY")
            if item["effect"] is None:
                item["effect"] = "APPLY_TO_EVERY"
            if item["effect"] not in APPLICABLE_EFFECTS:
                raise InvalidPayload(f"Property {where}.effect should be one of {', '.join(APPLICABLE_EFFECTS)}")
            if item.get("target") is not None and item["target"] not in ("ITEM", "UNIT"):
                raise InvalidPayload(f"Property {where}.target should be ITEM or UNIT")
            for field, field_value in item.items():
                if (
                    field.endswith(("_limit", "repeat", "skip_initially"))
                    and field_value is not None
                    and (isinstance(field_value, bool) or not isinstance(field_value, int) or field_value < 0)
                ):
                    raise InvalidPayload(f"Property {where}.{field} should be a non-negative integer")
            checked.append(item)
        out[side] = checked
    included_all = value.get("included_all", False)
    if not isinstance(included_all, bool | None):
        raise InvalidPayload("Property .applicable_to.included_all should be a boolean")
    out["included_all"] = bool(included_all)
    return out


def _checked(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Column values for the fields present in ``body`` (all of them on create)."""
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidPayload("Property .name should be a string")
        fields["name"] = name
    for column in ("rules", "bundle_rules"):
        if column in body or not partial:
            value = body.get(column)
            if value is None:
                value = {}
            _check_rule_set(value, column, check_names=column == "rules")
            fields[column] = value
    if "error" in body or not partial:
        error = body.get("error")
        if error is not None and (not isinstance(error, dict) or not isinstance(error.get("message"), str | None)):
            raise InvalidPayload("Property .error should be an object with a string message")
        fields["error"] = error if error and error.get("message") is not None else None
    if "applicable_to" in body or not partial:
        fields["applicable_to"] = _check_applicable_to(body.get("applicable_to"))
    if "type" in body or not partial:
        kind = body.get("type") or "expression"
        if kind not in TYPES:
            raise InvalidPayload(f"Property .type should be one of {', '.join(TYPES)}")
        fields["type"] = kind
    if "context_type" in body or not partial:
        context_type = body.get("context_type") or "global"
        if context_type not in CONTEXT_TYPES:
            raise InvalidPayload(f"Property .context_type {context_type!r} is not a known context type")
        fields["context_type"] = context_type
    return fields


# ----------------------------------------------------------------------------------------------- views

_SELECT = (
    "SELECT r.*, (SELECT count(*) FROM validation_rules_assignments a WHERE a.rule_id = r.id) AS assignments_count "
    "FROM validation_rules r"
)


def rule_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "rules": row["rules"],
        "bundle_rules": row["bundle_rules"],
        "applicable_to": row["applicable_to"],
        "type": row["type"],
        "context_type": row["context_type"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "assignments_count": int(row["assignments_count"]),
        "object": "validation_rules",
    }
    if row["error"] is not None:
        view["error"] = row["error"]
    return view


def assignment_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "rule_id": row["rule_id"],
        "related_object_id": row["related_object_id"],
        "related_object_type": row["related_object_type"],
        "created_at": iso(row["created_at"]),
        "object": "validation_rules_assignment",
    }


def _order_by(order: str | None, allowed: dict[str, str], default: str) -> str:
    if order is None or order == "":
        return allowed[default]
    if order not in allowed:
        raise InvalidQueryParams(f"Query parameter order should be one of {', '.join(allowed)}")
    return allowed[order]


# ----------------------------------------------------------------------------------------------- rule sets


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = _checked(body, partial=False)
    row = await conn.fetchrow(
        "INSERT INTO validation_rules (id, project_id, name, rules, bundle_rules, error, applicable_to, type, "
        "context_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *, 0 AS assignments_count",
        new_id("val"),
        project_id,
        fields["name"],
        fields["rules"],
        fields["bundle_rules"],
        fields["error"],
        fields["applicable_to"],
        fields["type"],
        fields["context_type"],
    )
    return rule_view(row)


async def get(conn: asyncpg.Connection, project_id: str, rule_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(f"{_SELECT} WHERE r.project_id = $1 AND r.id = $2", project_id, rule_id)
    if row is None:
        raise NotFound.of("validation_rules", rule_id)
    return rule_view(row)


async def list_rules(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    limit: int = 10,
    page: int = 1,
    order: str | None = None,
    created_after: Any = None,
    created_before: Any = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's rule sets and the total count."""
    order_by = _order_by(order, _LIST_ORDERS, "-created_at")
    where = "r.project_id = $1 AND ($2::timestamptz IS NULL OR r.created_at >= $2) AND " + (
        "($3::timestamptz IS NULL OR r.created_at <= $3)"
    )
    total = await conn.fetchval(
        f"SELECT count(*) FROM validation_rules r WHERE {where}", project_id, created_after, created_before
    )
    rows = await conn.fetch(
        f"{_SELECT} WHERE {where} ORDER BY {order_by} LIMIT $4 OFFSET $5",
        project_id,
        created_after,
        created_before,
        limit,
        (page - 1) * limit,
    )
    return [rule_view(r) for r in rows], int(total)


async def update(conn: asyncpg.Connection, project_id: str, rule_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Partial update: absent fields stay; ``bundle_rules: null`` removes the bundle rules."""
    fields = _checked(body, partial=True)
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
    status = await conn.execute(
        f"UPDATE validation_rules SET {', '.join([*sets, 'updated_at = now()'])} WHERE project_id = $1 AND id = $2",
        project_id,
        rule_id,
        *fields.values(),
    )
    if status == "UPDATE 0":
        raise NotFound.of("validation_rules", rule_id)
    return await get(conn, project_id, rule_id)


async def delete(conn: asyncpg.Connection, project_id: str, rule_id: str) -> None:
    """Deletes the rule set and, with it, every assignment of it."""
    status = await conn.execute("DELETE FROM validation_rules WHERE project_id = $1 AND id = $2", project_id, rule_id)
    if status == "DELETE 0":
        raise NotFound.of("validation_rules", rule_id)


# ----------------------------------------------------------------------------------------------- assignments


async def _resolve_related(conn: asyncpg.Connection, project_id: str, object_type: str, object_id: str) -> str:
    """The canonical id of the object a rule is assigned to; 404 when it does not exist.

    Campaigns are also found by name, vouchers by code. Earning rules, reward assignments and
    distributions are taken as given: their resources are not stored by voucherd yet.
    """
    if object_type == "campaign":
        found = await conn.fetchval(
            "SELECT id FROM campaigns WHERE project_id = $1 AND (id = $2 OR name = $2) AND deleted_at IS NULL "
            "ORDER BY id = $2 DESC LIMIT 1",
            project_id,
            object_id,
        )
    elif object_type == "voucher":
        found = await conn.fetchval(
            "SELECT id FROM vouchers WHERE project_id = $1 AND (id = $2 OR code = $2) AND deleted_at IS NULL "
            "ORDER BY id = $2 DESC LIMIT 1",
            project_id,
            object_id,
        )
    elif object_type == "promotion_tier":
        found = await conn.fetchval(
            "SELECT id FROM promotion_tiers WHERE project_id = $1 AND id = $2", project_id, object_id
        )
    else:
        return object_id
    if found is None:
        raise NotFound.of(object_type, object_id)
    return str(found)


async def assign(
    conn: asyncpg.Connection,
    project_id: str,
    rule_id: str,
    related_object_type: str,
    related_object_id: str,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Assign a rule set to an object and return the assignment (``asgm_``).

    404 for an unknown rule set or object; 409 ``duplicate_found`` when the same rule set is
    already assigned to the object, unless ``force`` replaces that assignment.
    """
    if related_object_type not in RELATED_OBJECT_TYPES:
        raise InvalidPayload(f"Property .related_object_type should be one of {', '.join(RELATED_OBJECT_TYPES)}")
    exists = await conn.fetchval(
        "SELECT 1 FROM validation_rules WHERE project_id = $1 AND id = $2", project_id, rule_id
    )
    if exists is None:
        raise NotFound.of("validation_rules", rule_id)
    object_id = await _resolve_related(conn, project_id, related_object_type, related_object_id)
    async with conn.transaction():
        if force:
            await conn.execute(
                "DELETE FROM validation_rules_assignments WHERE project_id = $1 AND rule_id = $2 "
                "AND related_object_id = $3",
                project_id,
                rule_id,
                object_id,
            )
        row = await conn.fetchrow(
            "INSERT INTO validation_rules_assignments (id, project_id, rule_id, related_object_type, "
            "related_object_id, created_at) VALUES ($1, $2, $3, $4, $5, clock_timestamp()) "
            "ON CONFLICT DO NOTHING RETURNING *",
            new_id("asgm"),
            project_id,
            rule_id,
            related_object_type,
            object_id,
        )
    if row is None:
        raise DuplicateFound(
            f"Validation rule {rule_id} is already assigned to {related_object_type} {object_id}; "
            "send force=true to replace the assignment."
        )
    return assignment_view(row)


async def create_assignment(
    conn: asyncpg.Connection, project_id: str, rule_id: str, body: dict[str, Any], *, force: bool = False
) -> dict[str, Any]:
    """``POST /v1/validation-rules/{id}/assignments`` with ``{related_object_type, related_object_id}``."""
    object_type = body.get("related_object_type")
    object_id = body.get("related_object_id")
    if not isinstance(object_type, str):
        raise InvalidPayload("Property .related_object_type is required")
    if not isinstance(object_id, str) or not object_id:
        raise InvalidPayload("Property .related_object_id is required and should be a string")
    return await assign(conn, project_id, rule_id, object_type, object_id, force=force)


async def list_assignments(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    rule_id: str | None = None,
    related_object_id: str | None = None,
    limit: int = 10,
    page: int = 1,
    order: str | None = None,
    require_rule: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """One page of assignments, filtered by rule set and/or object, and the total count.

    ``require_rule`` answers 404 when ``rule_id`` names no rule set of the project.
    """
    if require_rule and rule_id is not None:
        exists = await conn.fetchval(
            "SELECT 1 FROM validation_rules WHERE project_id = $1 AND id = $2", project_id, rule_id
        )
        if exists is None:
            raise NotFound.of("validation_rules", rule_id)
    order_by = _order_by(order, _ASSIGNMENT_ORDERS, "-created_at")
    where = (
        "a.project_id = $1 AND ($2::text IS NULL OR a.rule_id = $2) AND ($3::text IS NULL OR a.related_object_id = $3)"
    )
    total = await conn.fetchval(
        f"SELECT count(*) FROM validation_rules_assignments a WHERE {where}", project_id, rule_id, related_object_id
    )
    rows = await conn.fetch(
        f"SELECT a.* FROM validation_rules_assignments a WHERE {where} ORDER BY {order_by} LIMIT $4 OFFSET $5",
        project_id,
        rule_id,
        related_object_id,
        limit,
        (page - 1) * limit,
    )
    return [assignment_view(r) for r in rows], int(total)


async def delete_assignment(conn: asyncpg.Connection, project_id: str, rule_id: str, assignment_id: str) -> None:
    status = await conn.execute(
        "DELETE FROM validation_rules_assignments WHERE project_id = $1 AND rule_id = $2 AND id = $3",
        project_id,
        rule_id,
        assignment_id,
    )
    if status == "DELETE 0":
        raise NotFound.of("validation_rules_assignment", assignment_id)


# ----------------------------------------------------------------------------------------------- for other modules


async def assignments_for(
    conn: asyncpg.Connection, project_id: str, related_object_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Assignment views per object id (every id is a key; objects without rules map to ``[]``)."""
    out: dict[str, list[dict[str, Any]]] = {object_id: [] for object_id in related_object_ids}
    rows = await conn.fetch(
        "SELECT * FROM validation_rules_assignments WHERE project_id = $1 AND related_object_id = ANY($2::text[]) "
        "ORDER BY created_at, id",
        project_id,
        related_object_ids,
    )
    for row in rows:
        out[row["related_object_id"]].append(assignment_view(row))
    return out


async def rules_for(
    conn: asyncpg.Connection, project_id: str, related_object_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The rule-set definitions assigned to each object id, oldest assignment first.

    Each definition is the rule-set view (``id``, ``rules``, ``bundle_rules``, ``error``,
    ``applicable_to``, …), the input of ``engine.rules.compile_rules``.
    """
    out: dict[str, list[dict[str, Any]]] = {object_id: [] for object_id in related_object_ids}
    rows = await conn.fetch(
        "SELECT a.related_object_id, r.*, "
        "(SELECT count(*) FROM validation_rules_assignments c WHERE c.rule_id = r.id) AS assignments_count "
        "FROM validation_rules_assignments a JOIN validation_rules r ON r.id = a.rule_id "
        "WHERE a.project_id = $1 AND a.related_object_id = ANY($2::text[]) ORDER BY a.created_at, a.id",
        project_id,
        related_object_ids,
    )
    for row in rows:
        out[row["related_object_id"]].append(rule_view(row))
    return out


async def unassign_all(conn: asyncpg.Connection, project_id: str, related_object_ids: list[str]) -> int:
    """Remove every assignment of these objects (call it when they are deleted); returns how many."""
    status = await conn.execute(
        "DELETE FROM validation_rules_assignments WHERE project_id = $1 AND related_object_id = ANY($2::text[])",
        project_id,
        related_object_ids,
    )
    return int(status.split()[-1])
