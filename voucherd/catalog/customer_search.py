"""Finding customers by a fragment of their name, email or source_id (the console's search box).

The API's ``GET /v1/customers`` filters on exact values only; a person looking for "anna" wants every
Anna, whatever the case, so this matches a substring of any of the three.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from voucherd.catalog.customer_views import customer_view
from voucherd.platform.errors import InvalidQueryParams

MAX_QUERY_LENGTH = 200


def _pattern(text: str) -> str:
    """A LIKE pattern that matches ``text`` literally anywhere (its ``%``, ``_`` and ``\\`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(
    conn: asyncpg.Connection, project_id: str, text: str, *, limit: int = 20, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """(customers whose name, email or source_id contains ``text``, newest first; how many match in all).

    An empty ``text`` lists every customer.
    """
    text = text.strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidQueryParams(f"The search text is longer than {MAX_QUERY_LENGTH} characters")
    if "\x00" in text:
        raise InvalidQueryParams("The search text cannot contain NUL characters")
    where, args = "project_id = $1", [project_id]
    if text:
        where += " AND (name ILIKE $2 OR email ILIKE $2 OR source_id ILIKE $2)"
        args.append(_pattern(text))
    total = await conn.fetchval(f"SELECT count(*) FROM customers WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM customers WHERE {where} ORDER BY created_at DESC, id DESC "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    return [customer_view(r) for r in rows], int(total)
