"""Campaigns and vouchers driven by the official Voucherify Python SDK against a live voucherd.

Every answer is parsed by the SDK's pydantic models, so a wrong enum value or JSON type fails here.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import voucherify

from tests.conftest import LiveServer, ProjectKeys, drain_worker

pytestmark = pytest.mark.slow


def sdk_client(server: LiveServer, project: ProjectKeys) -> voucherify.ApiClient:
    config = voucherify.Configuration(
        host=server.url, api_key={"X-App-Id": project.app_id, "X-App-Token": project.app_token}
    )
    return voucherify.ApiClient(config)


def discount_voucher() -> voucherify.CampaignsCreateRequestBodyVoucher:
    return voucherify.CampaignsCreateRequestBodyVoucher(
        type="DISCOUNT_VOUCHER", discount=voucherify.Discount(type="AMOUNT", amount_off=1000)
    )


def test_campaigns_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        api = voucherify.CampaignsApi(api_client)
        campaign = api.create_campaign(
            voucherify.CampaignsCreateRequestBody(
                name="SDK campaign",
                voucher=discount_voucher(),
                metadata={"mandatory_v": "test"},
                expiration_date=datetime.fromisoformat("2090-10-08T12:57:09.386+00:00"),
            )
        )
        assert campaign.id.startswith("camp_") and campaign.name == "SDK campaign"
        assert campaign.campaign_type == "DISCOUNT_COUPONS" and campaign.voucher.code_config is not None
        assert campaign.expiration_date is not None and campaign.metadata == {"mandatory_v": "test"}

        voucher = api.add_vouchers_to_campaign(campaign.id)
        assert voucher.code and voucher.campaign_id == campaign.id
        specific = api.add_voucher_with_specific_code_to_campaign(campaign.id, "SDK-CODE-1")
        assert specific.code == "SDK-CODE-1" and specific.discount.amount_off == 1000
        bulk = api.add_vouchers_to_campaign(campaign.id, vouchers_count=3)
        assert bulk.async_action_id.startswith("aa_")
        drain_worker(live_server.settings)

        fetched = api.get_campaign("SDK campaign")
        assert fetched.id == campaign.id and fetched.vouchers_count == 5
        cleared = api.update_campaign(campaign.id, voucherify.CampaignsUpdateRequestBody(expiration_date=None))
        assert cleared.expiration_date is None
        listing = api.list_campaigns(limit=10)
        assert listing.total == 1 and listing.campaigns[0].id == campaign.id
        api.disable_campaign(campaign.id)
        assert api.get_campaign(campaign.id).active is False
        api.enable_campaign(campaign.id)
        summary = api.get_campaign_summary(campaign.id)
        assert summary.vouchers_created == 5

        gifts = api.create_campaign(
            voucherify.CampaignsCreateRequestBody(
                name="SDK gifts",
                voucher=voucherify.CampaignsCreateRequestBodyVoucher(
                    type="GIFT_VOUCHER", gift=voucherify.Gift(amount=5000)
                ),
                vouchers_count=1,
            )
        )
        assert gifts.campaign_type == "GIFT_VOUCHERS" and gifts.vouchers_count == 1

        deleted = api.delete_campaign(campaign.id, force=True)
        assert deleted.async_action_id.startswith("aa_")
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_campaign(campaign.id)
        assert raised.value.status == 404


def test_vouchers_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        api = voucherify.VouchersApi(api_client)
        created = api.create_voucher(
            "SDK-GIFT",
            voucherify.VouchersCreateWithSpecificCodeRequestBody(
                type="GIFT_VOUCHER", gift=voucherify.Gift(amount=2000), metadata={"k": "v"}
            ),
        )
        assert created.code == "SDK-GIFT" and created.gift.balance == 2000 and created.type == "GIFT_VOUCHER"
        generated = api.generate_random_code(
            voucherify.VouchersCreateRequestBody(
                type="DISCOUNT_VOUCHER", discount=voucherify.Discount(type="PERCENT", percent_off=20)
            )
        )
        assert generated.code and generated.discount.percent_off == 20

        balance = api.update_voucher_balance("SDK-GIFT", voucherify.VouchersBalanceUpdateRequestBody(amount=500))
        assert balance.balance == 2500 and balance.type == "gift_voucher" and balance.object == "balance"
        transactions = api.list_voucher_transactions("SDK-GIFT")
        assert transactions.data[0].type == "CREDITS_ADDITION" and transactions.has_more is False

        fetched = api.get_voucher("SDK-GIFT")
        assert fetched.gift.balance == 2500 and fetched.metadata == {"k": "v"}
        updated = api.update_voucher("SDK-GIFT", voucherify.VouchersUpdateRequestBody(metadata={"k": "w"}))
        assert updated.metadata == {"k": "w"}
        assert api.disable_voucher("SDK-GIFT").active is False
        assert api.enable_voucher("SDK-GIFT").active is True

        listing = api.list_vouchers(limit=10)
        assert listing.data_ref == "vouchers" and listing.total == 2
        assert {v.code for v in listing.vouchers} == {"SDK-GIFT", generated.code}

        api.delete_voucher("SDK-GIFT", force=True)
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_voucher("SDK-GIFT")
        assert raised.value.status == 404


def test_loyalty_and_referral_campaigns_parse(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        api = voucherify.CampaignsApi(api_client)
        loyalty = api.create_campaign(
            voucherify.CampaignsCreateRequestBody(
                name="SDK loyalty",
                voucher=voucherify.CampaignsCreateRequestBodyVoucher(
                    type="LOYALTY_CARD", loyalty_card=voucherify.CampaignLoyaltyCard(points=1000)
                ),
                vouchers_count=1,
            )
        )
        assert loyalty.campaign_type == "LOYALTY_PROGRAM"
        card = voucherify.VouchersApi(api_client).list_vouchers(campaign_id=loyalty.id, limit=1).vouchers[0]
        assert card.loyalty_card.balance == 1000 and card.active is True
        referral = api.create_campaign(
            voucherify.CampaignsCreateRequestBody(
                name="SDK referral", campaign_type="REFERRAL_PROGRAM", voucher=discount_voucher()
            )
        )
        assert referral.campaign_type == "REFERRAL_PROGRAM" and referral.voucher.is_referral_code is True
