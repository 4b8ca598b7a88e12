"""Contract of :func:`evaluate_stack`.

``redeemables``: one dict per requested redeemable, in request order::

    {"id": "CODE" | "promo_…", "object": "voucher" | "promotion_tier",
     # exactly one of:
     "discount": {...Voucherify Discount...},
     "gift": {"balance": int, "effect": "APPLY_TO_ORDER" | "APPLY_TO_ITEMS"}, "credits": int | None,
     "loyalty_card": {"balance": int}, "reward": {"points": int, "coin": {"exchange_ratio", "points_ratio"} | None},
     # optional live state / definition:
     "categories": [{"id", "hierarchy", "stacking_rules_type": "EXCLUSIVE" | "JOINT" | None}],
     "rules": [RuleSet, ...],            # compiled campaign + voucher/tier rule sets
     "active", "start_date", "expiration_date", "validity_timeframe", "validity_day_of_week",
     "validity_hours", "quantity", "redeemed_quantity", "locked", "holder_id",
     "is_referral_code", "referrer_id", "metadata", "publication_metadata",
     "counters": {rule name: int},        # e.g. "redemption.count.per_customer"
     "error": {...Voucherify Error...}}  # caller-resolved failure (e.g. not found) -> INAPPLICABLE

``context``: ``collections`` {pc_id: set of ids}, ``prices`` {product/sku id: price},
``metadata`` (redemption metadata), ``api_key``, ``user_login``.

Returns ``{"valid", "redeemables": [request order; each {status, id, object, result, order?,
applicable_to?, inapplicable_to?, categories?, metadata?}], "inapplicable_redeemables"?,
"skipped_redeemables"?, "order": top-level calculated order, "stacking_rules": normalized}``.

Calculated orders are rendered once, as JSON: each redeemable's ``order`` is an
``orjson.Fragment`` and the top-level ``order`` a dict whose ``items`` is one (as is the
``data`` of ``applicable_to`` / ``inapplicable_to``, whose ``total`` stays a number), so
``orjson.dumps`` writes them without walking dicts; ``orjson.loads(orjson.dumps(out))``
gives plain data. The answer shares objects between calls (result echoes of static
discounts, the normalized stacking rules, empty lists): treat it as read-only.
"""

from datetime import datetime
from typing import Any

from engine.discounts import Order

DEFAULT_STACKING_RULES: dict[str, Any]
MESSAGES: dict[str, str]

class CompiledRedeemable:
    """A redeemable's definition compiled once (cache it per definitions version); ``source`` is the dict."""

    source: dict[str, Any]

def normalize_stacking_rules(rules: dict[str, Any] | None) -> dict[str, Any]: ...
def compile_redeemable(redeemable: dict[str, Any]) -> CompiledRedeemable: ...
def expand_promotion_stack(
    tier_ids: list[str],
    tiers: dict[str, dict[str, Any] | CompiledRedeemable],
    stack_id: str | None = None,
) -> list[dict[str, Any]]: ...
def evaluate_stack(
    redeemables: list[dict[str, Any] | CompiledRedeemable],
    order: dict[str, Any] | Order,
    customer: dict[str, Any] | None,
    now: datetime,
    stacking_rules: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]: ...
def evaluate_single(
    r: dict[str, Any] | CompiledRedeemable,
    o: Order,
    customer: dict[str, Any],
    now: datetime,
    context: dict[str, Any],
    check_state: bool = True,
) -> tuple[bool, dict[str, Any]]: ...
