"""Rollbacks: give back exactly what a redemption took, once.

The redemption is read from Redis's pending events and from PostgreSQL (``pending_redemptions``),
so it can be rolled back the moment its answer left, whether the worker has persisted it or not;
PostgreSQL's copy wins where both have it. The counters move back in one ``apply_counters`` call
that also sets the redemption's rolled-back mark, guarded to go from 0 to 1: a second rollback,
even a concurrent one, finds the mark and moves nothing, whichever source supplied the redemption.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voucherd.checkout import counters, pending_redemptions, redemption_counters, redemption_records
from voucherd.checkout.counters import Group, Op
from voucherd.checkout.pending_redemptions import Pending
from voucherd.checkout.service import Services
from voucherd.platform import keys
from voucherd.platform.errors import (
    AlreadyRolledBack,
    InvalidPayload,
    InvalidRedemption,
    InvalidRedemptionParent,
    NotFound,
)
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso_now


async def _load(services: Services, project_id: str, redemption_id: str) -> tuple[dict[str, Any], Pending]:
    """The redemption's body (its pending rollback applied), and what Redis holds pending about it.

    Redis first, then PostgreSQL: the worker forgets a pending event only after committing it.
    """
    pending = await pending_redemptions.read(services.redis, project_id, [redemption_id])
    async with services.pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT body FROM redemptions WHERE project_id = $1 AND id = $2 AND object = 'redemption'",
            project_id,
            redemption_id,
        )
    if body is None:
        body = pending.redemptions.get(redemption_id)
    if body is None:
        raise NotFound.of("redemption", redemption_id)
    return pending.overlay(body), pending


def _check_rollbackable(body: dict[str, Any]) -> None:
    if body.get("status") == "ROLLED_BACK":
        raise AlreadyRolledBack(f"Redemption {body['id']} was already rolled back")
    if body.get("result", "SUCCESS") != "SUCCESS":
        raise InvalidRedemption(f"Redemption {body['id']} did not succeed, so there is nothing to roll back")


def _count_ops(project_id: str, body: dict[str, Any]) -> list[Op]:
    """A rolled-back redemption no longer counts towards the limits, in the periods it was made in."""
    voucher = body.get("voucher") or {}
    scope = voucher.get("campaign_id") or voucher.get("id") or (body.get("promotion_tier") or {}).get("id")
    if not scope:
        return []
    date = datetime.fromisoformat(body["date"].replace("Z", "+00:00"))
    customer_id = body.get("customer_id")
    names = redemption_counters.distinct_fields(scope, date, customer_id)
    return [Op(keys.counters(project_id), name, -1) for name in names if customer_id or not name.startswith("c:")]


def _ops(project_id: str, body: dict[str, Any]) -> list[Op]:
    """The inverse moves of one child redemption."""
    voucher = body.get("voucher")
    if body.get("related_object_type") != "voucher" or not voucher:
        return _count_ops(project_id, body)
    state = keys.voucher_state(project_id, voucher["code"])
    ops = [Op(state, "redeemed", -1), *_count_ops(project_id, body)]
    credits = (body.get("gift") or {}).get("amount")
    if credits:
        ops.append(Op(state, "balance", int(credits)))
    points = (body.get("loyalty_card") or {}).get("points")
    if points:
        ops.append(Op(state, "points", int(points)))
    return ops


def _rollback_body(
    original: dict[str, Any], *, date: str, reason: str | None, tracking_id: str | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    body = {
        key: original.get(key)
        for key in (
            "customer_id",
            "order",
            "channel",
            "customer",
            "related_object_type",
            "related_object_id",
            "voucher",
            "promotion_tier",
        )
        if original.get(key) is not None
    }
    body.update(
        id=new_id("rr"),
        object="redemption_rollback",
        date=date,
        redemption=original["id"],
        reason=reason,
        result="SUCCESS",
        status="SUCCEEDED",
        tracking_id=tracking_id or original.get("tracking_id"),
        metadata=metadata,
        amount=-int(original.get("amount") or 0),
    )
    if (original.get("gift") or {}).get("amount"):
        body["gift"] = {"amount": -int(original["gift"]["amount"])}
    if (original.get("loyalty_card") or {}).get("points"):
        body["loyalty_card"] = {"points": -int(original["loyalty_card"]["points"])}
    return body


def _options(params: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    reason, tracking_id, metadata = params.get("reason"), params.get("tracking_id"), params.get("metadata") or {}
    for name, value in (("reason", reason), ("tracking_id", tracking_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidPayload(f"Property .{name} should be string")
    if not isinstance(metadata, dict):
        raise InvalidPayload("Property .metadata should be object")
    return reason, tracking_id, metadata


async def _commit(
    services: Services,
    project_id: str,
    originals: list[dict[str, Any]],
    bodies: list[dict[str, Any]],
    event: dict[str, Any],
    guard_id: str,
) -> None:
    """Move everything back and append the event, or (already rolled back) nothing at all.

    The first group carries the once-guard and every inverse move; the others carry only
    the remaining rollback bodies, so the script's ``applied`` list is exactly the bodies.
    """
    guard = Op(keys.rolled_back(project_id), guard_id, 1, max=1)
    ops = [guard] + [op for original in originals for op in _ops(project_id, original)]
    groups = [Group("already_rolled_back", ops, bodies[0])]
    groups += [Group("already_rolled_back", [], body) for body in bodies[1:]]
    stream_key = await services.streams.stream_key(redemption_records.STREAM, project_id)
    outcome = await counters.apply(
        services.scripts,
        "ALL",
        groups,
        now_ms=int(datetime.now(UTC).timestamp() * 1000),
        stream_key=stream_key,
        event=event,
        pending=pending_redemptions.record(event),
    )
    if outcome[0] != counters.OK:
        raise AlreadyRolledBack(f"Redemption {guard_id} was already rolled back")


async def rollback_single(
    services: Services, project_id: str, redemption_id: str, params: dict[str, Any], *, request_id: str
) -> dict[str, Any]:
    reason, tracking_id, metadata = _options(params)
    original, _ = await _load(services, project_id, redemption_id)
    if original.get("related_object_type") == "redemption" or original.get("redemption"):
        raise InvalidRedemption(
            f"Redemption {redemption_id} is part of a stacked redemption: roll back its parent with "
            "POST /v1/redemptions/{parentId}/rollbacks"
        )
    _check_rollbackable(original)
    date = iso_now()
    body = _rollback_body(original, date=date, reason=reason, tracking_id=tracking_id, metadata=metadata)
    event = {
        "type": "rollback",
        "project_id": project_id,
        "request_id": request_id,
        "date": date,
        "parent": None,
        "rolled_back": [redemption_id],
    }
    await _commit(services, project_id, [original], [body], event, redemption_id)
    return body


async def rollback_stacked(
    services: Services, project_id: str, parent_id: str, params: dict[str, Any], *, request_id: str
) -> dict[str, Any]:
    reason, tracking_id, metadata = _options(params)
    parent, pending = await _load(services, project_id, parent_id)
    if parent.get("related_object_type") != "redemption":
        raise InvalidRedemptionParent(f"Redemption {parent_id} is not the parent of a stacked redemption")
    _check_rollbackable(parent)
    if parent_id in pending.redemptions:  # not persisted yet: its children are in the same pending event
        originals = sorted(
            (b for b in pending.redemptions.values() if b.get("redemption") == parent_id),
            key=lambda b: (b["date"], b["id"]),
        )
    else:
        async with services.pool.acquire() as conn:
            children = await conn.fetch(
                "SELECT body FROM redemptions WHERE project_id = $1 AND parent_id = $2 AND object = 'redemption' "
                "ORDER BY date, id",
                project_id,
                parent_id,
            )
        originals = [c["body"] for c in children]
    date = iso_now()
    bodies = [
        _rollback_body(o, date=date, reason=reason, tracking_id=tracking_id, metadata=metadata) for o in originals
    ]
    parent_body = _rollback_body(parent, date=date, reason=reason, tracking_id=tracking_id, metadata=metadata)
    parent_body["amount"] = sum(int(b.get("amount") or 0) for b in bodies)
    event = {
        "type": "rollback",
        "project_id": project_id,
        "request_id": request_id,
        "date": date,
        "parent": parent_body,
        "rolled_back": [o["id"] for o in originals],
        "rolled_back_parent": parent_id,
    }
    await _commit(services, project_id, originals, bodies, event, parent_id)
    return {"rollbacks": bodies, "parent_rollback": parent_body, "order": parent.get("order")}
