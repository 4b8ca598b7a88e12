"""``/v1/templates/campaigns``: campaign templates, and campaigns and promotion tiers made from them;
``/management/v1/projects/{projectId}/templates/campaigns``: a project's templates, and copies to another."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.definitions import campaign_templates
from voucherd.definitions import version as definitions
from voucherd.platform.errors import InvalidQueryParams


async def list_templates(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await campaign_templates.list_page(conn, project_id(request), request.query_params.multi_items())
    return ORJSONResponse(body)


async def create_template(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        template = await campaign_templates.create(conn, project_id(request), body)
    return ORJSONResponse(template)


async def get_template(request: Request) -> ORJSONResponse:
    expand = request.query_params.get("expand")
    if expand not in (None, "", "json_template"):
        raise InvalidQueryParams("Query param expand should be json_template")
    async with context(request).pool.acquire() as conn:
        template = await campaign_templates.get(
            conn, project_id(request), request.path_params["campaignTemplateId"], expand=expand == "json_template"
        )
    return ORJSONResponse(template)


async def update_template(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        template = await campaign_templates.update(
            conn, project_id(request), request.path_params["campaignTemplateId"], body
        )
    return ORJSONResponse(template)


async def delete_template(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        await campaign_templates.delete(conn, project_id(request), request.path_params["campaignTemplateId"])
    return Response(status_code=204)


async def campaign_setup(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        result = await campaign_templates.campaign_setup(
            conn,
            ctx.redis,
            project_id(request),
            request.path_params["campaignTemplateId"],
            body,
            request_id_of(request),
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(result)


async def tier_setup(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        result = await campaign_templates.tier_setup(
            conn, project_id(request), request.path_params["campaignTemplateId"], body
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(result)


async def management_list(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await campaign_templates.management_list(
            conn, request.path_params["projectId"], request.query_params.multi_items()
        )
    return ORJSONResponse(body)


async def management_copy(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        template = await campaign_templates.copy(conn, params["projectId"], params["campaignTemplateId"], body)
    return ORJSONResponse(template)


routes = [
    resource("/v1/templates/campaigns", GET=list_templates, POST=create_template),
    resource(
        "/v1/templates/campaigns/{campaignTemplateId}", GET=get_template, PUT=update_template, DELETE=delete_template
    ),
    resource("/v1/templates/campaigns/{campaignTemplateId}/campaign-setup", POST=campaign_setup),
    resource("/v1/templates/campaigns/{campaignTemplateId}/tier-setup", POST=tier_setup),
    resource("/management/v1/projects/{projectId}/templates/campaigns", GET=management_list),
    resource("/management/v1/projects/{projectId}/templates/campaigns/{campaignTemplateId}/copy", POST=management_copy),
]
