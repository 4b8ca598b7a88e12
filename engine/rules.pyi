from datetime import timedelta
from typing import Any, TypedDict

from engine.discounts import Order

CUSTOMER_KEY: str
ORDER_KEY: str
REDEMPTION_KEY: str
COUNTER_RULES: frozenset[str]
OPERATORS: frozenset[str]
RULE_NAMES: frozenset[str]

class RuleResult(TypedDict):
    ok: bool
    key: str | None
    message: str | None

class RuleSet:
    id: str | None
    message: str | None
    applicable_to: dict[str, Any]
    required_ids: frozenset[str] | None
    needs_total_after: bool
    has_order_rules: bool
    has_budget_rules: bool
    bundle_rules: Any
    def check(self, ctx: dict[str, Any], order: Order) -> tuple[bool, str | None, str | None]: ...
    def evaluate(self, ctx: dict[str, Any]) -> RuleResult: ...

def parse_duration(s: str) -> timedelta: ...
def compile_rules(rule_set: dict[str, Any], collections: dict[str, Any] | None = None) -> RuleSet:
    """Context keys read by evaluate/check: ``order`` (dict or Order), ``customer`` {id, metadata,
    segments}, ``now`` (aware datetime), ``collections`` {pc_id: set of product/sku ids}, ``counters``
    {rule name: int}, ``metadata`` (redemption), ``gift_credits``, ``points_used``, ``api_key``,
    ``user_login``, ``holder_id``, ``custom_event_metadata``, ``total_after``."""
