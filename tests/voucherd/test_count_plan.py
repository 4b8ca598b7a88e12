"""The counts a redemption moves, with the caps its rule sets put on them (worked out once per definitions)."""

from __future__ import annotations

from datetime import UTC, datetime

from voucherd.checkout.redemption_counters import count_plan, field_name, fields, period_suffixes


def rule(name: str, op: str, value: int) -> dict[str, object]:
    return {"name": name, "conditions": {op: [value]}}


def test_each_field_is_capped_by_the_tightest_rule_counting_it_in_field_name_order() -> None:
    rules = {
        "1": rule("redemption.count.per_customer", "$less_than", 3),
        "2": rule("campaign.redemptions.count.daily", "$less_than_or_equal", 10),  # after it: at most 11
        "3": rule("redemption.count.daily", "$less_than", 5),  # the same field as rule 2
        "logic": "1 and 2 and 3",
    }
    plan = count_plan([{"rules": rules}])
    assert plan == (
        ("c", "", 3), ("c", "d", None), ("c", "m", None), ("c", "w", None),
        ("i", "", None), ("i", "d", 5), ("i", "m", None), ("i", "w", None),
    )  # fmt: skip
    # The plan names the same fields as the rules do, in the order they sort in.
    now = datetime(2026, 12, 2, tzinfo=UTC)
    suffixes = period_suffixes(now)
    planned = [field_name(prefix, "camp_1", suffixes[period], "cust_1") for prefix, period, _ in plan]
    assert planned == sorted(set(fields("camp_1", now, "cust_1").values()))


def test_caps_under_or_logic_are_left_to_the_engine() -> None:
    rules = {"1": rule("redemption.count.per_customer", "$less_than", 3), "2": rule("x", "$is", 1), "logic": "1 or 2"}
    assert all(cap is None for _, _, cap in count_plan([{"rules": rules}]))
