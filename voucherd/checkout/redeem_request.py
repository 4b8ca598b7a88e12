"""The body of a stackable validation or redemption, checked before anything is evaluated.

Everything here answers HTTP 400 (SEMANTICS §5.1, step 1): malformed fields are
``invalid_payload`` with the offending property named, repeated redeemables are
``duplicated_redeemables``, a promotion stack mixed with anything is
``invalid_redeemables``. Money must be integers: a float amount is refused, never rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voucherd.platform.errors import DuplicatedRedeemables, InvalidPayload, InvalidRedeemables, MissingReward
from voucherd.platform.money import MAX_MONEY

MAX_REDEEMABLES = 30
MAX_ORDER_ITEMS = 500
MAX_ID_LENGTH = 300
REDEEMABLE_OBJECTS = ("voucher", "promotion_tier", "promotion_stack")
EXPAND_OPTIONS = ("order", "redeemable", "redemption", "category")
TTL_UNITS = {
    "DAYS": 86_400_000,
    "HOURS": 3_600_000,
    "MINUTES": 60_000,
    "SECONDS": 1_000,
    "MILLISECONDS": 1,
    "MICROSECONDS": 0.001,
    "NANOSECONDS": 0.000_001,
}
DEFAULT_SESSION_TTL = (7, "DAYS")


@dataclass(frozen=True)
class Redeemable:
    object: str
    id: str
    credits: int | None = None  # gift card credits to use
    reward_id: str | None = None  # loyalty card: pay with points
    reward_points: int | None = None


@dataclass(frozen=True)
class SessionRequest:
    key: str | None
    ttl: float
    ttl_unit: str

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * TTL_UNITS[self.ttl_unit]))


@dataclass(frozen=True)
class RedeemRequest:
    redeemables: list[Redeemable]
    order: dict[str, Any]
    customer: dict[str, Any] | None
    session: SessionRequest | None
    tracking_id: str | None
    metadata: dict[str, Any]
    expand: frozenset[str] = field(default_factory=frozenset)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(body: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidPayload(f"Property {where}{name} should be object")
    return value


def _string(value: Any, where: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidPayload(f"Property {where} is required")
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidPayload(f"Property {where} should be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidPayload(f"Property {where} should be at most {MAX_ID_LENGTH} characters")
    return value


def _money(value: Any, where: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if not _is_int(value):
        raise InvalidPayload(f"Property {where} should be an integer (amounts are in the smallest currency unit)")
    if value < minimum:
        raise InvalidPayload(f"Property {where} should be >= {minimum}")
    if value > MAX_MONEY:
        raise InvalidPayload(f"Property {where} is too large")
    return int(value)


def parse_redeemable(item: Any, index: int) -> Redeemable:
    where = f".redeemables[{index}]"
    if not isinstance(item, dict):
        raise InvalidPayload(f"Property {where} should be object")
    obj = item.get("object")
    if obj not in REDEEMABLE_OBJECTS:
        raise InvalidPayload(f"Property {where}.object should be one of {', '.join(REDEEMABLE_OBJECTS)}")
    if "id" not in item or item["id"] is None:
        raise InvalidPayload(f"Property {where} should have required property 'id'")
    redeemable_id = _string(item["id"], f"{where}.id", required=True)
    assert redeemable_id is not None
    credits = None
    gift = _object(item, "gift", where + ".")
    if gift is not None:
        credits = _money(gift.get("credits"), f"{where}.gift.credits")
    reward_id = reward_points = None
    reward = _object(item, "reward", where + ".")
    if reward is not None:
        reward_id = _string(reward.get("id"), f"{where}.reward.id")
        reward_points = _money(reward.get("points"), f"{where}.reward.points", minimum=1)
        if reward_id is None:
            raise MissingReward(f"Property {where}.reward should have required property 'id'")
    return Redeemable(obj, redeemable_id, credits, reward_id, reward_points)


def parse_redeemables(value: Any, limit: int = MAX_REDEEMABLES) -> list[Redeemable]:
    if not isinstance(value, list) or not value:
        raise InvalidPayload("Property .redeemables should be a non-empty array")
    if len(value) > limit:
        raise InvalidPayload(f"Property .redeemables should have at most {limit} items")
    redeemables = [parse_redeemable(item, i) for i, item in enumerate(value)]
    seen: set[tuple[str, str]] = set()
    for r in redeemables:
        if (r.object, r.id) in seen:
            raise DuplicatedRedeemables(f"Redeemable {r.object} {r.id} is sent more than once")
        seen.add((r.object, r.id))
    stacks = [r for r in redeemables if r.object == "promotion_stack"]
    if stacks and len(redeemables) > 1:
        raise InvalidRedeemables("A promotion_stack must be the only redeemable of a request")
    return redeemables


_ITEM_IDS = ("product_id", "sku_id", "source_id")
_ITEM_AMOUNTS = ("price", "amount", "discount_amount")


def _item_total(item: Any, i: int) -> int:
    """Check one order item's types; its line amount. Messages are built only for a failure
    (formatting them for every field cost a tenth of a validation's CPU)."""
    if not isinstance(item, dict):
        raise InvalidPayload(f"Property .order.items[{i}] should be object")
    for name in _ITEM_IDS:
        value = item.get(name)
        if value is not None and (type(value) is not str or len(value) > MAX_ID_LENGTH):
            _string(value, f".order.items[{i}].{name}")
    if item.get("related_object") not in (None, "product", "sku"):
        raise InvalidPayload(f"Property .order.items[{i}].related_object should be product or sku")
    quantity = item.get("quantity")
    if quantity is not None and not (type(quantity) is int and 0 <= quantity <= 1_000_000):
        raise InvalidPayload(f"Property .order.items[{i}].quantity should be an integer between 0 and 1000000")
    for name in _ITEM_AMOUNTS:
        value = item.get(name)
        if value is not None and not (type(value) is int and 0 <= value <= MAX_MONEY):
            _money(value, f".order.items[{i}].{name}")
    amount = item.get("amount")
    if amount is not None:
        return int(amount)
    price = item.get("price")
    if price is None:
        return 0
    return int(price) * (quantity if quantity is not None else 1)


def parse_order(value: Any) -> dict[str, Any]:
    """Check the order's types; the engine fills in defaults and catalog prices."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidPayload("Property .order should be object")
    for name in ("id", "source_id", "status"):
        _string(value.get(name), f".order.{name}")
    for name in ("amount", "initial_amount", "discount_amount"):
        _money(value.get(name), f".order.{name}")
    items = value.get("items")
    if items is not None:
        if not isinstance(items, list):
            raise InvalidPayload("Property .order.items should be array")
        if len(items) > MAX_ORDER_ITEMS:
            raise InvalidPayload(f"Property .order.items should have at most {MAX_ORDER_ITEMS} items")
        items_total = 0
        for i, item in enumerate(items):
            items_total += _item_total(item, i)
            if items_total > MAX_MONEY:
                raise InvalidPayload(f"Property .order.items add up to more than {MAX_MONEY}")
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidPayload("Property .order.metadata should be object")
    return value


def parse_session(value: Any) -> SessionRequest | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidPayload("Property .session should be object")
    if value.get("type", "LOCK") != "LOCK":
        raise InvalidPayload("Property .session.type should be LOCK")
    key = _string(value.get("key"), ".session.key")
    ttl, unit = value.get("ttl"), value.get("ttl_unit")
    if ttl is None and unit is None:
        ttl, unit = DEFAULT_SESSION_TTL
    if unit is None:
        unit = DEFAULT_SESSION_TTL[1]
    if unit not in TTL_UNITS:
        raise InvalidPayload(f"Property .session.ttl_unit should be one of {', '.join(TTL_UNITS)}")
    if ttl is None or isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise InvalidPayload("Property .session.ttl should be a positive number")
    return SessionRequest(key, float(ttl), unit)


def parse(body: dict[str, Any], *, redeemables_limit: int = MAX_REDEEMABLES) -> RedeemRequest:
    customer = _object(body, "customer", ".")
    if customer is not None:
        for name in ("id", "source_id"):
            _string(customer.get(name), f".customer.{name}")
    metadata = _object(body, "metadata", ".") or {}
    options = _object(body, "options", ".") or {}
    expand = options.get("expand") or []
    if not isinstance(expand, list) or any(e not in EXPAND_OPTIONS for e in expand):
        raise InvalidPayload(f"Property .options.expand should be an array of {', '.join(EXPAND_OPTIONS)}")
    return RedeemRequest(
        redeemables=parse_redeemables(body.get("redeemables"), redeemables_limit),
        order=parse_order(body.get("order")),
        customer=customer,
        session=parse_session(body.get("session")),
        tracking_id=_string(body.get("tracking_id"), ".tracking_id"),
        metadata=metadata,
        expand=frozenset(expand),
    )
