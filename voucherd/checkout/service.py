"""The checkout hot path: stackable validation and redemption.

Validation = one Redis round trip (``live_state.read``) + the engine + encoding.
Redemption = the same plus one atomic commit (``counters.apply``) that re-checks
every guard before it moves anything and appends the redemption event to the
project's stream, from which the worker persists it. Nothing here waits for
PostgreSQL, except a definitions reload after a change and the first sight of a
voucher that Redis does not hold yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

import engine
from voucherd.checkout import counters, live_state, pending_redemptions, redemption_counters, redemption_records
from voucherd.checkout.counters import Group, Op
from voucherd.checkout.hot_definitions import DefinitionsCache, ProjectDefinitions
from voucherd.checkout.redeem_request import RedeemRequest
from voucherd.checkout.redeemables import Resolved, resolve, voucher_codes
from voucherd.checkout.wallet_cache import WalletCache
from voucherd.platform import instruments, keys
from voucherd.platform.errors import InvalidPayload, VoucherdError
from voucherd.platform.ids import new_id
from voucherd.platform.messages import StreamAnnouncer
from voucherd.platform.scripts import Scripts
from voucherd.platform.timeutil import iso


class RedemptionFailed(VoucherdError):
    """A redemption that could not apply (ALL mode, or nothing applicable): the first failure's error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("details") or error.get("message"))
        self._error = error

    def body(self, request_id: str) -> dict[str, Any]:
        return {**self._error, "code": 400, "request_id": request_id}


@dataclass
class Services:
    """What the checkout needs from its process: connections, scripts and caches."""

    redis: aioredis.Redis
    scripts: Scripts
    pool: asyncpg.Pool
    definitions: DefinitionsCache
    streams: StreamAnnouncer
    wallets: WalletCache = field(default_factory=WalletCache)  # customers' wallets compiled for qualifications


@dataclass
class Evaluation:
    request: RedeemRequest
    defs: ProjectDefinitions
    live: live_state.LiveState
    resolved: list[Resolved]
    result: dict[str, Any]
    customer: dict[str, Any]
    now: datetime
    now_ms: int


def _resolve_order(order: dict[str, Any], defs: ProjectDefinitions) -> dict[str, Any]:
    """Cart items named by source_id get their catalog ids, so rules on products match them."""
    items = order.get("items")
    if not items:
        return order
    resolved_items = []
    for requested in items:
        line = dict(requested)
        source_id = line.get("source_id")
        if source_id and not line.get("product_id") and not line.get("sku_id"):
            kind = line.get("related_object") or "product"
            found = defs.source_ids.get((kind, source_id))
            if found:
                line["sku_id" if kind == "sku" else "product_id"] = found
        if line.get("sku_id") and not line.get("product_id") and line["sku_id"] in defs.sku_products:
            line["product_id"] = defs.sku_products[line["sku_id"]]
        resolved_items.append(line)
    return {**order, "items": resolved_items}


def engine_order(order: dict[str, Any], defs: ProjectDefinitions) -> Any:
    """The cart as the engine's Order; what the engine cannot read (a negative amount) is the request's fault."""
    try:
        return engine.build_order(_resolve_order(order, defs))
    except engine.EngineInputError as exc:
        raise InvalidPayload(f"Property .order is invalid: {exc}") from None


async def evaluate(services: Services, project_id: str, request: RedeemRequest, *, for_redemption: bool) -> Evaluation:
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    live = await live_state.read(
        services.redis,
        services.scripts,
        services.pool,
        project_id,
        voucher_codes(request.redeemables),
        tier_ids=_tier_ids(services.definitions.cached(project_id), request),
        now=now,
        session_key=request.session.key if request.session else None,
        customer=request.customer,
        create_customer=for_redemption,
        order_source_id=(request.order or {}).get("source_id") if not (request.order or {}).get("id") else None,
    )
    defs = await services.definitions.get(project_id, live.version)
    resolved = resolve(defs, live, request.redeemables)
    requested_customer = request.customer or {}
    customer = {
        **requested_customer,
        "id": live.customer_id or requested_customer.get("id"),
        "metadata": requested_customer.get("metadata") or {},
        "segments": live.segments,
    }
    context = {"collections": defs.collections, "prices": defs.prices, "metadata": request.metadata}
    started = time.perf_counter()
    order = engine_order(request.order, defs)
    result = engine.evaluate_stack([r.engine for r in resolved], order, customer, now, defs.stacking_rules, context)
    instruments.ENGINE_STACK.observe(time.perf_counter() - started)
    return Evaluation(request, defs, live, resolved, result, customer, now, now_ms)


def _tier_ids(defs: ProjectDefinitions | None, request: RedeemRequest) -> list[str]:
    """Tiers whose counts the read fetches; a stack's tiers come from the definitions cached so far."""
    ids = [r.id for r in request.redeemables if r.object == "promotion_tier"]
    if defs is not None:
        for r in request.redeemables:
            if r.object == "promotion_stack" and r.id in defs.stacks:
                ids += defs.stacks[r.id]["tier_ids"]
    return ids


def _tracking_id(evaluation: Evaluation) -> str:
    if evaluation.request.tracking_id:
        return evaluation.request.tracking_id
    customer = evaluation.request.customer or {}
    ref = customer.get("source_id") or evaluation.customer.get("id")
    return f"track_{ref}" if ref else new_id("track")


def _scope(item: Resolved) -> str:
    """Whose counts a redeemable moves: its campaign's, else the code's own; a tier's own."""
    if item.object == "voucher" and item.voucher is not None:
        return str(item.voucher.state.get("campaign_id") or item.voucher.state.get("id", item.code))
    return str((item.tier or {}).get("id", item.code))


def _count_ops(
    project_id: str, item: Resolved, defs: ProjectDefinitions, customer_id: str | None, now: datetime
) -> list[Op]:
    """Every redemption bumps its scope's counts; those a rule caps are guarded by the cap."""
    scope = _scope(item)
    owners = (
        scope,
        (item.campaign or {}).get("id", ""),
        (item.voucher.state.get("id", "") if item.voucher else (item.tier or {}).get("id", "")),
    )
    plan = defs.count_plan(owners)
    key = keys.counters(project_id)
    suffixes = redemption_counters.period_suffixes(now)
    ops = []
    for prefix, period, cap in plan:
        if prefix == "c" and not customer_id:
            continue
        name = redemption_counters.field_name(prefix, scope, suffixes[period], customer_id or "")
        ops.append(Op(key, name, 1, max=cap, reason="redemption_rules_violated" if cap is not None else ""))
    return ops


def _counter_group(
    project_id: str, item: Resolved, entry: dict[str, Any], evaluation: Evaluation | None = None
) -> Group | None:
    """The guarded counter moves of one applicable redeemable.

    Without an evaluation (session locks) only the voucher's own counters are reserved.
    """
    ops: list[Op] = []
    reason = "redemption_rules_violated"
    if item.object == "voucher" and item.voucher is not None:
        code = item.code
        state_key = keys.voucher_state(project_id, code)
        lock_key, amounts_key = keys.voucher_locks(project_id, code), keys.voucher_lock_amounts(project_id, code)
        ops.append(Op(state_key, "redeemed", 1, max_field="quantity", lock_key=lock_key, lock_amounts_key=amounts_key))
        reason = "quantity_exceeded"
        result = entry.get("result") or {}
        credits = (result.get("gift") or {}).get("credits")
        if credits:
            ops.append(Op(state_key, "balance", -int(credits), min=0, lock_key=lock_key, lock_amounts_key=amounts_key))
            reason = "gift_amount_exceeded"
        points = (result.get("loyalty_card") or {}).get("points")
        if points:
            ops.append(Op(state_key, "points", -int(points), min=0, lock_key=lock_key, lock_amounts_key=amounts_key))
            reason = "loyalty_card_points_exceeded"
    if evaluation is not None:
        count_ops = _count_ops(project_id, item, evaluation.defs, evaluation.customer.get("id"), evaluation.now)
        if any(op.max is not None for op in count_ops) and not ops:
            reason = "redemption_rules_violated"
        ops += count_ops
    return Group(reason, ops) if ops else None


def _session_view(evaluation: Evaluation, key: str) -> dict[str, Any]:
    session = evaluation.request.session
    assert session is not None
    ttl: float | int = int(session.ttl) if session.ttl.is_integer() else session.ttl
    return {"key": key, "type": "LOCK", "ttl": ttl, "ttl_unit": session.ttl_unit}


def _inapplicable(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """An entry the commit (or a session lock) refused after the engine had found it applicable."""
    error = {
        "code": 400,
        "key": key,
        "message": engine.stacking.MESSAGES.get(key, key),
        "details": f"{entry.get('object')} {entry.get('id')}: {key}",
    }
    return {
        "status": "INAPPLICABLE",
        "id": entry["id"],
        "object": entry["object"],
        "result": {"error": error, "details": {"key": key, "message": error["message"]}},
    }


def _shape(result: dict[str, Any], evaluation: Evaluation) -> dict[str, Any]:
    """Voucherify omits the failure lists when they are empty."""
    body = {
        "valid": result["valid"],
        "redeemables": result["redeemables"],
        "order": result["order"],
        "tracking_id": _tracking_id(evaluation),
        "stacking_rules": result["stacking_rules"],
    }
    for name in ("inapplicable_redeemables", "skipped_redeemables"):
        if result.get(name):
            body[name] = result[name]
    return body


async def validate(services: Services, project_id: str, request: RedeemRequest) -> dict[str, Any]:
    evaluation = await evaluate(services, project_id, request, for_redemption=False)
    result = evaluation.result
    body = {"id": new_id("valid"), **_shape(result, evaluation)}
    if request.session is not None:
        body["session"] = await _lock_session(services, project_id, evaluation, body)
    return body


async def _lock_session(
    services: Services, project_id: str, evaluation: Evaluation, body: dict[str, Any]
) -> dict[str, Any]:
    """Reserve quantity, credits and points of the applicable vouchers under the session key."""
    session = evaluation.request.session
    assert session is not None
    key = session.key or new_id("ssn")
    pairs = [
        (entry, group)
        for entry, item in zip(body["redeemables"], _by_position(evaluation), strict=True)
        if entry["status"] == "APPLICABLE" and (group := _counter_group(project_id, item, entry)) is not None
    ]
    if pairs:
        results = await counters.apply(
            services.scripts,
            "LOCK",
            [group for _, group in pairs],
            now_ms=evaluation.now_ms,
            session_key=key,
            lock_until_ms=evaluation.now_ms + session.ttl_ms,
        )
        for (entry, _group), outcome in zip(pairs, results, strict=True):
            if outcome != counters.OK:  # someone took the last unit between our read and the lock
                failed = _inapplicable(entry, outcome)
                body["redeemables"][body["redeemables"].index(entry)] = failed
                body.setdefault("inapplicable_redeemables", []).append(failed)
                body["valid"] = False
    return _session_view(evaluation, key)


def _by_position(evaluation: Evaluation) -> list[Resolved]:
    """The resolved redeemables in the order the engine reports them (request order, stacks expanded)."""
    by_id: dict[tuple[str, str], Resolved] = {(r.engine["object"], r.engine["id"]): r for r in evaluation.resolved}
    return [by_id[(e["object"], e["id"])] for e in evaluation.result["redeemables"]]


# --- redemption ----------------------------------------------------------------------------------


def _customer_view(evaluation: Evaluation) -> dict[str, Any] | None:
    customer_id = evaluation.customer.get("id")
    if not customer_id:
        return None
    requested = evaluation.request.customer or {}
    view = {"id": customer_id, "object": "customer", "metadata": requested.get("metadata") or {}}
    for name in ("source_id", "name", "email"):
        if requested.get(name) is not None:
            view[name] = requested[name]
    return view


def _order_view(evaluation: Evaluation, order: dict[str, Any]) -> dict[str, Any]:
    requested = evaluation.request.order or {}
    order_id = requested.get("id") or evaluation.live.order_id or new_id("ord")
    view = {**order, "id": order_id, "object": "order", "status": "PAID"}
    if requested.get("source_id"):
        view["source_id"] = requested["source_id"]
    if requested.get("metadata") is not None:
        view["metadata"] = requested["metadata"]
    if evaluation.customer.get("id"):
        view["customer_id"] = evaluation.customer["id"]
    return view


def _child(evaluation: Evaluation, item: Resolved, entry: dict[str, Any], parent_id: str) -> dict[str, Any]:
    """A child redemption's own fields; the event's ``shared`` part completes it (redemption_records.expand)."""
    result = entry.get("result") or {}
    child: dict[str, Any] = {
        "id": new_id("r"),
        "redemption": parent_id,
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "related_redemptions": {"rollbacks": [], "redemptions": []},
    }
    credits = (result.get("gift") or {}).get("credits")
    points = (result.get("loyalty_card") or {}).get("points")
    child["amount"] = int(credits or points or 0)
    if credits:
        child["gift"] = {"amount": int(credits)}
    if points:
        child["loyalty_card"] = {"points": int(points)}
        reward = item.engine.get("reward")
        if reward:  # pay with points (issue 9): the COIN reward the points paid for
            child["reward"] = {
                "id": reward["id"],
                "name": reward.get("name"),
                "assignment_id": reward.get("assignment_id"),
                "type": "COIN",
                "parameters": {"coin": reward["coin"]},
                "object": "reward",
            }
    if item.object == "voucher" and item.voucher is not None:
        state = item.voucher.state
        campaign = item.campaign or {}
        voucher: dict[str, Any] = {
            "id": state.get("id"),
            "code": item.code,
            "type": state.get("type"),
            "campaign": campaign.get("name"),
            "campaign_id": campaign.get("id"),
            "is_referral_code": bool(item.own.get("is_referral_code")),
            "holder_id": state.get("holder_id") or None,
            "object": "voucher",
        }
        for name in ("discount", "gift", "loyalty_card"):
            if name in item.engine:
                voucher[name] = item.engine[name]
        child.update(related_object_type="voucher", related_object_id=state.get("id"), voucher=voucher)
    else:
        tier = item.tier or {}
        child.update(
            related_object_type="promotion_tier",
            related_object_id=tier.get("id"),
            promotion_tier={
                "id": tier.get("id"),
                "name": tier.get("name"),
                "banner": tier.get("banner"),
                "campaign": {"id": tier.get("campaign_id")},
                "object": "promotion_tier",
            },
        )
    return child


def _failure_error(entries: list[dict[str, Any]]) -> dict[str, Any]:
    for entry in entries:
        if entry["status"] == "INAPPLICABLE":
            error = dict((entry.get("result") or {}).get("error") or {})
            error.setdefault("key", "invalid_redeemables")
            error.setdefault("message", error["key"])
            error.setdefault("details", f"{entry['object']} {entry['id']} cannot be redeemed")
            return error
    return {"key": "invalid_redeemables", "message": "Nothing to redeem", "details": "No redeemable applies"}


async def redeem(services: Services, project_id: str, request: RedeemRequest, *, request_id: str) -> dict[str, Any]:
    evaluation = await evaluate(services, project_id, request, for_redemption=True)
    result = evaluation.result
    mode = result["stacking_rules"].get("redeemables_application_mode", "PARTIAL")
    entries = result["redeemables"]
    applicable = [
        (e, item) for e, item in zip(entries, _by_position(evaluation), strict=True) if e["status"] == "APPLICABLE"
    ]
    if not applicable or (mode == "ALL" and not result["valid"]):
        raise RedemptionFailed(_failure_error(entries))

    date = iso(evaluation.now)
    parent_id = new_id("r")
    order = _order_view(evaluation, result["order"])
    # What the parent and every child share, carried once (the order and customer beside it, at the top).
    shared: dict[str, Any] = {
        "object": "redemption",
        "date": date,
        "customer_id": evaluation.customer.get("id"),
        "tracking_id": _tracking_id(evaluation),
        "metadata": request.metadata,
        "order": None,
        "channel": {"channel_id": None, "channel_type": "API"},
        "customer": None,
    }
    if request.session is not None and request.session.key:
        shared["session"] = {"key": request.session.key}
    groups = []
    for entry, item in applicable:
        group = _counter_group(project_id, item, entry, evaluation) or Group("invalid_redeemables", [])
        group.event = _child(evaluation, item, entry, parent_id)
        groups.append(group)
    event: dict[str, Any] = {
        "type": "redemption",
        "project_id": project_id,
        "request_id": request_id,
        "date": date,
        "shared": shared,
        "parent": {
            "id": parent_id,
            "redemption": None,
            "result": "SUCCESS",
            "status": "SUCCEEDED",
            "related_object_type": "redemption",
            "related_object_id": parent_id,
            "amount": sum(int(g.event["amount"]) for g in groups),
        },
        "customer": _customer_view(evaluation),
        "order": order,
    }
    stream_key = await services.streams.stream_key(redemption_records.STREAM, project_id)
    outcomes = await counters.apply(
        services.scripts,
        "ALL" if mode == "ALL" else "PARTIAL",
        groups,
        pending=pending_redemptions.record(event),  # readable at once, before the worker persists it
        now_ms=evaluation.now_ms,
        session_key=request.session.key or "" if request.session else "",
        stream_key=stream_key,
        event=event,
        commit_id=parent_id,  # a retried commit answers its first outcome (voucherd.checkout.counters)
    )
    failed = {i: outcome for i, outcome in enumerate(outcomes) if outcome != counters.OK}
    inapplicable = list(result.get("inapplicable_redeemables") or [])
    for i, outcome in failed.items():
        inapplicable.append(_inapplicable(applicable[i][0], outcome))
    if len(failed) == len(groups) or (mode == "ALL" and failed):
        raise RedemptionFailed(_failure_error(inapplicable))
    event["applied"] = [g.event for i, g in enumerate(groups) if i not in failed]
    parent, children = redemption_records.finalize(event)
    body: dict[str, Any] = {"redemptions": children, "order": order}
    if parent is not None:
        body["parent_redemption"] = parent
    if inapplicable:
        body["inapplicable_redeemables"] = inapplicable
    if result.get("skipped_redeemables"):
        body["skipped_redeemables"] = result["skipped_redeemables"]
    return body
