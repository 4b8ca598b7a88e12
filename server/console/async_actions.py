"""The async-action monitor: recent actions with status, progress, processing time and result (failed rows),
refreshing itself while one is running; and the form that starts a CSV import of customers, as
``POST /v1/customers/importCSV`` does (the same checks of the file, the same action)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from server.console.routing import page
from server.console.templating import redirect, render
from server.context import context, project_id
from server.errors import request_id_of
from voucherd.jobs import imports
from voucherd.platform import async_actions
from voucherd.platform.errors import InvalidPayload, VoucherdError

SHOWN = 25
RUNNING = (async_actions.Status.ENQUEUED.value, async_actions.Status.IN_PROGRESS.value)
IMPORT_TYPE = "CUSTOMERS.IMPORT_CSV"
MULTIPART_FRAMING = 64 * 1024  # room for the form around a file at the size limit


async def _recent(request: Request) -> dict[str, Any]:
    async with context(request).pool.acquire() as conn:
        actions = await async_actions.recent_summaries(conn, project_id(request), SHOWN + 1)
    return {
        "actions": actions[:SHOWN],
        "has_more": len(actions) > SHOWN,
        "running": any(a["status"] in RUNNING for a in actions),
        "started": request.query_params.get("started", ""),
    }


async def monitor(request: Request, *, upload_error: str = "", status: int = 200) -> Response:
    values = await _recent(request)
    values["upload_error"] = upload_error
    values["max_upload_mb"] = context(request).settings.max_upload_bytes / (1 << 20)
    return await render(request, "async_actions/list.html", values, status=status)


async def list_page(request: Request) -> Response:
    return await monitor(request)


async def table(request: Request) -> Response:
    """The table alone, for the page's polling (htmx) while an action runs."""
    return await render(request, "async_actions/_table.html", await _recent(request))


async def _read_upload(request: Request) -> bytes:
    """The CSV file of the form, checked as the API checks a customers import (``imports.read_csv``)."""
    limit = context(request).settings.max_upload_bytes
    too_large = f"The file is larger than the limit of {limit} bytes."
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_FRAMING:
        raise InvalidPayload(too_large)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidPayload("Choose a CSV file to upload.")
    try:
        form = await request.form(max_files=1, max_fields=10)
    except MultiPartException as exc:
        raise InvalidPayload(f"The upload is malformed: {exc.message}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidPayload("Choose a CSV file to upload.")
    data = await upload.read()
    await upload.close()
    if len(data) > limit:
        raise InvalidPayload(too_large)
    imports.read_csv(data, "customers")  # a malformed file is refused now, with the reason, as by the API
    return data


async def import_customers(request: Request) -> Response:
    try:
        data = await _read_upload(request)
    except VoucherdError as error:
        return await monitor(request, upload_error=error.details or error.message, status=error.code)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        answer = await async_actions.enqueue(
            conn, ctx.redis, project_id(request), IMPORT_TYPE, {}, upload=data, request_id=request_id_of(request)
        )
    action_id = answer["async_action_id"]
    return await redirect(
        request, f"/console/async-actions?started={action_id}", f"Customer import started ({action_id})."
    )


async def action_page(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        action = await async_actions.get(conn, project_id(request), request.path_params["actionId"])
    fragment = request.headers.get("hx-request") == "true"
    values = {"action": action, "running": action["status"] in RUNNING}
    return await render(request, "async_actions/_action.html" if fragment else "async_actions/show.html", values)


routes = [
    page("/async-actions", GET=list_page),
    page("/async-actions/table", GET=table),
    page("/async-actions/import-customers", POST=import_customers),
    page("/async-actions/{actionId}", GET=action_page),
]
