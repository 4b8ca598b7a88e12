"""``{CAMPAIGNS,CUSTOMERS,PRODUCTS,VOUCHERS,ORDERS}.METADATA_KEY_PURGE``: one operation per resource type."""

from __future__ import annotations

from typing import Any

from voucherd.jobs import bulk
from worker.operations import Operation, OperationContext, operation


def _purge(resource: str) -> Operation:
    async def purge(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
        return await bulk.purge_metadata_key(
            op.pool, op.redis, op.project_id, resource, str(params["key"]), op.progress
        )

    purge.__name__ = f"purge_{resource}_metadata_key"
    return purge


for _resource, _type in bulk.PURGE_TYPES.items():
    operation(_type)(_purge(_resource))
