"""Request-level checks of stackable validations and redemptions: each bad shape is a 400 with its key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucherd.checkout import redeem_request
from voucherd.platform.errors import (
    DuplicatedRedeemables,
    InvalidPayload,
    InvalidRedeemables,
    MissingReward,
    VoucherdError,
)


def body(**extra: Any) -> dict[str, Any]:
    return {"redeemables": [{"object": "voucher", "id": "CODE1"}], **extra}


def test_a_full_request_is_parsed() -> None:
    parsed = redeem_request.parse(
        {
            "redeemables": [
                {"object": "voucher", "id": "GIFT", "gift": {"credits": 500}},
                {"object": "voucher", "id": "CARD", "reward": {"id": "rew_1", "points": 40}},
                {"object": "promotion_tier", "id": "promo_1"},
            ],
            "order": {"amount": 1000, "items": [{"product_id": "prod_1", "quantity": 2, "price": 500}]},
            "customer": {"source_id": "alice"},
            "session": {"type": "LOCK", "key": "ssn_1", "ttl": 30, "ttl_unit": "MINUTES"},
            "tracking_id": "t1",
            "metadata": {"channel": "web"},
            "options": {"expand": ["order", "redeemable"]},
        }
    )
    assert [r.id for r in parsed.redeemables] == ["GIFT", "CARD", "promo_1"]
    assert parsed.redeemables[0].credits == 500
    assert (parsed.redeemables[1].reward_id, parsed.redeemables[1].reward_points) == ("rew_1", 40)
    assert parsed.session is not None and parsed.session.ttl_ms == 30 * 60_000
    assert parsed.expand == {"order", "redeemable"} and parsed.customer == {"source_id": "alice"}


def test_session_defaults_to_seven_days() -> None:
    session = redeem_request.parse(body(session={"type": "LOCK"})).session
    assert session is not None and session.key is None and session.ttl_ms == 7 * 86_400_000


@pytest.mark.parametrize(
    ("request_body", "error", "fragment"),
    [
        ({}, InvalidPayload, ".redeemables"),
        ({"redeemables": []}, InvalidPayload, ".redeemables"),
        ({"redeemables": [{"object": "voucher"}]}, InvalidPayload, "required property 'id'"),
        ({"redeemables": [{"object": "coupon", "id": "x"}]}, InvalidPayload, ".redeemables[0].object"),
        ({"redeemables": [{"object": "voucher", "id": 5}]}, InvalidPayload, ".redeemables[0].id"),
        ({"redeemables": [{"object": "voucher", "id": "A"}] * 2}, DuplicatedRedeemables, "A"),
        (
            {"redeemables": [{"object": "promotion_stack", "id": "stack_1"}, {"object": "voucher", "id": "A"}]},
            InvalidRedeemables,
            "promotion_stack",
        ),
        ({"redeemables": [{"object": "voucher", "id": f"C{i}"} for i in range(31)]}, InvalidPayload, "at most 30"),
        (body(order={"amount": 10.5}), InvalidPayload, ".order.amount"),
        (body(order={"amount": -1}), InvalidPayload, ".order.amount"),
        (body(order={"items": [{"price": 1.99}]}), InvalidPayload, ".order.items[0].price"),
        (body(order={"items": [{"quantity": "2"}]}), InvalidPayload, ".order.items[0].quantity"),
        (body(order={"items": [{}] * 501}), InvalidPayload, "at most 500"),
        (body(order=[]), InvalidPayload, ".order"),
        (body(session={"type": "LOCK", "ttl": 0}), InvalidPayload, ".session.ttl"),
        (body(session={"type": "LOCK", "ttl": 1, "ttl_unit": "WEEKS"}), InvalidPayload, ".session.ttl_unit"),
        (body(session={"type": "OPEN"}), InvalidPayload, ".session.type"),
        (body(options={"expand": ["everything"]}), InvalidPayload, ".options.expand"),
        (body(customer="alice"), InvalidPayload, ".customer"),
        ({"redeemables": [{"object": "voucher", "id": "G", "gift": {"credits": 1.5}}]}, InvalidPayload, "credits"),
        ({"redeemables": [{"object": "voucher", "id": "L", "reward": {"points": 3}}]}, MissingReward, "reward"),
    ],
)
def test_bad_requests_are_refused(request_body: dict[str, Any], error: type[VoucherdError], fragment: str) -> None:
    with pytest.raises(error) as raised:
        redeem_request.parse(request_body)
    assert raised.value.code == 400
    assert fragment in str(raised.value)


def test_the_project_limit_applies() -> None:
    many = {"redeemables": [{"object": "voucher", "id": f"C{i}"} for i in range(4)]}
    with pytest.raises(InvalidPayload, match="at most 3"):
        redeem_request.parse(many, redeemables_limit=3)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=12))  # fmt: skip
def test_any_json_either_parses_or_is_a_400(value: Any) -> None:
    for candidate in (value, {"redeemables": value}, {"redeemables": [value]}, body(order=value), body(session=value)):
        if not isinstance(candidate, dict):
            continue
        try:
            redeem_request.parse(candidate)
        except VoucherdError as exc:
            assert exc.code == 400
