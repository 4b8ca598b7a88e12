"""Requested redeemables, resolved against live state and definitions into the engine's input.

A voucher takes its definition from its own fields where it overrides its campaign's
voucher template, and from the template otherwise; its dates and validity windows
likewise. A promotion stack expands into its tiers, in the stack's order. Anything
that does not exist becomes a redeemable carrying a ``not_found`` error, which the
engine reports as INAPPLICABLE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from voucherd.checkout.hot_definitions import ProjectDefinitions
from voucherd.checkout.live_state import LiveState, VoucherLive
from voucherd.checkout.redeem_request import Redeemable


@dataclass
class Resolved:
    """One redeemable as the engine sees it, plus what the commit and the answer need."""

    request: Redeemable
    engine: dict[str, Any]
    object: str  # voucher | promotion_tier
    voucher: VoucherLive | None = None
    campaign: dict[str, Any] | None = None
    tier: dict[str, Any] | None = None
    own: dict[str, Any] = field(default_factory=dict)  # the voucher's own definition fields

    @property
    def found(self) -> bool:
        return "error" not in self.engine

    @property
    def code(self) -> str:
        return str(self.engine["id"])


def not_found(object_type: str, object_id: str) -> dict[str, Any]:
    return {
        "code": 404,
        "key": "not_found",
        "message": "Resource not found",
        "details": f"Cannot find {object_type} with id {object_id}",
        "resource_id": object_id,
        "resource_type": object_type,
    }


def _from_ms(raw: str | None) -> datetime | None:
    if not raw:
        return None
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)


def _categories(defs: ProjectDefinitions, category_id: str | None) -> list[dict[str, Any]]:
    return defs.category_list(category_id)


def _voucher(defs: ProjectDefinitions, request: Redeemable, live: VoucherLive) -> Resolved:
    state = live.state
    own: dict[str, Any] = orjson.loads(state.get("def") or "{}")
    campaign = defs.campaigns.get(state.get("campaign_id") or "")
    template: dict[str, Any] = (campaign or {}).get("voucher") or {}
    voucher_type = state.get("type", "DISCOUNT_VOUCHER")
    active = state.get("active") == "1" and (campaign is None or campaign["active"])
    entry: dict[str, Any] = {
        "id": request.id,
        "object": "voucher",
        "active": active,
        "start_date": _from_ms(state.get("start")) or (campaign or {}).get("start_date"),
        "expiration_date": _from_ms(state.get("exp")) or (campaign or {}).get("expiration_date"),
        "quantity": live.int_field("quantity") if state.get("quantity") else None,
        "redeemed_quantity": live.int_field("redeemed"),
        "locked": live.held.get("redeemed", 0),
        "holder_id": state.get("holder_id") or None,
        "is_referral_code": bool(own.get("is_referral_code")),
        "referrer_id": (state.get("holder_id") or None) if own.get("is_referral_code") else None,
        "metadata": own.get("metadata") or {},
        "categories": _categories(defs, own.get("category_id") or (campaign or {}).get("category_id")),
        "counters": live.counts,
    }
    for name in ("validity_timeframe", "validity_day_of_week", "validity_hours"):
        entry[name] = own.get(name) if own.get(name) is not None else (campaign or {}).get(name)
    if voucher_type == "GIFT_VOUCHER":
        gift = own.get("gift") or template.get("gift") or {}
        entry["gift"] = {
            "balance": live.int_field("balance") - live.held.get("balance", 0),
            "effect": gift.get("effect") or "APPLY_TO_ORDER",
        }
        entry["credits"] = request.credits
    elif voucher_type == "LOYALTY_CARD":
        balance = live.int_field("points") - live.held.get("points", 0)
        entry["loyalty_card"] = {"balance": balance}
        reward = _coin_reward(defs, request, state.get("campaign_id") or "")
        if request.reward_id is None:
            entry["error"] = {
                "code": 400,
                "key": "missing_reward",
                "message": "Missing reward",
                "details": f"Loyalty card {request.id} is redeemed with a reward: send reward.id",
            }
        elif reward is None:
            entry["error"] = {
                **not_found("reward", str(request.reward_id)),
                "details": f"Cannot find a pay-with-points reward {request.reward_id} of this card's program",
            }
        else:
            # Without points asked for, as many as the order needs (the engine caps them at its total).
            entry["reward"] = {
                "points": request.reward_points or max(balance, 0),
                "coin": reward["coin"],
                "id": request.reward_id,
                "assignment_id": reward["assignment_id"],
                "name": reward["name"],
            }
    else:
        discount = own.get("discount") or template.get("discount")
        if discount is None:
            entry["error"] = {**not_found("voucher", request.id), "details": f"Voucher {request.id} has no discount"}
        else:
            entry["discount"] = discount
    campaign_id = state.get("campaign_id") or ""
    own_rules = defs.rules.get(state.get("id", ""), [])
    # Codes that only follow their campaign share one compiled definition; a code with its own
    # discount or rules has its own, named by its stored definition (a changed one is a new key).
    shared = campaign_id and not own_rules and not own.get("discount")
    entry["compiled"] = defs.compiled_redeemable(
        ("campaign", campaign_id, voucher_type) if shared else ("code", request.id, state.get("def") or ""),
        entry.get("discount"),
        [*defs.rules.get(campaign_id, []), *own_rules],
    )
    return Resolved(request, entry, "voucher", voucher=live, campaign=campaign, own=own)


def _coin_reward(defs: ProjectDefinitions, request: Redeemable, campaign_id: str) -> dict[str, Any] | None:
    """The COIN parameters of the requested reward, when it is assigned to the card's program."""
    assignment = defs.reward_assignments.get(campaign_id, {}).get(request.reward_id or "")
    reward = defs.rewards.get(request.reward_id or "")
    if assignment is None or reward is None or reward["type"] != "COIN":
        return None
    return {"coin": reward["parameters"].get("coin") or {}, "assignment_id": assignment["id"], "name": reward["name"]}


def _tier(defs: ProjectDefinitions, request: Redeemable, tier: dict[str, Any], counts: dict[str, int]) -> Resolved:
    campaign = defs.campaigns.get(tier["campaign_id"])
    entry: dict[str, Any] = {
        "id": tier["id"],
        "object": "promotion_tier",
        "discount": (tier.get("action") or {}).get("discount") or {},
        "active": tier["active"] and (campaign is None or campaign["active"]),
        "start_date": tier.get("start_date") or (campaign or {}).get("start_date"),
        "expiration_date": tier.get("expiration_date") or (campaign or {}).get("expiration_date"),
        "metadata": tier.get("metadata") or {},
        "categories": _categories(defs, tier.get("category_id") or (campaign or {}).get("category_id")),
        "counters": counts,
    }
    for name in ("validity_timeframe", "validity_day_of_week", "validity_hours"):
        entry[name] = tier.get(name) if tier.get(name) is not None else (campaign or {}).get(name)
    entry["compiled"] = defs.compiled_redeemable(
        ("tier", tier["id"]),
        entry["discount"],
        [*defs.rules.get(tier["campaign_id"], []), *defs.rules.get(tier["id"], [])],
    )
    return Resolved(request, entry, "promotion_tier", campaign=campaign, tier=tier)


def resolve(defs: ProjectDefinitions, live: LiveState, requested: list[Redeemable]) -> list[Resolved]:
    resolved: list[Resolved] = []
    for request in requested:
        if request.object == "voucher":
            voucher = live.vouchers.get(request.id)
            campaign_id = voucher.state.get("campaign_id") if voucher is not None else None
            if voucher is None or (campaign_id and campaign_id not in defs.campaigns):
                # No such code, or its campaign was deleted (its codes leave Redis a moment later).
                resolved.append(
                    Resolved(
                        request,
                        {"id": request.id, "object": "voucher", "error": not_found("voucher", request.id)},
                        "voucher",
                    )
                )
            else:
                resolved.append(_voucher(defs, request, voucher))
        elif request.object == "promotion_tier":
            tier = defs.tiers.get(request.id)
            if tier is None:
                resolved.append(
                    Resolved(
                        request,
                        {
                            "id": request.id,
                            "object": "promotion_tier",
                            "error": not_found("promotion_tier", request.id),
                        },
                        "promotion_tier",
                    )
                )
            else:
                resolved.append(_tier(defs, request, tier, live.tier_counts.get(tier["id"], {})))
        else:
            stack = defs.stacks.get(request.id)
            if stack is None:
                resolved.append(
                    Resolved(
                        request,
                        {
                            "id": request.id,
                            "object": "promotion_tier",
                            "error": not_found("promotion_stack", request.id),
                        },
                        "promotion_tier",
                    )
                )
                continue
            for tier_id in stack["tier_ids"]:
                tier = defs.tiers.get(tier_id)
                if tier is not None:
                    resolved.append(_tier(defs, request, tier, live.tier_counts.get(tier_id, {})))
    return resolved


def voucher_codes(requested: list[Redeemable]) -> list[str]:
    return [r.id for r in requested if r.object == "voucher"]
