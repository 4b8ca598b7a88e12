"""``/v1/rewards`` and their assignments (issue 9)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.definitions import version as definitions
from voucherd.loyalty import rewards


async def list_rewards(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await rewards.list_page(conn, project_id(request), request.query_params)
    return ORJSONResponse(body)


async def create_reward(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        reward = await rewards.create(conn, project_id(request), body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(reward)


async def get_reward(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        reward = await rewards.get(conn, project_id(request), request.path_params["rewardId"])
    return ORJSONResponse(reward)


async def update_reward(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        reward = await rewards.update(conn, project_id(request), request.path_params["rewardId"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(reward)


async def delete_reward(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        await rewards.delete(conn, project_id(request), request.path_params["rewardId"])
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


async def list_assignments(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        await rewards.fetch(conn, project_id(request), request.path_params["rewardId"])
        body = await rewards.list_assignments(
            conn, project_id(request), request.query_params, reward_id=request.path_params["rewardId"]
        )
    return ORJSONResponse(body)


async def create_assignment(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        assignment = await rewards.assign(
            conn, project_id(request), request.path_params["rewardId"], body.get("campaign"), body.get("parameters")
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(assignment)


async def get_assignment(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], reward_id=request.path_params["rewardId"]
        )
    return ORJSONResponse(rewards.assignment_view(row))


async def update_assignment(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        row = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], reward_id=request.path_params["rewardId"]
        )
        assignment = await rewards.update_assignment(conn, project_id(request), row, body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(assignment)


async def delete_assignment(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        row = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], reward_id=request.path_params["rewardId"]
        )
        await rewards.delete_assignment(conn, project_id(request), row)
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


routes = [
    resource("/v1/rewards", GET=list_rewards, POST=create_reward),
    resource("/v1/rewards/{rewardId}", GET=get_reward, PUT=update_reward, DELETE=delete_reward),
    resource("/v1/rewards/{rewardId}/assignments", GET=list_assignments, POST=create_assignment),
    resource(
        "/v1/rewards/{rewardId}/assignments/{assignmentId}",
        GET=get_assignment,
        PUT=update_assignment,
        DELETE=delete_assignment,
    ),
]
