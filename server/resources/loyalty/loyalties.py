"""``/v1/loyalties``: programs, members, balances, transfers, transactions, pending points, earning
rules, reward assignments and reward redemption (issue 9)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_json, read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import activity
from voucherd.checkout import reward_redemptions
from voucherd.definitions import campaigns
from voucherd.definitions import version as definitions
from voucherd.loyalty import earning as loyalty_earning
from voucherd.loyalty import programs as loyalty
from voucherd.loyalty import rewards
from voucherd.loyalty import tiers as loyalty_tiers
from voucherd.platform.errors import InvalidPayload


def _program(request: Request) -> str | None:
    value = request.path_params.get("campaignId")
    return str(value) if value is not None else None


async def list_programs(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await loyalty.list_programs(conn, project_id(request), request.query_params.multi_items())
    return ORJSONResponse(body)


async def create_program(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        program = await loyalty.create_program(conn, ctx.redis, project_id(request), body, request_id_of(request))
    await definitions.bump(ctx.redis, project_id(request))
    await activity.announce(ctx.redis, project_id(request))
    return ORJSONResponse(program)


async def get_program(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        program = await campaigns.get(conn, project_id(request), row["id"])
    return ORJSONResponse(program)


async def update_program(request: Request) -> ORJSONResponse:
    body = await read_object(request, clears=campaigns.CLEARS)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        program = await campaigns.update(conn, ctx.redis, project_id(request), row["id"], body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(program)


async def delete_program(request: Request) -> ORJSONResponse:
    ctx = context(request)
    force = request.query_params.get("force", "false").lower() == "true"
    async with ctx.pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        action = await campaigns.delete(
            conn, ctx.redis, project_id(request), row["id"], force=force, request_id=request_id_of(request)
        )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(action, status_code=202)


# --- members ---


async def list_members(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        body = await loyalty.list_members(
            conn, ctx.redis, project_id(request), request.path_params["campaignId"], request.query_params
        )
    return ORJSONResponse(body)


async def add_member(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        member = await loyalty.add_member(conn, ctx.redis, project_id(request), request.path_params["campaignId"], body)
    return ORJSONResponse(member)


async def get_member(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        member = await loyalty.member_view(conn, ctx.redis, project_id(request), card)
    return ORJSONResponse(member)


async def member_balance(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        balance = await loyalty.adjust_balance(conn, ctx.redis, ctx.pool, project_id(request), card, body)
    return ORJSONResponse(balance)


async def member_transfers(request: Request) -> ORJSONResponse:
    body = await read_json(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        member = await loyalty.transfer(conn, ctx.redis, ctx.pool, project_id(request), card, body)
    return ORJSONResponse(member)


async def member_transactions(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        body = await loyalty.transactions(conn, project_id(request), card, request.query_params.multi_items())
    return ORJSONResponse(body)


async def program_transactions(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await loyalty.program_transactions(
            conn, project_id(request), request.path_params["campaignId"], request.query_params
        )
    return ORJSONResponse(body)


async def member_activity(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        body = await loyalty.activity(conn, project_id(request), card)
    return ORJSONResponse(body)


async def member_pending(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        body = await loyalty.list_pending(conn, project_id(request), card=card, query=request.query_params)
    return ORJSONResponse(body)


async def program_pending(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        body = await loyalty.list_pending(conn, project_id(request), campaign_id=row["id"], query=request.query_params)
    return ORJSONResponse(body)


async def activate_pending(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"])
        body = await loyalty.activate_pending(
            conn, ctx.redis, ctx.pool, project_id(request), card, request.path_params["pendingPointsId"]
        )
    return ORJSONResponse(body)


async def adjust_pending(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"])
        pending = await loyalty.adjust_pending(
            conn, project_id(request), card, request.path_params["pendingPointsId"], body
        )
    return ORJSONResponse(pending)


async def cancel_pending(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"])
        await loyalty.cancel_pending(conn, project_id(request), card, request.path_params["pendingPointsId"])
    return Response(status_code=204)


async def redeem_reward(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"], _program(request))
        redemption = await reward_redemptions.redeem_reward(
            conn, ctx.checkout, project_id(request), card, body, request_id=request_id_of(request)
        )
    return ORJSONResponse(redemption)


async def member_rewards(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"])
        body = await loyalty.member_rewards(conn, project_id(request), card)
    return ORJSONResponse(body)


# --- earning rules ---


async def list_earning_rules(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await loyalty_earning.list_rules(
            conn, project_id(request), request.path_params["campaignId"], request.query_params
        )
    return ORJSONResponse(body)


async def create_earning_rules(request: Request) -> ORJSONResponse:
    body = await read_json(request)
    async with context(request).pool.acquire() as conn:
        created = await loyalty_earning.create_rules(conn, project_id(request), request.path_params["campaignId"], body)
    await activity.announce(context(request).redis, project_id(request))
    return ORJSONResponse(created)


async def get_earning_rule(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty_earning.fetch_rule(
            conn, project_id(request), request.path_params["campaignId"], request.path_params["earningRuleId"]
        )
    return ORJSONResponse(loyalty_earning.rule_view(row))


async def update_earning_rule(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        rule = await loyalty_earning.update_rule(
            conn, project_id(request), request.path_params["campaignId"], request.path_params["earningRuleId"], body
        )
    return ORJSONResponse(rule)


async def delete_earning_rule(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        await loyalty_earning.delete_rule(
            conn, project_id(request), request.path_params["campaignId"], request.path_params["earningRuleId"]
        )
    return Response(status_code=204)


def _set_rule_active(active: bool) -> Any:
    async def handler(request: Request) -> ORJSONResponse:
        async with context(request).pool.acquire() as conn:
            rule = await loyalty_earning.set_rule_active(
                conn,
                project_id(request),
                request.path_params["campaignId"],
                request.path_params["earningRuleId"],
                active,
            )
        return ORJSONResponse(rule)

    return handler


# --- reward assignments of a program ---


async def list_program_rewards(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        body = await rewards.list_assignments(conn, project_id(request), request.query_params, campaign_id=row["id"])
    return ORJSONResponse(body)


async def assign_program_rewards(request: Request) -> ORJSONResponse:
    body = await read_json(request)
    items = body if isinstance(body, list) else [body]
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        created = []
        async with conn.transaction():
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("reward"), str):
                    raise InvalidPayload("Each item needs .reward (a reward id)")
                created.append(
                    await rewards.assign(conn, project_id(request), item["reward"], row["id"], item.get("parameters"))
                )
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(created[0] if not isinstance(body, list) else created)


async def get_program_reward(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        assignment = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], campaign_id=row["id"]
        )
    return ORJSONResponse(rewards.assignment_view(assignment))


async def get_program_reward_details(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        assignment = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], campaign_id=row["id"]
        )
        reward = await rewards.get(conn, project_id(request), assignment["reward_id"])
    return ORJSONResponse(reward)


async def update_program_reward(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        assignment = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], campaign_id=row["id"]
        )
        updated = await rewards.update_assignment(conn, project_id(request), assignment, body)
    await definitions.bump(ctx.redis, project_id(request))
    return ORJSONResponse(updated)


async def delete_program_reward(request: Request) -> Response:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        assignment = await rewards.fetch_assignment(
            conn, project_id(request), request.path_params["assignmentId"], campaign_id=row["id"]
        )
        await rewards.delete_assignment(conn, project_id(request), assignment)
    await definitions.bump(ctx.redis, project_id(request))
    return Response(status_code=204)


_M = "/v1/loyalties/members/{memberId}"
_PM = "/v1/loyalties/{campaignId}/members/{memberId}"
# --- tiers (issue 9) ---


async def list_tiers(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        body = await loyalty_tiers.list_page(conn, project_id(request), row["id"], request.query_params)
    return ORJSONResponse(body)


async def create_tiers(request: Request) -> ORJSONResponse:
    body = await read_json(request)
    async with context(request).pool.acquire() as conn:
        row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
        created = await loyalty_tiers.create(conn, project_id(request), row["id"], body)
    return ORJSONResponse(created)


async def _tier(request: Request, conn: Any) -> Any:
    row = await loyalty.program_row(conn, project_id(request), request.path_params["campaignId"])
    return await loyalty_tiers.fetch(conn, project_id(request), row["id"], request.path_params["loyaltyTierId"])


async def get_tier(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        tier = await _tier(request, conn)
    return ORJSONResponse(loyalty_tiers.view(tier))


async def tier_earning_rules(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        tier = await _tier(request, conn)
        ids = list(tier["earning_rules"] or {})
        body = await loyalty_earning.rules_by_id(conn, project_id(request), tier["campaign_id"], ids)
    return ORJSONResponse(body)


async def tier_rewards(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        tier = await _tier(request, conn)
        body = await loyalty_tiers.tier_rewards(conn, project_id(request), tier)
    return ORJSONResponse(body)


async def member_tiers(request: Request) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        card = await loyalty.member_card(conn, project_id(request), request.path_params["memberId"])
        body = await loyalty_tiers.member_tiers(conn, ctx.redis, project_id(request), card)
    return ORJSONResponse(body)


routes = [
    resource("/v1/loyalties", GET=list_programs, POST=create_program),
    resource(f"{_M}/tiers", GET=member_tiers),
    resource(_M, GET=get_member),
    resource(f"{_M}/balance", POST=member_balance),
    resource(f"{_M}/transactions", GET=member_transactions),
    resource(f"{_M}/activity", GET=member_activity),
    resource(f"{_M}/pending-points", GET=member_pending),
    resource(f"{_M}/pending-points/{{pendingPointsId}}/activate", POST=activate_pending),
    resource(f"{_M}/pending-points/{{pendingPointsId}}/balance", POST=adjust_pending),
    resource(f"{_M}/pending-points/{{pendingPointsId}}/cancel", POST=cancel_pending),
    resource(f"{_M}/redemption", POST=redeem_reward),
    resource(f"{_M}/rewards", GET=member_rewards),
    resource("/v1/loyalties/{campaignId}", GET=get_program, PUT=update_program, DELETE=delete_program),
    resource("/v1/loyalties/{campaignId}/members", GET=list_members, POST=add_member),
    resource(_PM, GET=get_member),
    resource(f"{_PM}/balance", POST=member_balance),
    resource(f"{_PM}/transfers", POST=member_transfers),
    resource(f"{_PM}/transactions", GET=member_transactions),
    resource(f"{_PM}/activity", GET=member_activity),
    resource(f"{_PM}/pending-points", GET=member_pending),
    resource(f"{_PM}/redemption", POST=redeem_reward),
    resource("/v1/loyalties/{campaignId}/transactions", GET=program_transactions),
    resource("/v1/loyalties/{campaignId}/tiers", GET=list_tiers, POST=create_tiers),
    resource("/v1/loyalties/{campaignId}/tiers/{loyaltyTierId}", GET=get_tier),
    resource("/v1/loyalties/{campaignId}/tiers/{loyaltyTierId}/earning-rules", GET=tier_earning_rules),
    resource("/v1/loyalties/{campaignId}/tiers/{loyaltyTierId}/rewards", GET=tier_rewards),
    resource("/v1/loyalties/{campaignId}/pending-points", GET=program_pending),
    resource("/v1/loyalties/{campaignId}/earning-rules", GET=list_earning_rules, POST=create_earning_rules),
    resource(
        "/v1/loyalties/{campaignId}/earning-rules/{earningRuleId}",
        GET=get_earning_rule,
        PUT=update_earning_rule,
        DELETE=delete_earning_rule,
    ),
    resource("/v1/loyalties/{campaignId}/earning-rules/{earningRuleId}/enable", POST=_set_rule_active(True)),
    resource("/v1/loyalties/{campaignId}/earning-rules/{earningRuleId}/disable", POST=_set_rule_active(False)),
    resource("/v1/loyalties/{campaignId}/rewards", GET=list_program_rewards, POST=assign_program_rewards),
    resource("/v1/loyalties/{campaignId}/reward-assignments", GET=list_program_rewards),
    resource(
        "/v1/loyalties/{campaignId}/rewards/{assignmentId}",
        GET=get_program_reward,
        PUT=update_program_reward,
        DELETE=delete_program_reward,
    ),
    resource("/v1/loyalties/{campaignId}/reward-assignments/{assignmentId}", GET=get_program_reward),
    resource("/v1/loyalties/{campaignId}/reward-assignments/{assignmentId}/reward", GET=get_program_reward_details),
]
