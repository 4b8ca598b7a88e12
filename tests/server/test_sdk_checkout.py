"""The quickstart, through the official Python SDK: create a code, validate, redeem, roll back."""

from __future__ import annotations

import pytest
import voucherify

from tests.conftest import LiveServer, ProjectKeys, drain_worker

pytestmark = pytest.mark.slow


def test_the_quickstart_redeems_with_the_official_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    config = voucherify.Configuration(
        host=live_server.url, api_key={"X-App-Id": project.app_id, "X-App-Token": project.app_token}
    )
    with voucherify.ApiClient(config) as client:
        voucherify.VouchersApi(client).create_voucher(
            "WELCOME10",
            voucherify.VouchersCreateWithSpecificCodeRequestBody(
                type="DISCOUNT_VOUCHER",
                discount=voucherify.Discount(type="PERCENT", percent_off=10),
                redemption=voucherify.VouchersCreateWithSpecificCodeRequestBodyRedemption(quantity=100),
            ),
        )
        order = voucherify.Order(amount=25000)
        validation = voucherify.ValidationsApi(client).validate_stacked_discounts(
            voucherify.ValidationsValidateRequestBody(
                redeemables=[
                    voucherify.ValidationsValidateRequestBodyRedeemablesItem(object="voucher", id="WELCOME10")
                ],
                order=order,
            )
        )
        assert validation.valid is True
        assert validation.order.total_amount == 22500  # 10 % of 250.00 off

        redeemed = voucherify.RedemptionsApi(client).redeem_stacked_discounts(
            voucherify.RedemptionsRedeemRequestBody(
                redeemables=[voucherify.RedemptionsRedeemRequestBodyRedeemablesItem(object="voucher", id="WELCOME10")],
                order=order,
                customer=voucherify.Customer(source_id="first-customer"),
            )
        )
        [redemption] = redeemed.redemptions
        assert redemption.result == "SUCCESS" and redemption.order.total_amount == 22500

        drain_worker(live_server.settings)
        rollback = voucherify.RedemptionsApi(client).rollback_redemption(redemption.id, reason="changed my mind")
        assert rollback.result == "SUCCESS" and rollback.redemption == redemption.id
