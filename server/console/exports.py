"""Exports: the list (refreshing itself while one is being written), the form that starts one (the exported
object and its fields, checked by the API's own ``exports.create``), and the download of a finished file,
which the console session authorises (the API's download link needs the export's token instead)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.body import check_shape
from server.console.forms import Field, Form, FormState
from server.console.routing import page
from server.console.templating import redirect, render
from server.context import context, project_id
from server.errors import request_id_of
from voucherd.jobs import export_fields, exports
from voucherd.platform.errors import VoucherdError

SHOWN = 50
RUNNING = ("SCHEDULED", "IN_PROGRESS")
OBJECTS = tuple(export_fields.CATALOGS)
FORM = Form(
    "export",
    (
        Field("exported_object", "Exported object", "choice", tuple((o, o.replace("_", " ")) for o in OBJECTS)),
        Field("parameters.fields", "Fields"),
    ),
    submit_label="Start the export",
)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _catalogs() -> list[dict[str, Any]]:
    """Each exported object with the fields it can write and the ones written when none are chosen."""
    return [
        {"name": name, "fields": list(catalog.fields), "defaults": list(catalog.defaults)}
        for name, catalog in export_fields.CATALOGS.items()
    ]


async def _recent(request: Request) -> dict[str, Any]:
    async with context(request).pool.acquire() as conn:
        body = await exports.list_page(conn, project_id(request), {"limit": str(SHOWN)}, _base_url(request))
    items = body["exports"]
    return {"exports": items, "total": body["total"], "running": any(e["status"] in RUNNING for e in items)}


async def _page(request: Request, state: FormState, chosen: list[str], status: int = 200) -> Response:
    values = await _recent(request)
    values.update(state=state, catalogs=_catalogs(), chosen=chosen)
    return await render(request, "exports/list.html", values, status=status)


async def list_page(request: Request) -> Response:
    return await _page(request, FORM.state({"exported_object": "customer"}), [])


async def table(request: Request) -> Response:
    return await render(request, "exports/_table.html", await _recent(request))


async def create(request: Request) -> Response:
    form = await request.form()
    kind = str(form.get("exported_object", ""))
    chosen = [str(v) for v in form.getlist(f"fields.{kind}")]
    state = FORM.state({"exported_object": kind})
    body: dict[str, Any] = {"exported_object": kind, "parameters": {"fields": chosen} if chosen else {}}
    ctx = context(request)
    try:
        check_shape(body)  # the API's body limits (a NUL character, say), as for the API's request
        async with ctx.pool.acquire() as conn:
            export = await exports.create(
                conn, ctx.redis, project_id(request), body, _base_url(request), request_id=request_id_of(request)
            )
    except VoucherdError as error:
        state.refuse(error)
        return await _page(request, state, chosen, status=error.code)
    return await redirect(request, "/console/exports", f"Export {export['id']} started.")


async def download(request: Request) -> Response:
    ctx = context(request)
    export_id = request.path_params["exportId"]
    async with ctx.pool.acquire() as conn:
        filename, count = await exports.open_project_download(conn, project_id(request), export_id)
    return StreamingResponse(
        exports.chunks(ctx.pool, export_id, count),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


routes = [
    page("/exports", GET=list_page, POST=create),
    page("/exports/table", GET=table),
    page("/exports/{exportId}/download", GET=download),
]
