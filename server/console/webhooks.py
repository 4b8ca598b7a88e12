"""Webhooks: the project's subscriptions (create, delete) and each one's deliveries with every attempt
(status, response code, tries). The same calls as ``/management/v1/projects/{id}/webhooks``, and, as there,
for management keys only: a webhook sends the project's events (and holds their signing secret) wherever
its URL points, which the API does not let an application key decide."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.body import check_shape
from server.console import sessions
from server.console.forms import Field, Form, FormState
from server.console.routing import page
from server.console.templating import redirect, render
from server.context import context, project_id
from voucherd.jobs import webhooks
from voucherd.platform.errors import Forbidden, VoucherdError

DELIVERIES_SHOWN = 20
EVENT_NAMES = tuple(sorted(e for e in webhooks.EVENTS if webhooks.canonical(e) == e))
# The form groups the events by what they are about (the name's first part: campaign, customer, voucher, …).
EVENT_GROUPS = tuple(
    (group, tuple(e for e in EVENT_NAMES if e.split(".", 1)[0] == group))
    for group in dict.fromkeys(e.split(".", 1)[0] for e in EVENT_NAMES)
)
FORM = Form(
    "webhook",
    (
        Field("target_url", "Target URL", help="Where voucherd posts each event (http or https)."),
        Field("events", "Events"),
        Field("active", "Active", "bool", default="on"),
    ),
)


def _require_management(request: Request) -> None:
    if sessions.current(request).key_kind != "management":
        raise Forbidden("Webhooks are managed with a management key: log in with one to see or change them.")


async def _page(request: Request, state: FormState, chosen: list[str], status: int = 200) -> Response:
    async with context(request).pool.acquire() as conn:
        items = await webhooks.list_all(conn, project_id(request))
    values = {"webhooks": items, "state": state, "event_groups": EVENT_GROUPS, "chosen": chosen}
    return await render(request, "webhooks/list.html", values, status=status)


async def list_page(request: Request) -> Response:
    if sessions.current(request).key_kind != "management":
        return await render(request, "webhooks/management_only.html", status=403)
    return await _page(request, FORM.state(), [])


async def create(request: Request) -> Response:
    _require_management(request)
    form = await request.form()
    chosen = [str(v) for v in form.getlist("events")]
    data = {"target_url": str(form.get("target_url", "")), "active": str(form.get("active", ""))}
    state = FORM.state(data)
    body: dict[str, Any] = {
        "target_url": data["target_url"].strip(),
        "events": chosen,
        "active": data["active"] in ("on", "true", "1"),
    }
    try:
        check_shape(body)  # the API's body limits (a NUL character, say), as for the API's request
        async with context(request).pool.acquire() as conn:
            hook = await webhooks.create(conn, project_id(request), body)
    except VoucherdError as error:
        state.refuse(error)
        return await _page(request, state, chosen, status=error.code)
    return await redirect(request, f"/console/webhooks/{hook['id']}", "Webhook created.")


async def delete(request: Request) -> Response:
    _require_management(request)
    webhook_id = request.path_params["webhookId"]
    async with context(request).pool.acquire() as conn:
        await webhooks.delete(conn, project_id(request), webhook_id)
    return await redirect(request, "/console/webhooks", f"Webhook {webhook_id} deleted.")


async def _deliveries(request: Request, webhook_id: str) -> list[dict[str, Any]]:
    project = project_id(request)
    async with context(request).pool.acquire() as conn:
        items = await webhooks.deliveries(conn, project, webhook_id, DELIVERIES_SHOWN)
        for item in items:
            item["tries"] = await webhooks.attempts(conn, project, webhook_id, item["id"])
    return items


async def webhook_page(request: Request) -> Response:
    _require_management(request)
    webhook_id = request.path_params["webhookId"]
    async with context(request).pool.acquire() as conn:
        hook = await webhooks.get(conn, project_id(request), webhook_id)
    values = {"webhook": hook, "deliveries": await _deliveries(request, webhook_id)}
    return await render(request, "webhooks/show.html", values)


async def deliveries(request: Request) -> Response:
    """The deliveries table alone, for the page's polling (htmx): attempts arrive while it is open."""
    _require_management(request)
    webhook_id = request.path_params["webhookId"]
    values = {"webhook": {"id": webhook_id}, "deliveries": await _deliveries(request, webhook_id)}
    return await render(request, "webhooks/_deliveries.html", values)


routes = [
    page("/webhooks", GET=list_page, POST=create),
    page("/webhooks/{webhookId}", GET=webhook_page),
    page("/webhooks/{webhookId}/deliveries", GET=deliveries),
    page("/webhooks/{webhookId}/delete", POST=delete),
]
