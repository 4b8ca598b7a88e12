from datetime import UTC, datetime

import pytest

from engine import EngineInputError, compile_formula, compile_rules
from engine.rules import OPERATORS, RULE_NAMES

NOW = datetime(2024, 1, 3, 19, 0, tzinfo=UTC)  # a Wednesday


def ev(rules: dict, **ctx: object) -> dict:
    ctx.setdefault("now", NOW)
    return compile_rules({"rules": rules}).evaluate(ctx)


def test_logic_and_or_parentheses() -> None:
    rules = {
        "1": {"name": "order.amount", "conditions": {"$more_than": [1000]}},
        "2": {"name": "customer.metadata", "property": "tier", "conditions": {"$is": ["gold"]}},
        "3": {"name": "order.metadata", "property": "channel", "conditions": {"$in": ["web", "app"]}},
        "logic": "(1 and 2) or 3",
    }
    assert ev(rules, order={"amount": 2000}, customer={"metadata": {"tier": "gold"}})["ok"]
    assert ev(rules, order={"amount": 10, "metadata": {"channel": "app"}}, customer={})["ok"]
    res = ev(rules, order={"amount": 2000}, customer={"metadata": {"tier": "x"}})
    assert res == {"ok": False, "key": "customer_rules_violated", "message": None}


def test_empty_logic_means_all() -> None:
    rules = {
        "1": {"name": "order.items.count", "conditions": {"$more_than_equal": [2]}},
        "2": {"name": "order.items.price_each", "conditions": {"$less_than_or_equal": [500]}},
    }
    items = [{"product_id": "a", "price": 500}, {"product_id": "b", "price": 300}]
    assert ev(rules, order={"items": items})["ok"]
    assert not ev(rules, order={"items": [*items, {"product_id": "c", "price": 900}]})["ok"]


def test_items_structure_rules() -> None:
    prod = {"id": "prod_a", "object": "product"}
    items = [{"product_id": "prod_a", "price": 100, "quantity": 3}, {"product_id": "prod_b", "price": 900}]
    any_rule = {
        "1": {
            "name": "order.items.any",
            "conditions": {"$is": [prod]},
            "rules": {"1": {"name": "order.items.quantity", "conditions": {"$more_than": [2]}}},
        }
    }
    assert ev(any_rule, order={"items": items})["ok"]
    assert ev({"1": {"name": "order.items.cheapest", "conditions": {"$is": [prod]}}}, order={"items": items})["ok"]
    assert not ev({"1": {"name": "order.items.every", "conditions": {"$is": [prod]}}}, order={"items": items})["ok"]
    assert not ev({"1": {"name": "order.items.none", "conditions": {"$is": [prod]}}}, order={"items": items})["ok"]
    coll = {"1": {"name": "product.id", "conditions": {"$is": [{"id": "pc_1", "object": "products_collection"}]}}}
    assert ev(coll, order={"items": items}, collections={"pc_1": {"prod_b"}})["ok"]
    assert not ev(coll, order={"items": items}, collections={"pc_1": {"prod_z"}})["ok"]


def test_time_operators() -> None:
    assert ev({"1": {"name": "redemption.metadata", "property": "x", "conditions": {"$is_unknown": [True]}}})["ok"]
    daily = {"1": {"name": "customer.metadata", "property": "d", "conditions": {"$after": ["2023-12-01T00:00:00Z"]}}}
    assert ev(daily, customer={"metadata": {"d": "2023-12-24T00:00:00Z"}})["ok"]
    ago = {"1": {"name": "customer.metadata", "property": "d", "conditions": {"$more_than_ago": [5]}}}
    assert ev(ago, customer={"metadata": {"d": "2023-12-24T00:00:00Z"}})["ok"]


def test_required_ids_index() -> None:
    rs = compile_rules(
        {
            "rules": {
                "1": {"name": "product.id", "conditions": {"$is": [{"id": "p1"}, {"id": "p2"}]}},
                "2": {"name": "order.amount", "conditions": {"$more_than": [1]}},
            }
        }
    )
    assert rs.required_ids == frozenset({"p1", "p2"})
    either = compile_rules(
        {
            "rules": {
                "1": {"name": "product.id", "conditions": {"$is": [{"id": "p1"}]}},
                "2": {"name": "order.amount", "conditions": {"$more_than": [1]}},
                "logic": "1 or 2",
            }
        }
    )
    assert either.required_ids is None


@pytest.mark.parametrize(
    "bad",
    [
        {"1": {"name": "nope"}},
        {"1": {"name": "order.amount", "conditions": {"$weird": [1]}}},
        {"1": {"name": "order.metadata"}},
        {"1": {"name": "order.amount"}, "logic": "1 and 2"},
        {"1": {"name": "order.amount"}, "logic": "(1"},
    ],
)
def test_bad_rule_sets(bad: dict) -> None:
    with pytest.raises(EngineInputError):
        compile_rules({"rules": bad})


def test_aliases_known() -> None:
    assert {"$greater_than_or_equal", "$more_than_equal", "$less_than_equal"} <= OPERATORS
    assert "redemption.count.per_customer.monthly" in RULE_NAMES


def test_formula_functions() -> None:
    env = {"ORDER_AMOUNT": 400.0, "ORDER_METADATA": {"n": 4}, "NOW": NOW}
    assert compile_formula("IF(ORDER_AMOUNT > 300;20;10)").evaluate(env) == 20
    assert compile_formula('POW(ORDER_METADATA("n");2) + MAX(1;2) x 3').evaluate(env) == 22
    assert compile_formula('DEFAULT_TO(ORDER_METADATA("missing") / 2;5)').evaluate(env) == 5
    assert compile_formula("ROUND(75.55;1)").evaluate(env) == pytest.approx(75.6)
    assert compile_formula("FLOOR(75.55;-1)").evaluate(env) == 70
    assert compile_formula("CEIL(74.44)").evaluate(env) == 75
    assert compile_formula('YEAR(DATE("2023-08-17"))').evaluate(env) == 2023
    assert compile_formula("10 % 4 ÷ 2").evaluate(env) == 1
    assert compile_formula("1 / 0").evaluate(env) is None
    for bad in ("", "1 +", "FOO(1)", "(1", "1 $ 2", '"open'):
        with pytest.raises(EngineInputError):
            compile_formula(bad)
