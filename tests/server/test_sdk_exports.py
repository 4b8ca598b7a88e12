"""Exports, templates, the bin, locations and points expiration through the official Python SDK (issue 17).

Every answer is parsed by the SDK's pydantic models, so a wrong enum value, data_ref or JSON type fails here.
"""

from __future__ import annotations

import pytest
import voucherify

from tests.conftest import LiveServer, ProjectKeys, drain_worker

pytestmark = pytest.mark.slow


def sdk_client(server: LiveServer, project: ProjectKeys) -> voucherify.ApiClient:
    config = voucherify.Configuration(
        host=server.url, api_key={"X-App-Id": project.app_id, "X-App-Token": project.app_token}
    )
    return voucherify.ApiClient(config)


def test_exports_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        customers = voucherify.CustomersApi(api_client)
        customers.create_customer(voucherify.CustomersCreateRequestBody(source_id="ann", name="Ann"))
        exports = voucherify.ExportsApi(api_client)
        created = exports.create_export(
            voucherify.ExportsCreateRequestBody(
                exported_object="customer",
                parameters=voucherify.ExportsCreateRequestBodyParameters(fields=["source_id", "name"], order="-name"),
            )
        )
        assert created.id.startswith("exp_") and created.status == "SCHEDULED" and created.exported_object == "customer"
        drain_worker(live_server.settings)
        done = exports.get_export(created.id)
        assert done.status == "DONE" and done.result is not None and done.result.url
        token = done.result.url.split("token=", 1)[1]
        assert exports.download_export(created.id, token=token) == "Source ID,Name\nann,Ann\n"
        listed = exports.list_exports(limit=10, order="-created_at")
        assert listed.data_ref == "exports" and [e.id for e in listed.exports] == [created.id]

        orders = voucherify.OrdersApi(api_client).create_order_export(voucherify.OrdersExportCreateRequestBody())
        assert orders.exported_object == "order" and orders.status == "SCHEDULED"
        exports.delete_export(created.id)
        with pytest.raises(voucherify.exceptions.NotFoundException):
            exports.get_export(created.id)


def test_templates_bin_and_locations_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        campaigns = voucherify.CampaignsApi(api_client)
        campaign = campaigns.create_campaign(
            voucherify.CampaignsCreateRequestBody(
                name="Source",
                voucher=voucherify.CampaignsCreateRequestBodyVoucher(
                    type="DISCOUNT_VOUCHER", discount=voucherify.Discount(type="AMOUNT", amount_off=500)
                ),
            )
        )
        templates = voucherify.TemplatesApi(api_client)
        template = templates.create_campaign_template(
            voucherify.TemplatesCampaignsCreateRequestBody(name="Tpl", campaign_id=campaign.id)
        )
        assert template.id.startswith("camp_tpl_") and template.campaign_type == "DISCOUNT_COUPONS"
        listed = templates.list_campaign_templates(limit=10, include_total=True)
        assert listed.total == 1 and listed.data[0].id == template.id
        setup = templates.create_campaign_from_template(
            template.id, voucherify.TemplatesCampaignsCampaignSetupCreateRequestBody(name="From template")
        )
        assert setup.campaign.name == "From template" and setup.campaign.voucher.discount.amount_off == 500

        campaigns.delete_campaign(campaign.id)
        bin_api = voucherify.BinApi(api_client)
        entries = bin_api.list_bin_entries(limit=10)
        assert [(e.resource_type, e.resource_id) for e in entries.data] == [("campaign", campaign.id)]
        bin_api.delete_bin_entry(entries.data[0].id)
        assert bin_api.list_bin_entries().data == []

        assert voucherify.LocationsApi(api_client).list_locations(limit=5).data == []
