"""``CAMPAIGN.VOUCHERS_GENERATE`` and ``CAMPAIGN.VOUCHERS_DELETE``: thin wrappers over voucherd.campaigns."""

from __future__ import annotations

from typing import Any

from voucherd.definitions import campaigns
from voucherd.definitions import version as definitions
from voucherd.platform.errors import VoucherdError
from worker.operations import OperationContext, OperationFailed, operation


@operation(campaigns.GENERATE)
async def generate_vouchers(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    try:
        result = await campaigns.generate_codes(op.pool, op.redis, op.project_id, params, op.progress)
    except (campaigns.OperationError, VoucherdError) as exc:
        raise OperationFailed({"message": str(exc), "done_count": 0}) from None
    finally:
        await definitions.bump(op.redis, op.project_id)
    return result


@operation(campaigns.DELETE)
async def delete_vouchers(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    result = await campaigns.purge_codes(op.pool, op.redis, op.project_id, params)
    await definitions.bump(op.redis, op.project_id)
    return result
