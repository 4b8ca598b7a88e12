from datetime import UTC, datetime

from engine import Qualifier, compile_rules
from tests.engine.helpers import plain

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def product_rule(pid: str) -> object:
    return compile_rules(
        {
            "rules": {"1": {"name": "product.id", "conditions": {"$is": [{"id": pid}]}}},
            "applicable_to": {"included": [{"object": "product", "id": pid}]},
        }
    )


def test_index_sorting_and_results() -> None:
    cands = [
        {
            "id": "promo_any",
            "object": "promotion_tier",
            "created_at": "2024-01-01T00:00:00Z",
            "discount": {"type": "AMOUNT", "amount_off": 100},
        },
        {
            "id": "promo_a",
            "object": "promotion_tier",
            "created_at": "2024-01-02T00:00:00Z",
            "discount": {"type": "PERCENT", "percent_off": 50},
            "rules": [product_rule("prod_a")],
        },
        *[
            {
                "id": f"promo_{i}",
                "object": "promotion_tier",
                "created_at": "2023-01-01T00:00:00Z",
                "discount": {"type": "AMOUNT", "amount_off": 1},
                "rules": [product_rule(f"prod_{i}")],
            }
            for i in range(50)
        ],
        {"id": "OFF", "active": False, "discount": {"type": "AMOUNT", "amount_off": 100}},
    ]
    q = Qualifier(cands)
    order = {"items": [{"product_id": "prod_a", "price": 1000}, {"product_id": "prod_z", "price": 500}]}
    out = plain(q.qualify(order, None, NOW))
    assert out["evaluated"] == 3  # two unconditional + promo_a; the 50 others are never evaluated
    data = out["redeemables"]["data"]
    assert [d["id"] for d in data] == ["promo_a", "promo_any"]
    assert data[0]["order"]["total_applied_discount_amount"] == 500
    best = plain(q.qualify(order, None, NOW, "BEST_DEAL"))["redeemables"]["data"]
    least = plain(q.qualify(order, None, NOW, "LEAST_DEAL", limit=1))["redeemables"]
    assert [d["id"] for d in best] == ["promo_a", "promo_any"]
    assert [d["id"] for d in least["data"]] == ["promo_any"] and least["has_more"]
    assert out["order"]["total_amount"] == 1500


def test_bundles_in_qualification() -> None:
    bundle = {
        "bundle_rules": {
            "1": {
                "name": "product.id",
                "conditions": {"$is": [{"id": "prod_a", "object": "product"}]},
                "rules": {"1": {"name": "product.quantity", "conditions": {"$more_than_or_equal": [2]}}},
            }
        }
    }
    cands = [
        {
            "id": "promo_b",
            "object": "promotion_tier",
            "discount": {"type": "AMOUNT", "amount_off": 100},
            "rules": [compile_rules(bundle)],
        }
    ]
    order = {"items": [{"product_id": "prod_a", "price": 1000}]}
    q = Qualifier(cands)
    # ALL-like scenarios: the bundle must hold (1 of 2 units -> not returned)
    assert plain(q.qualify(order, None, NOW))["redeemables"]["total"] == 0
    # scenarios that may ignore the bundle report what is missing
    out = plain(q.qualify(order, None, NOW, context={"bundle_missing_ok": True}))["redeemables"]["data"]
    assert out[0]["result"]["bundle"]["missing"] == [{"id": "prod_a", "object": "product", "item_quantity": 1}]
    full = plain(q.qualify({"items": [{"product_id": "prod_a", "price": 1000, "quantity": 2}]}, None, NOW))
    assert full["redeemables"]["data"][0]["result"]["bundle"]["quantity"] == 1
