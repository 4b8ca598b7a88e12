"""``/v1/publications``."""

from __future__ import annotations

from starlette.requests import Request

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import publications


async def list_publications(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        body = await publications.list_page(conn, ctx.redis, project_id(request), request.query_params)
    return ORJSONResponse(body)


async def create_publication(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    join_once = publications.join_once_param(request.query_params)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        publication = await publications.publish(conn, ctx.redis, project_id(request), body, join_once=join_once)
    return ORJSONResponse(publication)


async def create_publication_by_get(request: Request) -> ORJSONResponse:
    body, join_once = publications.request_from_query(request.query_params)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        publication = await publications.publish(conn, ctx.redis, project_id(request), body, join_once=join_once)
    return ORJSONResponse(publication)


routes = [
    resource("/v1/publications", GET=list_publications, POST=create_publication),
    resource("/v1/publications/create", GET=create_publication_by_get),
]
