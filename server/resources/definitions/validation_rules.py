"""``/v1/validation-rules``, their assignments, and ``/v1/validation-rules-assignments``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.query import date_param, int_param
from server.responses import ORJSONResponse, list_body
from server.routing import resource
from voucherd.definitions import validation_rules
from voucherd.definitions import version as definitions
from voucherd.platform.errors import InvalidQueryParams


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "" or raw.lower() == "false":
        return False
    if raw.lower() == "true":
        return True
    raise InvalidQueryParams(f"Query parameter {name} should be true or false")


def paging(request: Request) -> tuple[int, int]:
    return int_param(request, "limit", 10), int_param(request, "page", 1, maximum=1_000_000)


async def list_rules(request: Request) -> ORJSONResponse:
    limit, page = paging(request)
    async with context(request).pool.acquire() as conn:
        items, total = await validation_rules.list_rules(
            conn,
            project_id(request),
            limit=limit,
            page=page,
            order=request.query_params.get("order"),
            created_after=date_param(request, "start_date"),
            created_before=date_param(request, "end_date"),
        )
    return ORJSONResponse(list_body("data", items, total=total))


async def create_rule(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        rule = await validation_rules.create(conn, project_id(request), body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(rule)


async def get_rule(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        rule = await validation_rules.get(conn, project_id(request), request.path_params["validationRuleId"])
    return ORJSONResponse(rule)


async def update_rule(request: Request) -> ORJSONResponse:
    body = await read_object(request, clears=validation_rules.CLEARS)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        rule = await validation_rules.update(conn, project_id(request), request.path_params["validationRuleId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(rule)


async def delete_rule(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await validation_rules.delete(conn, project_id(request), request.path_params["validationRuleId"])
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


async def create_assignment(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    force = bool_param(request, "force")
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        assignment = await validation_rules.create_assignment(
            conn, project_id(request), request.path_params["validationRuleId"], body, force=force
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(assignment)


async def list_rule_assignments(request: Request) -> ORJSONResponse:
    limit, page = paging(request)
    async with context(request).pool.acquire() as conn:
        items, total = await validation_rules.list_assignments(
            conn,
            project_id(request),
            rule_id=request.path_params["validationRuleId"],
            limit=limit,
            page=page,
            order=request.query_params.get("order"),
            require_rule=True,
        )
    return ORJSONResponse(list_body("data", items, total=total))


async def delete_assignment(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await validation_rules.delete_assignment(
            conn, project_id(request), request.path_params["validationRuleId"], request.path_params["assignmentId"]
        )
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


async def list_all_assignments(request: Request) -> ORJSONResponse:
    limit, page = paging(request)
    async with context(request).pool.acquire() as conn:
        items, total = await validation_rules.list_assignments(
            conn,
            project_id(request),
            rule_id=request.query_params.get("rule") or None,
            related_object_id=request.query_params.get("related_object_id") or None,
            limit=limit,
            page=page,
            order=request.query_params.get("order"),
        )
    return ORJSONResponse(list_body("data", items, total=total))


routes = [
    resource("/v1/validation-rules", GET=list_rules, POST=create_rule),
    resource("/v1/validation-rules/{validationRuleId}", GET=get_rule, PUT=update_rule, DELETE=delete_rule),
    resource("/v1/validation-rules/{validationRuleId}/assignments", GET=list_rule_assignments, POST=create_assignment),
    resource("/v1/validation-rules/{validationRuleId}/assignments/{assignmentId}", DELETE=delete_assignment),
    resource("/v1/validation-rules-assignments", GET=list_all_assignments),
]
