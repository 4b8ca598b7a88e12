from datetime import datetime
from typing import Any

from engine.discounts import Order

SORTING_RULES: tuple[str, ...]

class Qualifier:
    """Candidates are redeemable dicts as for ``evaluate_stack`` plus ``created_at``.

    ``qualify`` returns ``{"redeemables": list object, "order", "deals", "evaluated"}``; calculated
    orders are pre-serialised as in ``evaluate_stack``.
    """
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
