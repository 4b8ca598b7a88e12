"""Campaigns: the list, enable/disable, and the create forms (coupons with generated codes, a promotion with
tiers, gift cards, a loyalty program). Each action is the call the ``/v1/campaigns`` handlers make, followed
by the same definitions-version bump."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.console.forms import Field, Form, FormState, submit
from server.console.routing import page
from server.console.templating import redirect, render
from server.context import context, project_id
from server.errors import request_id_of
from voucherd.definitions import campaigns
from voucherd.definitions import version as definitions
from voucherd.platform.errors import NotFound

PAGE_SIZE = 50

_DISCOUNT_TYPES = (("PERCENT", "Percent off"), ("AMOUNT", "Amount off"), ("FIXED", "Fixed price"))
_CODE_FIELDS = (
    Field("vouchers_count", "Number of codes", kind="int", default="10", help="Generated in the background."),
    Field("voucher.code_config.prefix", "Code prefix", help="e.g. SUMMER-"),
    Field("voucher.code_config.pattern", "Code pattern", help="# is a character of the charset, e.g. SUMMER-####"),
    Field("voucher.code_config.length", "Code length", kind="int", help="Without prefix; when there is no pattern."),
)

_JSON_HELP = 'Optional, e.g. {"type": "PERCENT", "percent_off": 20}'

COUPON = Form(
    "coupon",
    (
        Field("name", "Name", required=True),
        Field("voucher.discount.type", "Discount type", kind="choice", choices=_DISCOUNT_TYPES),
        Field("voucher.discount.percent_off", "Percent off", kind="number", help="For a percent discount."),
        Field("voucher.discount.amount_off", "Amount off", kind="money", help="For an amount discount."),
        Field("voucher.discount.fixed_amount", "Fixed price", kind="money", help="For a fixed price."),
        Field("voucher.redemption.quantity", "Redemptions per code", kind="int", help="Empty: unlimited."),
        *_CODE_FIELDS,
    ),
    fixed={"campaign_type": "DISCOUNT_COUPONS", "type": "AUTO_UPDATE"},
    submit_label="Create coupon campaign",
)
PROMOTION = Form(
    "promotion",
    (
        Field("name", "Name", required=True),
        Field("promotion.tiers.0.name", "Tier name", required=True),
        Field("promotion.tiers.0.banner", "Banner", help="What the customer reads, e.g. 10% off orders over 100"),
        Field("promotion.tiers.0.action.discount.type", "Discount type", kind="choice", choices=_DISCOUNT_TYPES),
        Field("promotion.tiers.0.action.discount.percent_off", "Percent off", kind="number"),
        Field("promotion.tiers.0.action.discount.amount_off", "Amount off", kind="money"),
        Field("promotion.tiers.1.name", "Second tier name", help="Optional."),
        Field("promotion.tiers.1.action.discount", "Second tier discount (JSON)", kind="json", help=_JSON_HELP),
    ),
    fixed={"campaign_type": "PROMOTION"},
    submit_label="Create promotion",
    scopes=("promotion.tiers.0", "promotion.tiers.1"),
)
GIFT = Form(
    "gift",
    (
        Field("name", "Name", required=True),
        Field("voucher.gift.amount", "Card balance", kind="money", required=True),
        *_CODE_FIELDS,
    ),
    fixed={"campaign_type": "GIFT_VOUCHERS", "type": "AUTO_UPDATE"},
    submit_label="Create gift cards",
)
LOYALTY = Form(
    "loyalty",
    (
        Field("name", "Name", required=True),
        Field("voucher.loyalty_card.points", "Points on a new card", kind="int", default="0"),
        *_CODE_FIELDS,
    ),
    fixed={"campaign_type": "LOYALTY_PROGRAM", "type": "AUTO_UPDATE"},
    submit_label="Create loyalty program",
)
FORMS = {"coupon": COUPON, "promotion": PROMOTION, "gift": GIFT, "loyalty": LOYALTY}
TITLES = {
    "coupon": "Coupon campaign",
    "promotion": "Promotion with tiers",
    "gift": "Gift cards",
    "loyalty": "Loyalty program",
}


def _form(request: Request) -> tuple[str, Form]:
    kind = request.path_params["kind"]
    if kind not in FORMS:
        raise NotFound(f"There is no {kind} campaign form.")
    return kind, FORMS[kind]


async def list_page(request: Request) -> Response:
    number = request.query_params.get("page", "1")
    number = number if number.isdigit() and int(number) >= 1 else "1"
    async with context(request).pool.acquire() as conn:
        items, total = await campaigns.list_page(
            conn, project_id(request), [("limit", str(PAGE_SIZE)), ("page", number)]
        )
    values = {"campaigns": items, "total": total, "page": int(number), "pages": max(1, -(-total // PAGE_SIZE))}
    return await render(request, "campaigns/list.html", values)


async def _new(request: Request, kind: str, state: FormState, status: int = 200) -> Response:
    values = {"kind": kind, "state": state, "titles": TITLES}
    return await render(request, "campaigns/new.html", values, status=status)


async def new_page(request: Request) -> Response:
    kind, form = _form(request)
    return await _new(request, kind, form.state())


async def create(request: Request) -> Response:
    kind, form = _form(request)
    ctx, pid = context(request), project_id(request)

    async def action(body: dict[str, Any]) -> dict[str, Any]:
        async with ctx.pool.acquire() as conn:
            created = await campaigns.create(conn, ctx.redis, pid, body, request_id_of(request))
        await definitions.bump(ctx.redis, pid)
        return created

    created, state = await submit(request, form, action)
    if created is None:
        return await _new(request, kind, state, status=400)
    message = f"Campaign {created['name']} created."
    if created.get("async_action_id"):
        message += " Its codes are being generated."
    return await redirect(request, f"/console/campaigns/{created['id']}", message)


async def _set_active(request: Request, active: bool) -> Response:
    ctx, pid = context(request), project_id(request)
    campaign_id = request.path_params["campaignId"]
    async with ctx.pool.acquire() as conn:
        await campaigns.set_active(conn, pid, campaign_id, active)
        name = (await campaigns.get(conn, pid, campaign_id))["name"]
    await definitions.bump(ctx.redis, pid)
    back = request.query_params.get("back", "")
    target = back if back.startswith("/console/") and "//" not in back else "/console/campaigns"
    return await redirect(request, target, f"Campaign {name} {'enabled' if active else 'disabled'}.")


async def enable(request: Request) -> Response:
    return await _set_active(request, True)


async def disable(request: Request) -> Response:
    return await _set_active(request, False)


routes = [
    page("/campaigns", GET=list_page),
    page("/campaigns/new/{kind}", GET=new_page, POST=create),
    page("/campaigns/{campaignId}/enable", POST=enable),
    page("/campaigns/{campaignId}/disable", POST=disable),
]
