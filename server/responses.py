"""JSON responses encoded with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def list_body(data_ref: str, items: list[Any], total: int | None = None, **extra: Any) -> dict[str, Any]:
    """A Voucherify list: ``{object:"list", data_ref, <data_ref>: [...], total}``."""
    body: dict[str, Any] = {"object": "list", "data_ref": data_ref, data_ref: items}
    if total is not None:
        body["total"] = total
    body.update(extra)
    return body
