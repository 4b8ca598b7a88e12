"""Validation rules, promotion tiers and stacks, and stacking rules through the official Python SDK."""

from __future__ import annotations

import asyncio

import pytest
import voucherify
from voucherify.models.parameter_created_before_after import ParameterCreatedBeforeAfter

from tests.conftest import LiveServer, ProjectKeys
from voucherd.platform import db
from voucherd.platform.ids import new_id

pytestmark = pytest.mark.slow


def sdk_client(server: LiveServer, headers: dict[str, str]) -> voucherify.ApiClient:
    return voucherify.ApiClient(voucherify.Configuration(host=server.url, api_key=dict(headers)))


def app_headers(project: ProjectKeys) -> dict[str, str]:
    return {"X-App-Id": project.app_id, "X-App-Token": project.app_token}


def insert_promotion_campaign(server: LiveServer, project: ProjectKeys, name: str) -> str:
    async def go() -> str:
        conn = await db.connect(server.settings.database_url)
        try:
            campaign_id = new_id("camp")
            await conn.execute(
                "INSERT INTO campaigns (id, project_id, name, campaign_type, type) "
                "VALUES ($1, $2, $3, 'PROMOTION', 'STATIC')",
                campaign_id,
                project.project_id,
                name,
            )
            return campaign_id
        finally:
            await conn.close()

    return asyncio.run(go())


def test_validation_rules_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    campaign_id = insert_promotion_campaign(live_server, project, "Rules")
    with sdk_client(live_server, app_headers(project)) as api_client:
        api = voucherify.ValidationRulesApi(api_client)
        created = api.create_validation_rules(
            voucherify.ValidationRulesCreateRequestBody(
                name="Big carts",
                rules={
                    "1": {"name": "order.amount", "conditions": {"$more_than": [10000]}},
                    "2": {"name": "order.metadata", "property": "shop", "conditions": {"$is": ["Athens"]}},
                    "logic": "1 and 2",
                },
                error=voucherify.ValidationRulesCreateRequestBodyError(message="Spend more"),
                applicable_to=voucherify.ValidationRulesCreateRequestBodyApplicableTo(
                    included=[voucherify.ApplicableTo(object="product", id="prod_1", effect="APPLY_TO_EVERY")]
                ),
                type="advanced",
                context_type="campaign.promotion.discount.apply_to_order",
            )
        )
        assert created.id.startswith("val_") and created.object == "validation_rules"
        assert created.rules["logic"] == "1 and 2" and created.error.message == "Spend more"
        assert created.applicable_to.included[0].effect == "APPLY_TO_EVERY"
        assert created.assignments_count == 0 and created.created_at is not None

        fetched = api.get_validation_rule(created.id)
        assert fetched.name == "Big carts" and fetched.context_type == "campaign.promotion.discount.apply_to_order"
        updated = api.update_validation_rule(
            created.id, voucherify.ValidationRulesUpdateRequestBody(name="Bigger carts")
        )
        assert updated.name == "Bigger carts" and updated.rules == created.rules and updated.updated_at is not None
        listing = api.list_validation_rules(limit=10, page=1)
        assert listing.total == 1 and [r.id for r in listing.data] == [created.id]

        assignment = api.create_validation_rule_assignment(
            created.id,
            validation_rules_assignments_create_request_body=voucherify.ValidationRulesAssignmentsCreateRequestBody(
                related_object_type="campaign", related_object_id=campaign_id
            ),
        )
        assert assignment.id.startswith("asgm_") and assignment.related_object_id == campaign_id
        assert assignment.object == "validation_rules_assignment"
        forced = api.create_validation_rule_assignment(
            created.id,
            force=True,
            validation_rules_assignments_create_request_body=voucherify.ValidationRulesAssignmentsCreateRequestBody(
                related_object_type="campaign", related_object_id=campaign_id
            ),
        )
        assert forced.id != assignment.id
        per_rule = api.list_validation_rule_assignments(created.id)
        assert per_rule.total == 1 and per_rule.data[0].id == forced.id
        everywhere = api.list_validation_rules_assignments(related_object_id=campaign_id)
        assert everywhere.total == 1 and everywhere.data[0].rule_id == created.id

        api.delete_validation_rule_assignment(created.id, forced.id)
        assert api.list_validation_rules_assignments(rule=created.id).total == 0
        api.delete_validation_rules(created.id)
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_validation_rule(created.id)
        assert raised.value.status == 404


def test_promotion_tiers_and_stacks_through_the_sdk(live_server: LiveServer, project: ProjectKeys) -> None:
    campaign_id = insert_promotion_campaign(live_server, project, "Weekend")
    with sdk_client(live_server, app_headers(project)) as api_client:
        api = voucherify.PromotionsApi(api_client)
        tiers = [
            api.add_promotion_tier_to_campaign(
                campaign_id,
                voucherify.PromotionsTiersCreateRequestBody(
                    name=f"Tier {i}",
                    banner="Save",
                    action=voucherify.PromotionsTiersCreateRequestBodyAction(
                        discount=voucherify.Discount(type="AMOUNT", amount_off=1000 * (i + 1), effect="APPLY_TO_ORDER")
                    ),
                    metadata={"level": i},
                ),
            )
            for i in range(2)
        ]
        first = tiers[0]
        assert first.id.startswith("promo_") and first.object == "promotion_tier"
        assert first.campaign.id == campaign_id and first.campaign_id == campaign_id
        assert first.action.discount.amount_off == 1000 and first.hierarchy == 1 and tiers[1].hierarchy == 2
        assert first.validation_rule_assignments.total == 0

        assert api.get_promotion_tier(first.id).name == "Tier 0"
        updated = api.update_promotion_tier(
            first.id, voucherify.PromotionsTiersUpdateRequestBody(name="Renamed", hierarchy=3)
        )
        assert updated.name == "Renamed" and updated.hierarchy == 3
        assert api.disable_promotion_tier(first.id).active is False
        available = api.list_promotion_tiers(is_available=True, limit=10, page=1)
        assert available.data_ref == "tiers" and [t.id for t in available.tiers] == [tiers[1].id]
        assert available.has_more is False
        assert api.enable_promotion_tier(first.id).active is True
        in_campaign = api.list_promotion_tiers_from_campaign("Weekend")
        assert [t.id for t in in_campaign.tiers] == [tiers[1].id, first.id]

        stack = api.create_promotion_stack(
            campaign_id,
            voucherify.PromotionsStacksCreateRequestBody(
                name="Both", tiers=voucherify.PromotionsStacksCreateRequestBodyTiers(ids=[first.id, tiers[1].id])
            ),
        )
        assert stack.id.startswith("stack_") and stack.object == "promotion_stack"
        assert stack.tiers.ids == [first.id, tiers[1].id] and stack.tiers.hierarchy_mode == "MANUAL"
        assert api.get_promotion_stack(campaign_id, stack.id).name == "Both"
        renamed = api.update_promotion_stack(
            campaign_id,
            stack.id,
            voucherify.PromotionsStacksUpdateRequestBody(
                name="Pair", tiers=voucherify.PromotionsStacksUpdateRequestBodyTiers(ids=[tiers[1].id])
            ),
        )
        assert renamed.name == "Pair" and renamed.tiers.ids == [tiers[1].id]
        assert api.list_promotion_stacks_in_campaign(campaign_id).total == 1
        everywhere = api.list_all_promotion_stacks(
            limit=10, created_at=ParameterCreatedBeforeAfter(after="2000-01-01T00:00:00Z")
        )
        assert everywhere.total == 1 and everywhere.data[0].id == stack.id

        api.delete_promotion_stack(campaign_id, stack.id)
        api.delete_promotion_tier(first.id)
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_promotion_tier(first.id)
        assert raised.value.status == 404
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_promotion_stack(campaign_id, stack.id)
        assert raised.value.status == 404


def test_stacking_rules_through_the_sdk(
    live_server: LiveServer, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    with sdk_client(live_server, management_headers) as api_client:
        api = voucherify.ManagementApi(api_client)
        assert api.list_stacking_rules(project.project_id).total == 0
        created = api.create_stacking_rules(
            project.project_id,
            voucherify.ManagementProjectsStackingRulesCreateRequestBody(
                applicable_redeemables_limit=3, redeemables_sorting_rule="CATEGORY_HIERARCHY"
            ),
        )
        assert created.id.startswith("stk_") and created.applicable_redeemables_limit == 3
        assert created.redeemables_limit == 30 and created.redeemables_application_mode == "PARTIAL"
        with pytest.raises(voucherify.ApiException) as raised:
            api.create_stacking_rules(project.project_id, voucherify.ManagementProjectsStackingRulesCreateRequestBody())
        assert raised.value.status == 409
        updated = api.update_stacking_rules(
            project.project_id,
            created.id,
            voucherify.ManagementProjectsStackingRulesUpdateRequestBody(redeemables_no_effect_rule="SKIP"),
        )
        assert updated.redeemables_no_effect_rule == "SKIP" and updated.applicable_redeemables_limit == 3
        assert api.get_stacking_rules(project.project_id, created.id).redeemables_no_effect_rule == "SKIP"
        listing = api.list_stacking_rules(project.project_id)
        assert listing.total == 1 and listing.data[0].id == created.id
        api.delete_stacking_rules(project.project_id, created.id)
        with pytest.raises(voucherify.ApiException) as raised:
            api.get_stacking_rules(project.project_id, created.id)
        assert raised.value.status == 404
