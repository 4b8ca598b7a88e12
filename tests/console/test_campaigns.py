"""The campaigns pages through the ASGI app (no browser): a refused form shows the API's error beside its
field and writes nothing; an accepted one creates what the API would."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from voucherd.platform.settings import Settings

TABLES = ("campaigns", "vouchers", "promotion_tiers", "async_actions")


def _rows(settings: Settings) -> dict[str, int]:
    async def count() -> dict[str, int]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in TABLES}
        finally:
            await conn.close()

    return asyncio.run(count())


COUPON = {
    "name": "Summer",
    "voucher.discount.type": "PERCENT",
    "voucher.discount.percent_off": "10",
    "vouchers_count": "5",
    "voucher.code_config.prefix": "SUM-",
    "voucher.code_config.length": "6",
}


@pytest.mark.parametrize(
    ("kind", "form", "field", "message"),
    [
        ("coupon", {**COUPON, "voucher.discount.percent_off": "150"}, "voucher.discount.percent_off", "at most 100"),
        ("coupon", {**COUPON, "voucher.discount.percent_off": ""}, "voucher.discount.percent_off", "is required"),
        ("coupon", {**COUPON, "name": ""}, "name", "is required"),
        ("coupon", {**COUPON, "vouchers_count": "many"}, "vouchers_count", "integer"),
        ("coupon", {**COUPON, "voucher.code_config.pattern": "AB"}, None, "code"),
        ("gift", {"name": "Cards", "voucher.gift.amount": "ten", "vouchers_count": "3"}, "voucher.gift.amount", ""),
        (
            "promotion",
            {"name": "Tiers", "promotion.tiers.0.name": "", "promotion.tiers.0.action.discount.type": "PERCENT",
             "promotion.tiers.0.action.discount.percent_off": "10"},
            "promotion.tiers.0.name",
            "is required",
        ),
        (
            "promotion",
            {"name": "Tiers", "promotion.tiers.0.name": "Gold", "promotion.tiers.0.action.discount.type": "PERCENT",
             "promotion.tiers.0.action.discount.percent_off": "10", "promotion.tiers.1.name": "Silver",
             "promotion.tiers.1.action.discount": "{not json"},
            "promotion.tiers.1.action.discount",
            "not valid JSON",
        ),
    ],
)  # fmt: skip
def test_a_refused_form_shows_the_error_beside_its_field_and_writes_nothing(
    logged_in: TestClient, settings: Settings, kind: str, form: dict[str, str], field: str | None, message: str
) -> None:
    before = _rows(settings)
    response = logged_in.post(f"/console/campaigns/new/{kind}", data=form)
    assert response.status_code == 400, response.text
    if field is None:
        assert 'data-testid="form-error"' in response.text
    else:
        marker = f'data-testid="error-{field}">'
        assert marker in response.text, response.text
        shown = response.text.split(marker, 1)[1].split("</p>", 1)[0]
        assert message in shown
    for value in form.values():  # the form comes back as typed
        if value and "{" not in value:
            assert f'value="{value}"' in response.text or f">{value}<" in response.text
    assert _rows(settings) == before


def test_the_same_body_through_the_api_is_refused_with_the_same_message(
    logged_in: TestClient, project: ProjectKeys
) -> None:
    body = {"name": "Summer", "campaign_type": "DISCOUNT_COUPONS", "voucher": {"discount": {"type": "PERCENT",
            "percent_off": 150}}}  # fmt: skip
    api = logged_in.post("/v1/campaigns", json=body, headers=project.headers)
    assert api.status_code == 400
    page = logged_in.post("/console/campaigns/new/coupon", data={**COUPON, "voucher.discount.percent_off": "150"})
    assert api.json()["details"] in page.text


def test_a_coupon_campaign_is_created_with_its_generation_queued(logged_in: TestClient, settings: Settings) -> None:
    response = logged_in.post("/console/campaigns/new/coupon", data=COUPON, follow_redirects=False)
    assert response.status_code == 303, response.text
    campaign_page = logged_in.get(response.headers["location"])
    assert campaign_page.status_code == 200
    assert "Campaign Summer created. Its codes are being generated." in campaign_page.text
    assert 'data-testid="generation"' in campaign_page.text
    assert _rows(settings)["async_actions"] == 1
    listed = logged_in.get("/console/campaigns")
    assert 'data-campaign="Summer"' in listed.text


def test_enable_and_disable(logged_in: TestClient, project: ProjectKeys) -> None:
    body = {"name": "Solo", "campaign_type": "DISCOUNT_COUPONS", "voucher": {"discount": {"type": "AMOUNT",
            "amount_off": 500}}, "vouchers_count": 1}  # fmt: skip
    created = logged_in.post("/v1/campaigns", json=body, headers=project.headers).json()
    response = logged_in.post(f"/console/campaigns/{created['id']}/disable?back=/console/campaigns")
    assert response.status_code == 200
    assert "Campaign Solo disabled." in response.text
    assert logged_in.get(f"/v1/campaigns/{created['id']}", headers=project.headers).json()["active"] is False
    logged_in.post(f"/console/campaigns/{created['id']}/enable")
    assert logged_in.get(f"/v1/campaigns/{created['id']}", headers=project.headers).json()["active"] is True


def test_an_unknown_campaign_is_an_html_404(logged_in: TestClient) -> None:
    response = logged_in.get("/console/campaigns/camp_nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
