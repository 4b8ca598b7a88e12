"""``/v1/metadata-schemas`` and ``/management/v1/projects/{projectId}/metadata-schemas``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import metadata_schemas


async def list_schemas(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await metadata_schemas.list_all(conn, project_id(request))
    return ORJSONResponse(list_body("schemas", items, total=len(items)))


async def get_schema_for_resource(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        schema = await metadata_schemas.get_for_resource(conn, project_id(request), request.path_params["resource"])
    return ORJSONResponse(schema)


async def management_list(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        items = await metadata_schemas.list_for_project(conn, request.path_params["projectId"])
    return ORJSONResponse(list_body("data", items, total=len(items)))


async def management_create(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        schema = await metadata_schemas.create(conn, request.path_params["projectId"], body)
    return ORJSONResponse(schema)


async def management_get(request: Request) -> ORJSONResponse:
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        schema = await metadata_schemas.get(conn, params["projectId"], params["metadataSchemaId"])
    return ORJSONResponse(schema)


async def management_update(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        schema = await metadata_schemas.update(conn, params["projectId"], params["metadataSchemaId"], body)
    return ORJSONResponse(schema)


async def management_delete(request: Request) -> Response:
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        await metadata_schemas.delete(conn, params["projectId"], params["metadataSchemaId"])
    return Response(status_code=204)


routes = [
    resource("/v1/metadata-schemas", GET=list_schemas),
    resource("/v1/metadata-schemas/{resource}", GET=get_schema_for_resource),
    resource("/management/v1/projects/{projectId}/metadata-schemas", GET=management_list, POST=management_create),
    resource(
        "/management/v1/projects/{projectId}/metadata-schemas/{metadataSchemaId}",
        GET=management_get,
        PUT=management_update,
        DELETE=management_delete,
    ),
]
