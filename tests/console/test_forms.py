"""The console's forms helper: posted values to the API's body, and a domain refusal to the field it names."""

from __future__ import annotations

import pytest

from server.console.forms import Field, FieldError, Form, field_for
from voucherd.platform.errors import InvalidVoucher

COUPON = Form(
    "coupon",
    (
        Field("name", "Name"),
        Field("voucher.discount.type", "Discount type", kind="choice", choices=(("PERCENT", "Percent"),)),
        Field("voucher.discount.percent_off", "Percent off", kind="number"),
        Field("voucher.discount.amount_off", "Amount off", kind="money"),
        Field("vouchers_count", "Codes", kind="int"),
        Field("active", "Active", kind="bool"),
        Field("promotion.tiers.0.name", "Tier name"),
        Field("promotion.tiers.0.action.discount", "Tier discount", kind="json"),
    ),
    fixed={"campaign_type": "DISCOUNT_COUPONS"},
)


def test_posted_values_become_the_api_body() -> None:
    body = COUPON.body(
        {
            "name": " Summer ",
            "voucher.discount.type": "PERCENT",
            "voucher.discount.percent_off": "12.5",
            "voucher.discount.amount_off": "10.50",
            "vouchers_count": "20",
            "promotion.tiers.0.name": "Gold",
            "promotion.tiers.0.action.discount": '{"type": "AMOUNT", "amount_off": 100}',
        }
    )
    assert body == {
        "campaign_type": "DISCOUNT_COUPONS",
        "name": "Summer",
        "voucher": {"discount": {"type": "PERCENT", "percent_off": 12.5, "amount_off": 1050}},
        "vouchers_count": 20,
        "active": False,
        "promotion": {"tiers": [{"name": "Gold", "action": {"discount": {"type": "AMOUNT", "amount_off": 100}}}]},
    }


def test_blank_fields_are_left_out_and_unreadable_numbers_go_as_typed() -> None:
    body = COUPON.body({"name": "", "vouchers_count": "twenty", "voucher.discount.amount_off": "1.005"})
    # the domain function refuses these with the API's own message
    assert body == {"campaign_type": "DISCOUNT_COUPONS", "vouchers_count": "twenty", "active": False,
                    "voucher": {"discount": {"amount_off": "1.005"}}}  # fmt: skip


def test_json_that_does_not_parse_is_an_error_beside_its_field() -> None:
    with pytest.raises(FieldError) as raised:
        COUPON.body({"promotion.tiers.0.action.discount": "{nope"})
    state = COUPON.state({})
    state.refuse(raised.value)
    assert list(state.errors) == ["promotion.tiers.0.action.discount"]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Property .voucher.discount.percent_off should be at most 100", "voucher.discount.percent_off"),
        ("Property .voucher.discount is required for a DISCOUNT_VOUCHER", "voucher.discount.type"),
        ("Property .voucher.discount.type.extra is odd", "voucher.discount.type"),
        ("Property .promotion.tiers[0].name is required", "promotion.tiers.0.name"),
        ("Property .name is required and should be a non-empty string", "name"),
        ("Property .vouchers_count should be an integer", "vouchers_count"),
        ("A PROMOTION campaign has tiers, not codes", None),
        ("Property .start_date should be before .expiration_date", None),
    ],
)
def test_a_refusal_goes_beside_the_field_it_names(message: str, field: str | None) -> None:
    assert field_for(COUPON, message) == field
    state = COUPON.state({"name": "typed"})
    state.refuse(InvalidVoucher(message))
    assert state.refused
    assert state.values["name"] == "typed"  # the form comes back as it was typed
    assert (state.errors, state.error) == (({field: message}, "") if field else ({}, message))


TIERS = Form(
    "promotion",
    (
        Field("name", "Name"),
        Field("promotion.tiers.0.name", "Tier name"),
        Field("promotion.tiers.0.action.discount.percent_off", "Percent off", kind="number"),
        Field("promotion.tiers.1.name", "Second tier name"),
        Field("promotion.tiers.1.action.discount", "Second tier discount", kind="json"),
    ),
    scopes=("promotion.tiers.0", "promotion.tiers.1"),
)


@pytest.mark.parametrize(
    ("values", "message", "field"),
    [
        ({"name": "", "promotion.tiers.0.name": ""}, "Property .name is required", "name"),
        ({"name": "Promo", "promotion.tiers.0.name": ""}, "Property .name is required", "promotion.tiers.0.name"),
        (
            {"name": "Promo", "promotion.tiers.0.name": "Gold", "promotion.tiers.1.name": ""},
            "Property .name is required",
            "promotion.tiers.1.name",
        ),
        (
            {"promotion.tiers.0.action.discount.percent_off": "10", "promotion.tiers.1.action.discount": ""},
            "Property .action.discount is required",
            "promotion.tiers.1.action.discount",
        ),
        # both tiers have a discount: which one is refused cannot be told, so the error goes at the top
        (
            {"promotion.tiers.0.action.discount.percent_off": "150", "promotion.tiers.1.action.discount": "{}"},
            "Property .action.discount.percent_off should be at most 100",
            None,
        ),
        ({"promotion.tiers.0.name": "Gold"}, "Property .banner should be a string", None),
    ],
)
def test_errors_about_a_nested_object_go_to_the_field_they_can_be_about(
    values: dict[str, str], message: str, field: str | None
) -> None:
    assert field_for(TIERS, message, values) == field
