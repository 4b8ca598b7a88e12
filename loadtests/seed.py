"""Builds a realistic project through the public API and writes what the suites need to a JSON file.

What the API supports today is seeded: a coupon campaign (100,000 codes at full scale), gift cards,
promotion tiers with mixed validation rules, customers in segments, products. Loyalty programs and
wallets are not in the API yet and are listed under ``not_seeded``.

    .venv/bin/python -m loadtests.seed --url http://127.0.0.1:8000 --out loadtests/report/seed.json [--smoke]

Keys come from ``VOUCHERD_APP_ID`` / ``VOUCHERD_APP_TOKEN``. Every name carries a per-run tag, so
seeding twice into the same project does not collide.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loadtests.api import Api, Target, parallel, wait_until

# Codes are redeemed over and over by the redemption suites; a quantity this large never runs out.
HOT_QUANTITY = 1_000_000_000
GIFT_AMOUNT = 10**12  # minor units; the suites spend 1 credit per call
TIER_NAMES = ("gold", "silver", "bronze")


@dataclass(frozen=True)
class Scale:
    coupons: int = 100_000
    code_sample: int = 2_000  # codes listed back for the suites to pick from
    gift_cards: int = 1_000
    tiers: int = 1_000
    tiers_per_campaign: int = 100
    customers: int = 10_000
    products: int = 1_000
    wallet_customers: int = 5
    wallet_codes: int = 200  # codes published to each wallet customer
    threads: int = 8


FULL = Scale()
SMOKE = Scale(
    coupons=200,
    code_sample=200,
    gift_cards=10,
    tiers=20,
    tiers_per_campaign=10,
    customers=30,
    products=20,
    wallet_customers=2,
    wallet_codes=20,
)


def _tag() -> str:
    return f"lt{int(time.time()) % 100000:05d}{random.randrange(1000):03d}"


def seed_products(api: Api, tag: str, scale: Scale) -> list[dict[str, Any]]:
    def make(i: int) -> dict[str, Any]:
        body = {
            "source_id": f"{tag}-prod-{i}",
            "name": f"Product {i}",
            "price": 500 + (i % 40) * 250,
            "metadata": {"color": ("red", "blue", "green")[i % 3]},
        }
        product = api.post("/v1/products", body)
        return {"id": product["id"], "source_id": body["source_id"], "price": body["price"]}

    return parallel(make, range(scale.products), scale.threads)


def seed_segments(api: Api, tag: str) -> list[str]:
    """Auto-update segments by a metadata tier, created first so every customer write places its customer."""
    return [
        api.post(
            "/v1/segments",
            {
                "name": f"{tag}-{name}",
                "type": "auto-update",
                "filter": {"metadata.tier": {"conditions": {"$is": [name]}}},
            },
        )["id"]
        for name in TIER_NAMES
    ]


def seed_customers(api: Api, tag: str, scale: Scale) -> list[str]:
    def make(i: int) -> str:
        source_id = f"{tag}-cust-{i}"
        api.post(
            "/v1/customers",
            {
                "source_id": source_id,
                "name": f"Customer {i}",
                "email": f"c{i}@example.com",
                "metadata": {"tier": TIER_NAMES[i % 3], "visits": i % 17},
            },
        )
        return source_id

    return parallel(make, range(scale.customers), scale.threads)


def seed_gift_cards(api: Api, tag: str, scale: Scale) -> list[str]:
    def make(i: int) -> str:
        code = f"{tag}-GIFT-{i}"
        api.post(f"/v1/vouchers/{code}", {"type": "GIFT_VOUCHER", "gift": {"amount": GIFT_AMOUNT}})
        return code

    return parallel(make, range(scale.gift_cards), scale.threads)


def seed_rules(api: Api, tag: str, segment_ids: list[str], products: list[dict[str, Any]]) -> dict[str, str]:
    """A few validation rules of different kinds; tiers get them in turn so that evaluation is mixed."""
    bodies = {
        "min_order": {"order.amount": {"$more_than": [1000]}},
        "items_count": {"order.items.count": {"$more_than_equal": [1]}},
        "segment": {"customer.segment": {"$is": segment_ids[:1]}},
        "big_order": {"order.amount": {"$more_than": [10_000_000]}},  # never met: an inapplicable tier
        "product": {"product.id": {"$is": [{"id": products[0]["id"], "object": "product"}]}},
    }
    rules = {}
    for kind, conditions in bodies.items():
        name, cond = next(iter(conditions.items()))
        body = {"name": f"{tag}-{kind}", "rules": {"1": {"name": name, "conditions": cond}, "logic": "1"}}
        rules[kind] = api.post("/v1/validation-rules", body)["id"]
    return rules


def _tier(tag: str, i: int, rules: dict[str, str]) -> tuple[dict[str, Any], str]:
    kinds = (None, "min_order", "items_count", "segment", "big_order", "product")
    kind = kinds[i % len(kinds)]
    discount = (
        {"type": "AMOUNT", "amount_off": 100 + i % 10 * 50, "effect": "APPLY_TO_ORDER"}
        if i % 2
        else {"type": "PERCENT", "percent_off": 1 + i % 10, "effect": "APPLY_TO_ORDER"}
    )
    tier: dict[str, Any] = {"name": f"{tag}-tier-{i}", "action": {"discount": discount}}
    if kind:
        tier["validation_rules"] = [rules[kind]]
    return tier, kind or "none"


def seed_tiers(api: Api, tag: str, scale: Scale, rules: dict[str, str]) -> list[dict[str, str]]:
    """Promotion campaigns of ``tiers_per_campaign`` tiers each; returns every tier's id and rule kind."""
    out: list[dict[str, str]] = []
    for start in range(0, scale.tiers, scale.tiers_per_campaign):
        batch = [_tier(tag, i, rules) for i in range(start, min(start + scale.tiers_per_campaign, scale.tiers))]
        body = {
            "name": f"{tag}-promo-{start}",
            "campaign_type": "PROMOTION",
            "promotion": {"tiers": [tier for tier, _ in batch]},
        }
        campaign = api.post("/v1/campaigns", body)
        tiers = campaign["promotion"]["tiers"]
        if len(tiers) != len(batch):  # the create answer may list only the first page
            tiers = api.get(f"/v1/promotions/{campaign['id']}/tiers?limit=100")["tiers"]
        by_name = {t["name"]: t["id"] for t in tiers}
        out.extend({"id": by_name[tier["name"]], "rule": kind} for tier, kind in batch)
    return out


def create_coupon_campaign(api: Api, name: str, count: int, timeout: float = 300) -> dict[str, Any]:
    """``POST /v1/campaigns`` with ``vouchers_count``; waits for the generation action to be DONE.

    Returns the campaign and the seconds from the call's return until the action reported DONE.
    """
    body = {
        "name": name,
        "campaign_type": "DISCOUNT_COUPONS",
        "voucher": {
            "type": "DISCOUNT_VOUCHER",
            "discount": {"type": "AMOUNT", "amount_off": 500},
            "redemption": {"quantity": HOT_QUANTITY},
            "code_config": {"length": 10, "prefix": "LT-"},
        },
        "vouchers_count": count,
    }
    t0 = time.perf_counter()
    campaign = api.post("/v1/campaigns", body)
    returned = time.perf_counter()
    action_path = f"/v1/async-actions/{campaign['async_action_id']}"
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(api.get(action_path))
        return state["status"] in ("DONE", "FAILED")

    wait_until(done, timeout, interval=0.02, what=f"generation of {count} codes")
    if state["status"] != "DONE":
        raise RuntimeError(f"code generation failed: {state}")
    return {"campaign": campaign, "create_s": returned - t0, "done_s": time.perf_counter() - returned, "action": state}


def list_codes(api: Api, campaign_name: str, wanted: int) -> list[str]:
    codes: list[str] = []
    for page in range(1, 100):  # the API caps pages at 99
        if len(codes) >= wanted:
            break
        batch = api.get(f"/v1/vouchers?campaign={campaign_name}&limit=100&page={page}")["vouchers"]
        codes.extend(v["code"] for v in batch)
        if len(batch) < 100:
            break
    return codes[:wanted]


def seed_wallets(api: Api, tag: str, scale: Scale) -> list[str]:
    """Customers holding ``wallet_codes`` published codes each, for qualifications' CUSTOMER_WALLET part."""
    campaign = api.post(
        "/v1/campaigns",
        {
            "name": f"{tag}-wallets",
            "campaign_type": "DISCOUNT_COUPONS",
            "type": "AUTO_UPDATE",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 150}},
        },
    )

    def fill(i: int) -> str:
        source_id = f"{tag}-wallet-{i}"
        for start in range(0, scale.wallet_codes, 50):  # a publication hands out at most 50 codes
            count = min(50, scale.wallet_codes - start)
            api.post(
                "/v1/publications",
                {"customer": {"source_id": source_id}, "campaign": {"id": campaign["id"], "count": count}},
            )
        return source_id

    return parallel(fill, range(scale.wallet_customers), scale.threads)


def seed(target: Target, scale: Scale, log: Any = print) -> dict[str, Any]:
    api = Api(target)
    tag = _tag()
    timings: dict[str, float] = {}

    def step(name: str, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        result = fn(*args)
        timings[name] = round(time.perf_counter() - t0, 2)
        log(f"seed: {name} in {timings[name]:.1f}s")
        return result

    products = step(f"{scale.products} products", seed_products, api, tag, scale)
    segments = step("3 segments", seed_segments, api, tag)
    customers = step(f"{scale.customers} customers", seed_customers, api, tag, scale)
    gift_cards = step(f"{scale.gift_cards} gift cards", seed_gift_cards, api, tag, scale)
    rules = step("validation rules", seed_rules, api, tag, segments, products)
    tiers = step(f"{scale.tiers} promotion tiers", seed_tiers, api, tag, scale, rules)
    campaign_name = f"{tag}-coupons"
    coupons = step(
        f"coupon campaign of {scale.coupons} codes", create_coupon_campaign, api, campaign_name, scale.coupons
    )
    codes = step("listing codes", list_codes, api, campaign_name, scale.code_sample)
    wallets = step(f"{scale.wallet_customers} wallets of {scale.wallet_codes} codes", seed_wallets, api, tag, scale)
    return {
        "tag": tag,
        "url": target.url,
        "scale": dataclasses.asdict(scale),
        "codes": codes,
        "gift_cards": gift_cards,
        "tiers": tiers,
        "customers": customers,
        "wallet_customers": wallets,
        "segments": segments,
        "products": products,
        "rules": rules,
        "coupon_campaign": {
            "name": campaign_name,
            "id": coupons["campaign"]["id"],
            "count": scale.coupons,
            "done_s": coupons["done_s"],
        },
        "timings_s": timings,
        "not_seeded": [
            "loyalty program (loyalty cards are not used by the suites)",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("VOUCHERIFY_HOST", "http://127.0.0.1:8000"))
    parser.add_argument("--out", type=Path, default=Path("loadtests/report/seed.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny amounts, for the smoke mode")
    for field in dataclasses.fields(Scale):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, help=f"default {getattr(FULL, field.name)}")
    args = parser.parse_args()
    scale = SMOKE if args.smoke else FULL
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Scale) if getattr(args, f.name) is not None}
    scale = dataclasses.replace(scale, **overrides)
    target = Target(args.url, os.environ["VOUCHERD_APP_ID"], os.environ["VOUCHERD_APP_TOKEN"])
    data = seed(target, scale)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
