from datetime import datetime
from typing import Any

from engine.discounts import Order

SORTING_RULES: tuple[str, ...]

class Qualifier:
    """Candidates are redeemable dicts as for ``evaluate_stack`` plus ``created_at``."""
    def __init__(self, candidates: list[dict[str, Any]]) -> None: ...
    def __len__(self) -> int: ...
    def qualify(
        self,
        order: dict[str, Any] | Order,
        customer: dict[str, Any] | None,
        now: datetime,
        sorting_rule: str = "DEFAULT",
        context: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]: ...
