"""``/management/v1/projects``: the management API's projects."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.platform import projects


async def list_projects(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await projects.list_projects(conn)
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def create_project(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        project, server_key, client_key = await projects.create_project(conn, body)
    return ORJSONResponse({**project, "server_side_key": server_key.as_app(), "client_side_key": client_key.as_app()})


async def get_project(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        project = await projects.get_project(conn, request.path_params["projectId"])
    return ORJSONResponse(project)


async def update_project(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        project = await projects.update_project(conn, request.path_params["projectId"], body)
    return ORJSONResponse(project)


async def delete_project(request: Request) -> Response:
    ctx = context(request)
    project_id = request.path_params["projectId"]
    async with ctx.pool.acquire() as conn:
        await projects.delete_project(conn, project_id)
    ctx.keys.forget_project(project_id)
    return Response(status_code=204)


routes = [
    resource("/management/v1/projects", GET=list_projects, POST=create_project),
    resource("/management/v1/projects/{projectId}", GET=get_project, PUT=update_project, DELETE=delete_project),
]
