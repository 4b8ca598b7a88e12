"""``PRODUCTS.IMPORT_CSV|BULK_UPDATE|METADATA_UPDATE`` and ``SKUS.IMPORT_CSV``."""

from __future__ import annotations

from typing import Any

from voucherd.jobs import bulk, imports
from worker.operations import OperationContext, operation
from worker.operations.definitions.vouchers import csv_upload, reporting_bad_files

IMPORT_CSV = "PRODUCTS.IMPORT_CSV"
BULK_UPDATE = "PRODUCTS.BULK_UPDATE"
METADATA_UPDATE = "PRODUCTS.METADATA_UPDATE"
SKUS_IMPORT_CSV = "SKUS.IMPORT_CSV"


@operation(IMPORT_CSV)
async def import_csv(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await reporting_bad_files(imports.import_products_csv(op.pool, op.project_id, csv_upload(op), op.progress))


@operation(SKUS_IMPORT_CSV)
async def import_skus_csv(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await reporting_bad_files(imports.import_skus_csv(op.pool, op.project_id, csv_upload(op), op.progress))


@operation(BULK_UPDATE)
async def bulk_update(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.products_bulk(op.pool, op.project_id, params.get("items") or [], op.progress)


@operation(METADATA_UPDATE)
async def metadata_update(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return await bulk.products_metadata(op.pool, op.project_id, params)
