"""Categories: named, ordered groups that stacking rules act on (``cat_`` ids)."""

from __future__ import annotations

from typing import Any

import asyncpg

from voucherd.platform.errors import DuplicateFound, InvalidPayload, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso


def category_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "hierarchy": row["hierarchy"],
        "object": "category",
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def joined_list(row: asyncpg.Record) -> list[dict[str, Any]]:
    """The ``categories`` list of a row read with its category joined in (``category_*`` columns)."""
    if row["category_id"] is None or row["category_name"] is None:
        return []
    return [
        {
            "id": row["category_id"],
            "name": row["category_name"],
            "hierarchy": row["category_hierarchy"],
            "object": "category",
            "created_at": iso(row["category_created_at"]),
            "updated_at": iso(row["category_updated_at"]),
        }
    ]


def _checked(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidPayload("Property .name is required and should be a non-empty string")
        if len(name) > 200:
            raise InvalidPayload("Property .name should be at most 200 characters")
        fields["name"] = name
    if "hierarchy" in body or not partial:
        hierarchy = body.get("hierarchy")
        if isinstance(hierarchy, bool) or not isinstance(hierarchy, int) or hierarchy < 0:
            raise InvalidPayload("Property .hierarchy is required and should be an integer >= 0")
        fields["hierarchy"] = hierarchy
    return fields


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = _checked(body, partial=False)
    try:
        row = await conn.fetchrow(
            "INSERT INTO categories (id, project_id, name, hierarchy) VALUES ($1, $2, $3, $4) RETURNING *",
            new_id("cat"),
            project_id,
            fields["name"],
            fields["hierarchy"],
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateFound(f"A category named {fields['name']!r} already exists.") from None
    return category_view(row)


async def get(conn: asyncpg.Connection, project_id: str, category_id: str) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM categories WHERE project_id = $1 AND id = $2", project_id, category_id)
    if row is None:
        raise NotFound.of("category", category_id)
    return category_view(row)


async def list_all(conn: asyncpg.Connection, project_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM categories WHERE project_id = $1 ORDER BY hierarchy, created_at, id", project_id
    )
    return [category_view(r) for r in rows]


async def update(conn: asyncpg.Connection, project_id: str, category_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = _checked(body, partial=True)
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
    try:
        row = await conn.fetchrow(
            f"UPDATE categories SET {', '.join([*sets, 'updated_at = now()'])} "
            "WHERE project_id = $1 AND id = $2 RETURNING *",
            project_id,
            category_id,
            *fields.values(),
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateFound(f"A category named {fields['name']!r} already exists.") from None
    if row is None:
        raise NotFound.of("category", category_id)
    return category_view(row)


async def delete(conn: asyncpg.Connection, project_id: str, category_id: str) -> None:
    status = await conn.execute("DELETE FROM categories WHERE project_id = $1 AND id = $2", project_id, category_id)
    if status == "DELETE 0":
        raise NotFound.of("category", category_id)
