"""``EXPORT``: writes one export's CSV file (voucherd.jobs.exports)."""

from __future__ import annotations

from typing import Any

from voucherd.jobs import exports
from worker.base import TRANSIENT_ERRORS
from worker.operations import OperationContext, OperationFailed, operation


@operation(exports.ACTION_TYPE)
async def run_export(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    export_id = str(params.get("export_id", ""))
    try:
        return await exports.run(op.pool, op.project_id, export_id, op.progress)
    except TRANSIENT_ERRORS:
        raise  # retried by the stream loop; the export stays IN_PROGRESS meanwhile
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        await exports.fail(op.pool, export_id, message)
        raise OperationFailed({"message": message, "export_id": export_id}) from exc
