"""Validation rules: the list, and a create form with one simple rule (order amount more than X) or the
rules as JSON for anything else. Creating is ``validation_rules.create`` and the definitions bump, as
``POST /v1/validation-rules`` does."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.console.forms import Field, Form, FormState, submit
from server.console.routing import page
from server.console.templating import redirect, render
from server.context import context, project_id
from voucherd.definitions import validation_rules
from voucherd.definitions import version as definitions

PAGE_SIZE = 50
SIMPLE = "order_amount_more_than"  # the simple rule's field: not an API field, turned into ``rules`` below

RULE = Form(
    "validation-rule",
    (
        Field("name", "Name", required=True),
        Field(SIMPLE, "Order amount more than", kind="money", help="The simple rule: orders above this amount."),
        Field(
            "rules",
            "Rules (JSON)",
            kind="json",
            help='Instead of the simple rule, e.g. {"1": {"name": "customer.segment", "conditions": '
            '{"$is": ["seg_…"]}}, "logic": "1"}',
        ),
        Field("error.message", "Message when the rule is not met", help="Shown to the customer."),
    ),
    submit_label="Create validation rule",
)


def rule_body(body: dict[str, Any]) -> dict[str, Any]:
    """The API body: the simple rule becomes ``rules`` unless rules were given as JSON."""
    amount = body.pop(SIMPLE, None)
    if amount is not None and "rules" not in body:
        body["rules"] = {"1": {"name": "order.amount", "conditions": {"$more_than": [amount]}}, "logic": "1"}
    return body


async def _page(request: Request, state: FormState, status: int = 200) -> Response:
    number = request.query_params.get("page", "1")
    number = number if number.isdigit() and int(number) >= 1 else "1"
    async with context(request).pool.acquire() as conn:
        items, total = await validation_rules.list_rules(conn, project_id(request), limit=PAGE_SIZE, page=int(number))
    values = {
        "rules": items,
        "total": total,
        "state": state,
        "page": int(number),
        "pages": max(1, -(-total // PAGE_SIZE)),
    }
    return await render(request, "validation_rules/list.html", values, status=status)


async def list_page(request: Request) -> Response:
    return await _page(request, RULE.state())


async def create(request: Request) -> Response:
    ctx, pid = context(request), project_id(request)

    async def action(body: dict[str, Any]) -> dict[str, Any]:
        async with ctx.pool.acquire() as conn:
            rule = await validation_rules.create(conn, pid, rule_body(body))
        await definitions.bump(ctx.redis, pid)
        return rule

    created, state = await submit(request, RULE, action)
    if created is None:
        return await _page(request, state, status=400)
    return await redirect(
        request, "/console/validation-rules", f"Validation rule {created['name'] or created['id']} created."
    )


routes = [
    page("/validation-rules", GET=list_page, POST=create),
]
