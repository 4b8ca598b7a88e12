"""``ORDERS.IMPORT``: a thin wrapper over voucherd.bulk."""

from __future__ import annotations

from typing import Any

from voucherd.jobs import bulk
from worker.operations import OperationContext, operation

IMPORT = "ORDERS.IMPORT"


@operation(IMPORT)
async def import_orders(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.import_orders(op.pool, op.redis, op.project_id, params.get("items") or [], op.progress)
