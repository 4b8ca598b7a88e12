"""``CUSTOMERS.IMPORT_CSV|BULK_UPDATE|METADATA_UPDATE``: thin wrappers over voucherd.jobs.imports and voucherd.bulk."""

from __future__ import annotations

from typing import Any

from voucherd.jobs import bulk, csv_imports
from worker.operations import OperationContext, operation
from worker.operations.definitions.vouchers import csv_upload, reporting_bad_files

IMPORT_CSV = "CUSTOMERS.IMPORT_CSV"
BULK_UPDATE = "CUSTOMERS.BULK_UPDATE"
METADATA_UPDATE = "CUSTOMERS.METADATA_UPDATE"


@operation(IMPORT_CSV)
async def import_csv(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    work = csv_imports.import_customers_csv(op.pool, op.redis, op.project_id, op.action_id, csv_upload(op), op.progress)
    return await reporting_bad_files(work)


@operation(BULK_UPDATE)
async def bulk_update(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.customers_bulk(op.pool, op.redis, op.project_id, params.get("items") or [], op.progress)


@operation(METADATA_UPDATE)
async def metadata_update(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.customers_metadata(op.pool, op.redis, op.project_id, params, op.progress)
