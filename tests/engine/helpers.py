"""Shared test helpers: build stacking inputs from JSON case data."""

from datetime import UTC, datetime
from typing import Any

import orjson

from engine import compile_rules, evaluate_stack
from engine.stacking import expand_promotion_stack

DEFAULT_NOW = "2024-01-01T12:00:00Z"


def parse_now(value: str | None) -> datetime:
    return datetime.fromisoformat((value or DEFAULT_NOW).replace("Z", "+00:00")).astimezone(UTC)


def prepare(case: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Compile each redeemable's rule sets and turn collection lists into sets."""
    context = dict(case.get("context") or {})
    if "collections" in context:
        context["collections"] = {k: set(v) for k, v in context["collections"].items()}
    redeemables = [_compiled(raw) for raw in case.get("redeemables", [])]
    stack = case.get("promotion_stack")
    if stack is not None:
        tiers = {tid: _compiled(t) for tid, t in stack["tiers"].items()}
        redeemables = expand_promotion_stack(stack["tier_ids"], tiers, stack.get("id"))
    return redeemables, context


def _compiled(raw: dict[str, Any]) -> dict[str, Any]:
    r = dict(raw)
    if "rules" in r:
        r["rules"] = [compile_rules(rs) for rs in r["rules"]]
    return r


def plain(out: Any) -> Any:
    """Engine output as plain data: calculated orders arrive as pre-serialised fragments."""
    return orjson.loads(orjson.dumps(out))


def stack(*args: Any) -> dict[str, Any]:
    """``evaluate_stack`` as plain data."""
    out: dict[str, Any] = plain(evaluate_stack(*args))
    return out


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    redeemables, context = prepare(case)
    return stack(
        redeemables,
        case["order"],
        case.get("customer"),
        parse_now(case.get("now")),
        case.get("stacking_rules"),
        context,
    )


def assert_subset(expected: Any, actual: Any, path: str = "$") -> None:
    """Every key/element in ``expected`` must equal the one in ``actual`` (lists must match in length)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected object, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing in {sorted(actual)}"
            assert_subset(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected list, got {actual!r}"
        assert len(expected) == len(actual), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{path}[{i}]")
    else:
        assert type(expected) is type(actual) or (isinstance(expected, int) and isinstance(actual, int)), (
            f"{path}: type {type(actual).__name__} != {type(expected).__name__} ({actual!r})"
        )
        assert expected == actual, f"{path}: {actual!r} != {expected!r}"
