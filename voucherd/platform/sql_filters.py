"""Voucherify filter conditions as SQL: ``{"junction": "and", "<field>": {"conditions": {"$op": value}}}``.

A ``Catalog`` names what rows a query reads and what each field is in SQL (its kind decides which
operators apply: text, number, date, bool, or ``meta`` for a metadata key, compared as text or as a
number by the operand). Exports compile their ``parameters.filters`` with it, and list endpoints their
``filters[<field>][conditions][$op]=`` query parameters (``filters_from_query``). Values always travel
as arguments after ``$1`` (the project id); 400 ``invalid_export_params`` for what cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voucherd.platform.errors import InvalidExportParams


@dataclass(frozen=True)
class Field:
    """``sql`` is what the CSV cell shows; ``raw`` (default ``sql``) is what filters compare."""

    sql: str
    kind: str = "text"  # text | number | date | bool
    raw: str | None = None
    joins: tuple[str, ...] = ()

    @property
    def compared(self) -> str:
        return self.raw or self.sql


@dataclass(frozen=True)
class Catalog:
    source: str  # FROM … (the main table aliased)
    scope: str  # WHERE for one project, $1
    key: str  # the unique tie-breaker of every order
    fields: dict[str, Field]
    defaults: tuple[str, ...]
    orders: dict[str, str]  # order name (no dash) -> SQL
    joins: dict[str, str] = field(default_factory=dict)  # join name -> JOIN clause
    prefixes: dict[str, str] = field(default_factory=dict)  # filter prefix ("metadata.") -> jsonb column
    filter_only: dict[str, Field] = field(default_factory=dict)


_PRESENCE = ("$has_value", "$is_unknown")
STRING_OPS = ("$is", "$is_not", "$in", "$not_in", *_PRESENCE, "$starts_with", "$ends_with", "$contains", "$not_contain")
_RANGE = ("$more_than", "$less_than")
NUMBER_OPS = ("$is", "$is_not", "$in", "$not_in", *_PRESENCE, *_RANGE, "$more_than_equal", "$less_than_equal")
DATE_OPS = ("$after", "$before", "$is", "$is_not", *_PRESENCE, *_RANGE, "$is_days_ago", "$is_days_in_future")
OPS: dict[str, tuple[str, ...]] = {
    "text": STRING_OPS,
    "bool": ("$is", "$is_not", *_PRESENCE),
    "number": NUMBER_OPS,
    "date": DATE_OPS,
    "meta": tuple(dict.fromkeys(STRING_OPS + NUMBER_OPS)),
}


_QUERY_FILTER = re.compile(r"^filters\[(?P<field>[^\]]+)\](?:\[conditions\]\[(?P<op>\$\w+)\](?:\[(?P<index>\d*)\])?)?$")


def filters_from_query(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``filters[name][conditions][$in][0]=a`` query parameters as the JSON filters exports take."""
    filters: dict[str, Any] = {}
    for key, value in items:
        found = _QUERY_FILTER.match(key)
        if found is None:
            continue
        name, op = found["field"], found["op"]
        if op is None:
            if name == "junction":
                filters["junction"] = value
            continue
        conditions = filters.setdefault(name, {"conditions": {}})["conditions"]
        if op in ("$in", "$not_in"):
            conditions.setdefault(op, []).extend(v for v in value.split(",") if v)
        else:
            conditions[op] = value
    return filters


def where_sql(catalog: Catalog, filters: dict[str, Any], args: list[Any]) -> str:
    """The filters as one SQL condition over ``catalog`` (``TRUE`` for none); arguments go on ``args``
    after ``$1``. 400 ``invalid_export_params`` for what cannot run (list endpoints re-key it)."""
    return compile_filters(catalog, filters, args) or "TRUE"


def compile_filters(catalog: Catalog, filters: Any, args: list[Any], joins: list[str] | None = None) -> str:
    if not isinstance(filters, dict):
        raise InvalidExportParams("Property .parameters.filters should be an object")
    junction = filters.get("junction") or "and"
    if not isinstance(junction, str) or junction.lower() not in ("and", "or"):
        raise InvalidExportParams("Property .parameters.filters.junction should be and or or")
    parts: list[str] = []
    for name, spec in filters.items():
        if name == "junction":
            continue
        target = _filter_target(catalog, name, args)
        if target.joins and joins is not None:
            joins.extend(j for j in target.joins if j not in joins)
        conditions = spec.get("conditions") if isinstance(spec, dict) else None
        if not isinstance(conditions, dict) or not conditions:
            raise InvalidExportParams(f"Property .parameters.filters.{name} should be an object with conditions")
        for op, operand in conditions.items():
            if operand is None:
                continue  # a null the contract allows: absent
            if op not in OPS[target.kind]:
                raise InvalidExportParams(
                    f"Property .parameters.filters.{name}.conditions: {op} is not one of {', '.join(OPS[target.kind])}"
                )
            parts.append(_condition(target, op, operand, args, f"{name}.conditions.{op}"))
    return f" {junction.upper()} ".join(parts)


def _filter_target(catalog: Catalog, name: str, args: list[Any]) -> Field:
    if not isinstance(name, str):
        raise InvalidExportParams("Property .parameters.filters keys should be strings")
    found = catalog.filter_only.get(name) or catalog.fields.get(name)
    if found is not None:
        if found.sql.startswith("NULL::"):
            raise InvalidExportParams(f"Property .parameters.filters.{name} cannot be filtered on")
        return found
    for prefix, column in catalog.prefixes.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            args.append(name[len(prefix) :])
            # The key is the next argument; ``meta`` compares as text, or as a number for numeric operands.
            return Field(f"({column})->${len(args) + 1}::text", "meta")
    allowed = [*catalog.filter_only, *catalog.fields, *(f"{p}<key>" for p in catalog.prefixes)]
    raise InvalidExportParams(f"Property .parameters.filters.{name} is unknown; use {', '.join(allowed)}")


def _one(operand: Any, where: str) -> Any:
    if isinstance(operand, list):
        if len(operand) != 1:
            raise InvalidExportParams(f"Property .parameters.filters.{where} should hold one value")
        return operand[0]
    return operand


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidExportParams(f"Property .parameters.filters.{where} should be a string")


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise InvalidExportParams(f"Property .parameters.filters.{where} should be a number")


def _when(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    raise InvalidExportParams(f"Property .parameters.filters.{where} should be an ISO 8601 date-time")


def _condition(target: Field, op: str, operand: Any, args: list[Any], where: str) -> str:
    def arg(value: Any, cast: str) -> str:
        args.append(value)
        return f"${len(args) + 1}::{cast}"

    kind, column = target.kind, target.compared
    if op == "$has_value":
        return f"{column} IS NOT NULL" if kind != "meta" else f"({column}) IS NOT NULL"
    if op == "$is_unknown":
        return f"{column} IS NULL" if kind != "meta" else f"({column}) IS NULL"
    if kind == "meta":
        numeric = op in ("$more_than", "$less_than", "$more_than_equal", "$less_than_equal") or (
            op in ("$is", "$is_not") and isinstance(_one(operand, where), int | float)
        )
        if numeric:
            kind = "number"
            column = f"(CASE WHEN jsonb_typeof({column}) = 'number' THEN ({column} #>> '{{}}')::numeric END)"
        else:
            kind, column = "text", f"({column} #>> '{{}}')"
    if op in ("$in", "$not_in"):
        values = operand if isinstance(operand, list) else [operand]
        if kind == "number":
            expression = f"{column} = ANY({arg([_number(v, where) for v in values], 'numeric[]')})"
        else:
            expression = f"{column} = ANY({arg([_text(v, where) for v in values], 'text[]')})"
        return expression if op == "$in" else f"({column} IS NULL OR NOT {expression})"
    value = _one(operand, where)
    if kind == "date":
        return _date_condition(column, op, value, arg, where)
    if kind == "number":
        number = arg(_number(value, where), "numeric")
        symbol = {"$is": "=", "$is_not": "<>", "$more_than": ">", "$less_than": "<"}.get(op)
        symbol = symbol or {"$more_than_equal": ">=", "$less_than_equal": "<="}[op]
        expression = f"{column} {symbol} {number}"
        return f"({column} IS NULL OR {expression})" if op == "$is_not" else expression
    text = arg(_text(value, where), "text")
    return {
        "$is": f"{column} = {text}",
        "$is_not": f"({column} IS NULL OR {column} <> {text})",
        "$starts_with": f"starts_with({column}, {text})",
        "$ends_with": f"right({column}, length({text})) = {text}",
        "$contains": f"strpos({column}, {text}) > 0",
        "$not_contain": f"({column} IS NULL OR strpos({column}, {text}) = 0)",
    }[op]


def _date_condition(column: str, op: str, value: Any, arg: Any, where: str) -> str:
    if op in ("$more_than", "$less_than", "$is_days_ago", "$is_days_in_future"):
        days = _number(value, where)
        if op == "$more_than":  # more than N days ago
            return f"{column} < now() - make_interval(days => {arg(int(days), 'integer')})"
        if op == "$less_than":
            return f"{column} >= now() - make_interval(days => {arg(int(days), 'integer')})"
        sign = "-" if op == "$is_days_ago" else "+"
        return (
            f"({column} AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date {sign} {arg(int(days), 'integer')}"
        )
    when = arg(_when(value, where), "timestamptz")
    return {
        "$after": f"{column} > {when}",
        "$before": f"{column} < {when}",
        "$is": f"{column} = {when}",
        "$is_not": f"({column} IS NULL OR {column} <> {when})",
    }[op]
