"""``VOUCHERS.IMPORT|IMPORT_CSV|BULK_UPDATE|METADATA_UPDATE`` and the campaign imports
``CAMPAIGN.VOUCHERS_IMPORT|VOUCHERS_IMPORT_CSV``: thin wrappers over voucherd.jobs.imports and voucherd.bulk."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from voucherd.definitions import version as definitions
from voucherd.jobs import bulk, csv_imports, imports
from voucherd.platform.errors import VoucherdError
from worker.operations import OperationContext, OperationFailed, operation

IMPORT = "VOUCHERS.IMPORT"
IMPORT_CSV = "VOUCHERS.IMPORT_CSV"
BULK_UPDATE = "VOUCHERS.BULK_UPDATE"
METADATA_UPDATE = "VOUCHERS.METADATA_UPDATE"
CAMPAIGN_IMPORT = "CAMPAIGN.VOUCHERS_IMPORT"
CAMPAIGN_IMPORT_CSV = "CAMPAIGN.VOUCHERS_IMPORT_CSV"


def csv_upload(op: OperationContext) -> bytes:
    """The action's uploaded CSV (checked when it was uploaded)."""
    if op.upload is None:
        raise OperationFailed({"message": "The uploaded file is no longer available", "done_count": 0})
    return op.upload


async def reporting_bad_files(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The import's result; a file that cannot be read fails the action with the reason."""
    try:
        return await work
    except VoucherdError as exc:
        raise OperationFailed({"message": str(exc), "done_count": 0, "failed_count": 0, "failed": []}) from None


async def _import(op: OperationContext, items: list[tuple[int, Any]], campaign_id: str | None) -> dict[str, Any]:
    try:
        return await imports.import_vouchers(
            op.pool, op.redis, op.project_id, op.action_id, items, op.progress, campaign_id=campaign_id
        )
    finally:
        if campaign_id is not None:
            await definitions.bump(op.redis, op.project_id)


@operation(IMPORT)
async def import_vouchers(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await _import(op, list(enumerate(params.get("items") or [], start=1)), None)


@operation(IMPORT_CSV)
async def import_vouchers_csv(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    work = csv_imports.import_vouchers_csv(op.pool, op.redis, op.project_id, op.action_id, csv_upload(op), op.progress)
    return await reporting_bad_files(work)


@operation(CAMPAIGN_IMPORT)
async def import_campaign_vouchers(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await _import(op, list(enumerate(params.get("items") or [], start=1)), str(params["campaign_id"]))


@operation(CAMPAIGN_IMPORT_CSV)
async def import_campaign_vouchers_csv(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    campaign_id = str(params["campaign_id"])
    try:
        work = csv_imports.import_vouchers_csv(
            op.pool, op.redis, op.project_id, op.action_id, csv_upload(op), op.progress, campaign_id=campaign_id
        )
        return await reporting_bad_files(work)
    finally:
        await definitions.bump(op.redis, op.project_id)


@operation(BULK_UPDATE)
async def bulk_update(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.vouchers_bulk(op.pool, op.redis, op.project_id, params.get("items") or [], op.progress)


@operation(METADATA_UPDATE)
async def metadata_update(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.vouchers_metadata(op.pool, op.redis, op.project_id, params)
