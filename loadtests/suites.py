"""The rows of the performance table: what each suite calls, with which bodies, and the goal it must meet.

Shared by the Locust file, the wrk scripts and the report, so that all three agree on every request.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class Suite:
    name: str
    label: str  # the row of DESIGN.md's table
    method: str
    path: str
    make_body: Callable[[random.Random, dict[str, Any]], Body] | None
    goal_p95_ms: float | None  # DESIGN.md: p95 at a steady 1,000 req/s
    goal_peak_rps: float | None  # DESIGN.md: peak throughput
    voucherify: tuple[float, float] | None  # their published avg / p95, ms


def _order(rng: random.Random, seed: dict[str, Any]) -> Body:
    products = rng.sample(seed["products"], k=min(2, len(seed["products"])))
    items = [{"product_id": p["id"], "quantity": rng.randint(1, 3), "price": p["price"]} for p in products]
    amount = sum(i["quantity"] * i["price"] for i in items)
    # Above every "min order" rule the seed creates, so that those tiers apply.
    return {"amount": max(amount, 5000), "items": items}


def _customer(rng: random.Random, seed: dict[str, Any]) -> Body:
    return {"source_id": rng.choice(seed["customers"])}


def single_code(rng: random.Random, seed: dict[str, Any]) -> Body:
    return {
        "redeemables": [{"object": "voucher", "id": rng.choice(seed["codes"])}],
        "order": _order(rng, seed),
        "customer": _customer(rng, seed),
    }


def five_redeemables(rng: random.Random, seed: dict[str, Any]) -> Body:
    """Three coupons, a gift card spending one credit and a promotion tier whose rules the order meets."""
    codes = rng.sample(seed["codes"], k=3)
    applicable = [t["id"] for t in seed["tiers"] if t["rule"] in ("none", "min_order", "items_count")]
    redeemables = [{"object": "voucher", "id": c} for c in codes]
    redeemables.append({"object": "voucher", "id": rng.choice(seed["gift_cards"]), "gift": {"credits": 1}})
    redeemables.append({"object": "promotion_tier", "id": rng.choice(applicable)})
    return {"redeemables": redeemables, "order": _order(rng, seed), "customer": _customer(rng, seed)}


def qualification(rng: random.Random, seed: dict[str, Any]) -> Body:
    # Half the calls come from customers holding a wallet of published codes (200 each in the full seed).
    wallets = seed.get("wallet_customers") or []
    customer = {"source_id": rng.choice(wallets)} if wallets and rng.random() < 0.5 else _customer(rng, seed)
    return {"scenario": "ALL", "customer": customer, "order": _order(rng, seed), "options": {"limit": 50}}


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("floor", "floor: one Redis Lua call (`GET /_floor`)", "GET", "/_floor", None, None, None, None),
        Suite("validation", "code validation", "POST", "/v1/validations", single_code, 3, 4000, (120, 200)),
        Suite("redemption", "code redemption", "POST", "/v1/redemptions", single_code, 5, 3000, (200, 500)),
        Suite(
            "stack_validation",
            "stackable validation (5 redeemables)",
            "POST",
            "/v1/validations",
            five_redeemables,
            5,
            3000,
            (150, 300),
        ),
        Suite(
            "stack_redemption",
            "stackable redemption (5 redeemables)",
            "POST",
            "/v1/redemptions",
            five_redeemables,
            8,
            2000,
            (350, 500),
        ),
        Suite(
            "qualifications",
            "qualifications (1,000 live promotions)",
            "POST",
            "/v1/qualifications",
            qualification,
            10,
            1000,
            (400, 600),
        ),
    )
}

# The order the report lists and the runner measures them in: the floor first, redemptions after the
# validations so that the counters they move do not change what the validations read.
ORDER = ["floor", "validation", "stack_validation", "qualifications", "redemption", "stack_redemption"]


def bodies(suite: Suite, seed: dict[str, Any], count: int, salt: int = 0) -> list[Body]:
    """``count`` request bodies, the same for every tool given the same seed data and salt."""
    if suite.make_body is None:
        return []
    rng = random.Random(f"{suite.name}:{salt}")
    return [suite.make_body(rng, seed) for _ in range(count)]
