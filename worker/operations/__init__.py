"""Operations behind asynchronous actions, one registered function per action type.

    @operation("CAMPAIGN.VOUCHERS_GENERATE")
    async def generate(op: OperationContext, params: dict) -> dict:   # returns the action's result
        await op.progress(50)

Raise ``OperationFailed(result)`` for a failure to report; any other exception from
a lost connection is retried by the stream loop, and one from a bug fails the action.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voucherd.platform import async_actions


class OperationFailed(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("message", "operation failed"))
        self.result = result


@dataclass
class OperationContext:
    pool: Any
    redis: Any
    scripts: Any
    settings: Any
    project_id: str
    action_id: str
    upload: bytes | None = None
    _last_progress: tuple[int, float] = field(default=(0, 0.0), repr=False)

    async def progress(self, percent: int) -> None:
        """Report progress; writes at most every 200 ms so tight loops stay cheap."""
        last_percent, last_time = self._last_progress
        now = time.monotonic()
        if percent <= last_percent or (now - last_time < 0.2 and percent < 100):
            return
        self._last_progress = (percent, now)
        async with self.pool.acquire() as conn:
            await async_actions.set_progress(conn, self.action_id, percent)


Operation = Callable[[OperationContext, dict[str, Any]], Awaitable[dict[str, Any]]]
OPERATIONS: dict[str, Operation] = {}


def operation(action_type: str) -> Callable[[Operation], Operation]:
    def register(function: Operation) -> Operation:
        if action_type in OPERATIONS:
            raise ValueError(f"{action_type} already has an operation")
        OPERATIONS[action_type] = function
        return function

    return register


def discover() -> dict[str, Operation]:
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)
    return OPERATIONS
