"""Hypothesis properties over random carts and discounts."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.money import percent_of, split_largest_remainder
from tests.engine.helpers import stack

NOW = datetime(2024, 1, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=150, deadline=None)

items_st = st.lists(
    st.fixed_dictionaries(
        {
            "product_id": st.sampled_from(["a", "b", "c", "d"]),
            "price": st.integers(0, 100_000),
            "quantity": st.integers(1, 6),
        }
    ),
    min_size=1,
    max_size=8,
)
item_effects = [
    "APPLY_TO_ITEMS",
    "APPLY_TO_ITEMS_PROPORTIONALLY",
    "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY",
    "APPLY_TO_ITEMS_BY_QUANTITY",
    "APPLY_TO_ORDER",
]
discount_st = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("AMOUNT"), "amount_off": st.integers(0, 200_000), "effect": st.sampled_from(item_effects)}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("PERCENT"),
            "percent_off": st.integers(0, 100),
            "effect": st.sampled_from(["APPLY_TO_ITEMS", "APPLY_TO_ORDER"]),
            "amount_limit": st.integers(0, 50_000),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("FIXED"),
            "fixed_amount": st.integers(0, 100_000),
            "effect": st.sampled_from(["APPLY_TO_ITEMS", "APPLY_TO_ORDER"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("UNIT"),
            "unit_off": st.integers(0, 3),
            "unit_type": st.sampled_from(["a", "z"]),
            "effect": st.sampled_from(["ADD_MISSING_ITEMS", "ADD_NEW_ITEMS"]),
            "product": st.fixed_dictionaries({"price": st.integers(0, 5000)}),
        }
    ),
)
entry_st = st.fixed_dictionaries(
    {
        "object": st.just("product"),
        "id": st.sampled_from(["a", "b", "c"]),
        "effect": st.sampled_from(
            [
                "APPLY_TO_EVERY",
                "APPLY_TO_CHEAPEST",
                "APPLY_FROM_CHEAPEST",
                "APPLY_TO_MOST_EXPENSIVE",
                "APPLY_FROM_MOST_EXPENSIVE",
            ]
        ),
        "target": st.sampled_from(["ITEM", "UNIT"]),
        "quantity_limit": st.integers(1, 5),
        "amount_limit": st.integers(0, 30_000),
        "aggregated_amount_limit": st.integers(0, 60_000),
        "skip_initially": st.integers(0, 2),
        "repeat": st.integers(1, 3),
    }
)


def _redeemables(discounts: list[dict], entries: list[dict]) -> list[dict]:
    from engine import compile_rules

    out = []
    for i, d in enumerate(discounts):
        r = {"id": f"R{i}", "discount": d}
        if entries and d["type"] != "UNIT":
            r["rules"] = [compile_rules({"applicable_to": {"included": entries}})]
        out.append(r)
    return out


@SETTINGS
@given(
    items_st,
    st.lists(discount_st, min_size=1, max_size=5),
    st.lists(entry_st, max_size=2),
    st.sampled_from(["DISCOUNTED_AMOUNT", "INITIAL_AMOUNT"]),
)
def test_totals_and_limits(items: list, discounts: list, entries: list, mode: str) -> None:
    rules = {"discount_calculation_mode": mode, "applicable_redeemables_limit": 5}
    reds = _redeemables(discounts, entries)
    out = stack(reds, {"items": items}, None, NOW, rules)
    again = stack(_redeemables(discounts, entries), {"items": items}, None, NOW, rules)
    assert out == again  # deterministic
    order = out["order"]
    assert order["total_amount"] >= 0
    assert order["total_amount"] == max(0, order["amount"] - order["total_discount_amount"])
    assert order["items_discount_amount"] == sum(i.get("discount_amount", 0) for i in order["items"])
    for item in order["items"]:
        assert 0 <= item.get("discount_amount", 0) <= item["amount"]
        assert item["subtotal_amount"] >= 0
    for red, d in zip(out["redeemables"], discounts, strict=True):
        assert red["status"] == "APPLICABLE"
        snap = red["order"]
        applied = snap["total_applied_discount_amount"]
        assert applied >= 0
        if d["type"] == "AMOUNT" and d["effect"] in (
            "APPLY_TO_ORDER",
            "APPLY_TO_ITEMS_PROPORTIONALLY",
            "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY",
        ):
            assert applied <= d["amount_off"]
        if d["type"] == "PERCENT" and d["effect"] == "APPLY_TO_ORDER":
            assert applied <= d["amount_limit"]
        if entries and d["type"] != "UNIT" and d["effect"] != "APPLY_TO_ORDER":
            line_cap = max(x["amount_limit"] for x in entries)
            assert all(i.get("applied_discount_amount", 0) <= line_cap for i in snap["items"])
            assert snap["items_applied_discount_amount"] <= sum(x["aggregated_amount_limit"] for x in entries)


@SETTINGS
@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_split_sums_exactly(total: int, weights: list) -> None:
    parts = split_largest_remainder(total, weights)
    if sum(weights) == 0:
        assert parts == [0] * len(weights)
    else:
        assert sum(parts) == total
        assert all(p >= 0 for p in parts)


@SETTINGS
@given(st.integers(0, 10**9), st.integers(0, 100))
def test_percent_never_exceeds_base(base: int, pct: int) -> None:
    v = percent_of(base, pct)
    assert 0 <= v <= base
    assert abs(v * 100 - base * pct) <= 50  # at most half a cent off


@SETTINGS
@given(items_st, st.integers(1, 200_000))
def test_proportional_parts_sum(items: list, amount_off: int) -> None:
    d = {"type": "AMOUNT", "amount_off": amount_off, "effect": "APPLY_TO_ITEMS_PROPORTIONALLY"}
    out = stack([{"id": "P", "discount": d}], {"items": items}, None, NOW)
    assert out["order"]["items_discount_amount"] == min(amount_off, out["order"]["amount"])


@SETTINGS
@given(
    st.integers(1, 5),
    st.integers(1, 3),
    st.lists(st.sampled_from(["c1", "c2", "x", "j", None]), min_size=1, max_size=8),
)
def test_partial_respects_limits(limit: int, cat_limit: int, cats: list) -> None:
    rules = {
        "applicable_redeemables_limit": limit,
        "applicable_redeemables_per_category_limit": cat_limit,
        "exclusive_categories": ["x"],
        "joint_categories": ["j"],
    }
    reds = [
        {"id": f"R{i}", "discount": {"type": "AMOUNT", "amount_off": 1}, **({"categories": [{"id": c}]} if c else {})}
        for i, c in enumerate(cats)
    ]
    out = stack(reds, {"amount": 10_000}, None, NOW, rules)
    applied = [r for r in out["redeemables"] if r["status"] == "APPLICABLE"]
    assert len(applied) <= limit
    per_cat: dict = {}
    for r in applied:
        for c in r.get("categories", []):
            per_cat[c["id"]] = per_cat.get(c["id"], 0) + 1
    assert all(n <= cat_limit for n in per_cat.values())
    assert per_cat.get("x", 0) <= 1
    if per_cat.get("x"):
        assert all(r.get("categories") for r in applied)  # no common one next to an exclusive
    assert out["order"]["total_discount_amount"] == len(applied)


@SETTINGS
@given(
    items_st,
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 4)), min_size=1, max_size=3),
    st.integers(1, 4),
)
def test_bundle_counts(items: list, rows: list, limit: int) -> None:
    from engine import compile_rules

    bundle_rules: dict = {"limit": limit}
    for k, (pid, qty) in enumerate(rows, 1):
        bundle_rules[str(k)] = {
            "name": "product.id",
            "conditions": {"$is": [{"id": pid, "object": "product"}]},
            "rules": {"1": {"name": "product.quantity", "conditions": {"$more_than_or_equal": [qty]}}},
        }
    red = {
        "id": "B",
        "discount": {"type": "AMOUNT", "amount_off": 1},
        "rules": [compile_rules({"bundle_rules": bundle_rules})],
    }
    out = stack([red], {"items": items}, None, NOW)
    bundle = out["redeemables"][0]["result"]["bundle"]
    n = bundle["quantity"]
    assert 0 <= n <= limit
    # each cart unit is claimed by one row at most, and never more units than the line has
    used: dict = {}
    for ident in bundle["identified"]:
        used[ident["item_index"]] = used.get(ident["item_index"], 0) + ident["item_quantity"]
    assert all(used[i] <= items[i]["quantity"] for i in used)
    assert ("missing" in bundle) == (n == 0)
    assert (out["redeemables"][0]["status"] == "APPLICABLE") == (n > 0)
