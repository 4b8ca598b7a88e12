"""``/management/v1/projects/{projectId}/stacking-rules``: a project's stacking rules.

The collection path also takes PUT and DELETE, acting on the project's one stacking-rules object.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import stacking_rules
from voucherd.definitions import version as definitions


async def list_rules(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await stacking_rules.list_all(conn, request.path_params["projectId"])
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def create_rules(request: Request) -> ORJSONResponse:
    body = await read_object(request, required=False)
    ctx = context(request)
    project = request.path_params["projectId"]
    async with ctx.pool.acquire() as conn:
        created = await stacking_rules.create(conn, project, body)
    await definitions.bump(ctx.redis, project)
    return ORJSONResponse(created)


async def get_rules(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        found = await stacking_rules.get(conn, request.path_params["projectId"], request.path_params["stackingRulesId"])
    return ORJSONResponse(found)


async def update_rules(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    project = request.path_params["projectId"]
    async with ctx.pool.acquire() as conn:
        updated = await stacking_rules.update(conn, project, request.path_params.get("stackingRulesId"), body)
    await definitions.bump(ctx.redis, project)
    return ORJSONResponse(updated)


async def delete_rules(request: Request) -> Response:
    ctx = context(request)
    project = request.path_params["projectId"]
    async with ctx.pool.acquire() as conn:
        await stacking_rules.delete(conn, project, request.path_params.get("stackingRulesId"))
    await definitions.bump(ctx.redis, project)
    return Response(status_code=204)


routes = [
    resource(
        "/management/v1/projects/{projectId}/stacking-rules",
        GET=list_rules,
        POST=create_rules,
        PUT=update_rules,
        DELETE=delete_rules,
    ),
    resource(
        "/management/v1/projects/{projectId}/stacking-rules/{stackingRulesId}",
        GET=get_rules,
        PUT=update_rules,
        DELETE=delete_rules,
    ),
]
