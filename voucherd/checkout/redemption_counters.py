"""Redemption counts that validation rules limit: per customer and per incentive, in total and
per calendar day, week and month.

All of a project's counts live in one Redis HASH (``keys.counters``), so they are read in
the checkout's one round trip and moved by its one commit script. Fields::

    c:<customer id>:<scope>[:d:YYYY-MM-DD | :w:YYYY-Www | :m:YYYY-MM]   one customer's redemptions
    i:<scope>[:d:… | :w:… | :m:…]                                       everyone's redemptions

where the scope is the campaign of a voucher (the code itself when it has none) or the
promotion tier. Periods are UTC calendar units (ISO weeks).

When a rule caps a count (``$less_than`` / ``$less_than_or_equal``) inside a rule set whose
logic only joins with "and", the commit re-checks that cap atomically, so a burst cannot
get past it. Caps under "or" logic are checked by the engine at validation only.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

CUSTOMER = "{customer}"  # replaced by the resolved customer id inside the read script

# rule name -> (prefix, period) where prefix "c" counts the customer's, "i" everyone's
RULE_FIELDS: dict[str, tuple[str, str]] = {
    "redemption.count.per_customer": ("c", ""),
    "redemption.count.per_customer.daily": ("c", "d"),
    "redemption.count.per_customer.weekly": ("c", "w"),
    "redemption.count.per_customer.monthly": ("c", "m"),
    "redemption.count.daily": ("i", "d"),
    "redemption.count.weekly": ("i", "w"),
    "redemption.count.monthly": ("i", "m"),
    "campaign.redemptions.count": ("i", ""),
    "campaign.redemptions.count.daily": ("i", "d"),
    "campaign.redemptions.count.weekly": ("i", "w"),
    "campaign.redemptions.count.monthly": ("i", "m"),
}
_ONLY_AND = re.compile(r"^[\s\d()]*((and|AND)[\s\d()]*)*$")


def period_suffix(now: datetime, period: str) -> str:
    return period_suffixes(now)[period]


_SUFFIXES_OF_DAY: dict[date, dict[str, str]] = {}


def period_suffixes(now: datetime) -> dict[str, str]:
    """Counter field suffixes by period ("", "d", "w", "m") for ``now``'s day (UTC).

    Kept for the day: formatting dates took a few per cent of a validation's CPU.
    """
    day = now.date()
    known = _SUFFIXES_OF_DAY.get(day)
    if known is None:
        year, week, _ = now.isocalendar()
        known = {"": "", "d": f":d:{now:%Y-%m-%d}", "w": f":w:{year}-W{week:02d}", "m": f":m:{now:%Y-%m}"}
        _SUFFIXES_OF_DAY.clear()
        _SUFFIXES_OF_DAY[day] = known
    return known


def fields(scope: str, now: datetime, customer_id: str | None) -> dict[str, str]:
    """Rule name -> counter field, for one redeemable. ``customer_id`` None: the read script's placeholder."""
    who = customer_id if customer_id is not None else CUSTOMER
    suffixes = period_suffixes(now)
    return {rule: field_name(prefix, scope, suffixes[period], who) for rule, (prefix, period) in RULE_FIELDS.items()}


def field_name(prefix: str, scope: str, suffix: str, customer_id: str) -> str:
    """One count's field: the customer's ("c") or everyone's ("i") redemptions of ``scope`` in a period."""
    return f"c:{customer_id}:{scope}{suffix}" if prefix == "c" else f"i:{scope}{suffix}"


def distinct_fields(scope: str, now: datetime, customer_id: str | None) -> list[str]:
    return sorted(set(fields(scope, now, customer_id).values()))


def _caps_of(rules: dict[str, Any], caps: dict[str, int]) -> None:
    logic = str(rules.get("logic") or "")
    if logic and not _ONLY_AND.match(logic):
        return
    for key, rule in rules.items():
        if key == "logic" or not isinstance(rule, dict):
            continue
        name = rule.get("name")
        conditions = rule.get("conditions") or {}
        if name in RULE_FIELDS:
            for op, values in conditions.items():
                value = values[0] if isinstance(values, list) and values else values
                if isinstance(value, bool) or not isinstance(value, int):
                    continue
                # The engine compares the count before this redemption; the commit bounds the count after it.
                if op == "$less_than":
                    cap = value
                elif op in ("$less_than_or_equal", "$less_than_equal"):
                    cap = value + 1
                else:
                    continue
                caps[name] = min(cap, caps.get(name, cap))
        nested = rule.get("rules")
        if isinstance(nested, dict) and nested:
            _caps_of(nested, caps)


# The order the counter fields of one scope sort in: the customer's ("c:") before everyone's ("i:"), and
# within each the total before the day, month and week (":d:" < ":m:" < ":w:").
_PERIOD_ORDER = {"": 0, "d": 1, "m": 2, "w": 3}
CountPlan = tuple[tuple[str, str, int | None], ...]


def count_plan(rule_sets: list[dict[str, Any]]) -> CountPlan:
    """Each count a redemption moves, as (prefix, period, cap or None), in the order of their field names.

    Depends only on the rule sets, so it is worked out once per definitions and kept (the checkout's
    ``_count_ops``); the fields themselves name the scope, the customer and the day.
    """
    rule_caps = caps(rule_sets)
    found: dict[tuple[str, str], int | None] = {}
    for rule, where in RULE_FIELDS.items():
        cap = rule_caps.get(rule)
        known = found.get(where)
        found[where] = cap if known is None else known if cap is None else min(known, cap)
    order = sorted(found, key=lambda where: (where[0], _PERIOD_ORDER[where[1]]))
    return tuple((prefix, period, found[(prefix, period)]) for prefix, period in order)


def caps(rule_sets: list[dict[str, Any]]) -> dict[str, int]:
    """Rule name -> the highest count allowed after a redemption, from rule sets joined by "and"."""
    found: dict[str, int] = {}
    for rule_set in rule_sets:
        _caps_of(rule_set.get("rules") or {}, found)
    return found
