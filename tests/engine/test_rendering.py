"""Calculated orders are written as JSON by the engine: what it writes must parse back exactly."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import EngineInputError, build_order, evaluate_stack
from tests.engine.helpers import stack

NOW = datetime(2024, 1, 1, tzinfo=UTC)

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# Text with what JSON must escape: quotes, backslashes, control characters, non-ASCII.
tricky_text = st.text(alphabet=st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "é", "€", "😀", "a", "/"]), min_size=1)


@settings(max_examples=200, deadline=None)
@given(
    product_id=tricky_text | st.text(min_size=1),
    sku_id=st.none() | tricky_text,
    metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    product=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    order_id=st.none() | tricky_text,
    order_metadata=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_echoed_request_values_parse_back_unchanged(
    product_id: str,
    sku_id: str | None,
    metadata: dict[str, Any],
    product: dict[str, Any] | None,
    order_id: str | None,
    order_metadata: dict[str, Any] | None,
) -> None:
    item: dict[str, Any] = {"product_id": product_id, "price": 1000, "quantity": 2, "metadata": metadata}
    if sku_id is not None:
        item["sku_id"] = sku_id
    if product is not None:
        item["product"] = product
    order: dict[str, Any] = {"items": [item]}
    if order_id is not None:
        order["id"] = order_id
    if order_metadata is not None:
        order["metadata"] = order_metadata
    out = stack(
        [{"id": "P", "discount": {"type": "PERCENT", "percent_off": 10, "effect": "APPLY_TO_ITEMS"}}], order, None, NOW
    )
    for calculated in (out["order"], out["redeemables"][0]["order"]):
        line = calculated["items"][0]
        assert line["product_id"] == product_id
        assert line.get("sku_id") == sku_id
        assert line["metadata"] == metadata
        assert line.get("product") == product
        assert calculated.get("id") == order_id
        assert calculated.get("metadata") == order_metadata
        assert line["amount"] == 2000 and line["subtotal_amount"] == 1800


def test_the_three_renderings_agree() -> None:
    """``to_json``, ``to_dict`` and ``view`` (items as a fragment) describe the same order."""
    order = build_order({"id": "ord_1", "items": [{"product_id": "a", "price": 500, "quantity": 3}, {"amount": 70}]})
    order.discount_amount = 120
    for step in (False, True):
        expected = orjson.loads(order.to_json(step, True))
        assert order.to_dict(step, True) == expected
        assert orjson.loads(orjson.dumps(order.view(step))) == expected
        assert orjson.loads(order.to_json(step, False)) == {k: v for k, v in expected.items() if k != "items"}
    assert expected["items"][1] == {
        "object": "order_item",
        "quantity": 1,
        "initial_quantity": 1,
        "amount": 70,
        "initial_amount": 70,
        "subtotal_amount": 70,
    }
    assert expected["total_amount"] == 1500 + 70 - 120


def test_a_value_json_cannot_hold_is_an_input_error() -> None:
    with pytest.raises(EngineInputError):
        evaluate_stack([], {"items": [{"price": 1, "metadata": {"when": object()}}]}, None, NOW)


@settings(max_examples=300, deadline=None)
@given(price=st.integers(0, 10**12), quantity=st.integers(0, 10**6), prior=st.integers(0, 10**15))
def test_numbers_are_written_exactly(price: int, quantity: int, prior: int) -> None:
    order = build_order({"items": [{"price": price, "quantity": quantity, "discount_amount": prior}]})
    line = orjson.loads(order.to_json(False, True))["items"][0]
    assert (line["price"], line["quantity"], line["amount"]) == (price, quantity, price * quantity)
    assert line.get("discount_amount", 0) == min(prior, price * quantity)
    assert line["subtotal_amount"] == price * quantity - min(prior, price * quantity)
