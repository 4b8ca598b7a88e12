from typing import Any

from orjson import Fragment

SHIPPING_PRODUCT_ID: str
SHIPPING_SOURCE_ID: str
ORDER_EFFECT: str
ITEM_EFFECTS: frozenset[str]
UNIT_EFFECTS: frozenset[str]
DISCOUNT_TYPES: frozenset[str]
ALL_ITEMS: dict[str, Any]

class Line:
    index: int
    product_id: str | None
    product_source_id: str | None
    sku_id: str | None
    sku_source_id: str | None
    has_price: bool
    added: bool
    price: int
    quantity: int
    initial_quantity: int
    amount: int
    initial_amount: int
    discount_amount: int
    req_discount_amount: int
    step_discount_amount: int
    discount_quantity: int
    req_discount_quantity: int
    step_discount_quantity: int
    req_added_quantity: int
    step_added_quantity: int
    raw: dict[str, Any]

class Order:
    lines: list[Line]
    amount: int
    initial_amount: int
    discount_amount: int
    req_discount_amount: int
    step_discount_amount: int
    raw: dict[str, Any]
    def items_discount_amount(self) -> int: ...
    def total_amount(self) -> int: ...
    def copy(self) -> Order: ...
    def begin_step(self) -> None: ...
    def to_json(self, step: bool = ..., with_items: bool = ...) -> bytes: ...
    def snapshot(self, step: bool = ...) -> Fragment: ...
    def view(self, step: bool = ...) -> dict[str, Any]: ...
    def to_dict(self, step: bool = ..., with_items: bool = ...) -> dict[str, Any]: ...

Targets = list[tuple[dict[str, Any], list[Line]]]

def build_order(order: dict[str, Any]) -> Order: ...
def entry_matches(entry: dict[str, Any], ln: Line, collections: dict[str, Any]) -> bool: ...
def match_lines(order: Order, applicable_to: dict[str, Any] | None, collections: dict[str, Any] | None) -> Targets: ...
def apply_discount(
    order: Order,
    discount: dict[str, Any],
    targets: Targets | None,
    env: dict[str, Any] | None,
    initial_mode: bool,
    prices: dict[str, int] | None,
) -> dict[str, Any]: ...
def apply_gift(order: Order, credits: int | None, balance: int, targets: Targets | None, to_items: bool) -> int: ...
def apply_points(order: Order, points: int, coin: dict[str, Any] | None) -> tuple[int, int]: ...

PRODUCT_QUANTITY_LIMITS: tuple[str, ...]
UNITS_LISTED_MAX: int

class Plan:
    """A discount compiled once."""

class Targeting:
    """An applicable_to set compiled once, with a product/SKU index."""

    def match(self, order: Order, collections: dict[str, Any]) -> Any: ...

def compile_discount(discount: dict[str, Any]) -> Plan: ...
def compile_targeting(included: list[dict[str, Any]], excluded: list[dict[str, Any]]) -> Targeting: ...
