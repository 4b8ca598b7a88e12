"""Metadata schemas (``ms_``): per-project definitions of the metadata a resource may carry.

A schema whose ``allow_defined_only`` is true makes writes of that resource reject
metadata with undefined keys or values of the wrong type (``metadata_validation_failed``).
"""

from __future__ import annotations

import operator
import re
from datetime import date, datetime
from typing import Any

import asyncpg

from voucherd.platform.errors import DuplicateFound, InvalidPayload, MetadataValidationFailed, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso

TYPES = ("string", "number", "object", "date", "datetime", "geopoint", "boolean", "image_url")
_DEFINITION_KEYS: dict[str, type | tuple[type, ...]] = {
    "type": str,
    "optional": bool,
    "array": bool,
    "deleted": bool,
    "object_type": str,
    "min_length": int,
    "max_length": int,
    "exact_length": int,
    "eq": list,
    "ne": list,
    "lt": (int, float),
    "lte": (int, float),
    "gt": (int, float),
    "gte": (int, float),
}
_RELATED_OBJECT = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")


def schema_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "related_object": row["related_object"],
        "properties": row["properties"],
        "allow_defined_only": row["allow_defined_only"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "metadata_schema",
    }


def _definition(name: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidPayload(f"Property .properties.{name} should be an object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or key not in _DEFINITION_KEYS:
            continue
        expected = _DEFINITION_KEYS[key]
        if isinstance(value, bool) and expected is not bool:
            raise InvalidPayload(f"Property .properties.{name}.{key} has the wrong type")
        if not isinstance(value, expected):
            raise InvalidPayload(f"Property .properties.{name}.{key} has the wrong type")
        out[key] = value
    if out.get("type") not in TYPES:
        raise InvalidPayload(f"Property .properties.{name}.type should be one of {', '.join(TYPES)}")
    out.setdefault("array", False)
    out.setdefault("optional", True)
    return out


def _properties(raw: Any) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidPayload("Property .properties should be an object")
    return {name: _definition(name, value) for name, value in raw.items()}


async def _require_project(conn: asyncpg.Connection, project_id: str) -> None:
    if await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", project_id) is None:
        raise NotFound.of("project", project_id)


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    await _require_project(conn, project_id)
    related = body.get("related_object")
    if not isinstance(related, str) or not _RELATED_OBJECT.match(related):
        raise InvalidPayload("Property .related_object is required and should be a resource name")
    allow = body.get("allow_defined_only")
    if allow is not None and not isinstance(allow, bool):
        raise InvalidPayload("Property .allow_defined_only should be a boolean")
    try:
        row = await conn.fetchrow(
            "INSERT INTO metadata_schemas (project_id, id, related_object, allow_defined_only, properties) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING *",
            project_id,
            new_id("ms"),
            related,
            bool(allow),
            _properties(body.get("properties")),
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateFound(f"A metadata schema for {related!r} already exists.") from None
    return schema_view(row)


async def get(conn: asyncpg.Connection, project_id: str, schema_id: str) -> dict[str, Any]:
    await _require_project(conn, project_id)
    row = await conn.fetchrow("SELECT * FROM metadata_schemas WHERE project_id = $1 AND id = $2", project_id, schema_id)
    if row is None:
        raise NotFound.of("metadata_schema", schema_id)
    return schema_view(row)


async def get_for_resource(conn: asyncpg.Connection, project_id: str, resource: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT * FROM metadata_schemas WHERE project_id = $1 AND related_object = $2", project_id, resource
    )
    if row is None:
        raise NotFound.of("metadata_schema", resource)
    return schema_view(row)


async def list_all(conn: asyncpg.Connection, project_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM metadata_schemas WHERE project_id = $1 ORDER BY created_at, id", project_id)
    return [schema_view(r) for r in rows]


async def list_for_project(conn: asyncpg.Connection, project_id: str) -> list[dict[str, Any]]:
    await _require_project(conn, project_id)
    return await list_all(conn, project_id)


async def update(conn: asyncpg.Connection, project_id: str, schema_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Definitions sent replace those of the same name; the others stay."""
    await _require_project(conn, project_id)
    allow = body.get("allow_defined_only")
    if allow is not None and not isinstance(allow, bool):
        raise InvalidPayload("Property .allow_defined_only should be a boolean")
    row = await conn.fetchrow(
        "UPDATE metadata_schemas SET allow_defined_only = COALESCE($3, allow_defined_only), "
        "properties = properties || $4::jsonb, updated_at = now() "
        "WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        schema_id,
        allow,
        _properties(body.get("properties")),
    )
    if row is None:
        raise NotFound.of("metadata_schema", schema_id)
    return schema_view(row)


async def delete(conn: asyncpg.Connection, project_id: str, schema_id: str) -> None:
    await _require_project(conn, project_id)
    status = await conn.execute("DELETE FROM metadata_schemas WHERE project_id = $1 AND id = $2", project_id, schema_id)
    if status == "DELETE 0":
        raise NotFound.of("metadata_schema", schema_id)


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _value_error(definition: dict[str, Any], value: Any) -> str | None:
    """Why one (non-array) value breaks its definition, or None."""
    kind = definition.get("type")
    if kind in ("string", "image_url"):
        if not isinstance(value, str):
            return "should be a string"
        size = len(value)
        for bound, ok in (
            ("min_length", operator.ge),
            ("max_length", operator.le),
            ("exact_length", operator.eq),
        ):
            limit = definition.get(bound)
            if limit is not None and not ok(size, limit):
                return f"breaks {bound} {limit}"
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "should be a number"
        number = float(value)
        for bound, ok in (
            ("lt", operator.lt),
            ("lte", operator.le),
            ("gt", operator.gt),
            ("gte", operator.ge),
        ):
            limit = definition.get(bound)
            if limit is not None and not ok(number, limit):
                return f"breaks {bound} {limit}"
        if definition.get("ne") and value in definition["ne"]:
            return "is one of the excluded values"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return "should be a boolean"
    elif kind == "date":
        if not _is_date(value):
            return "should be a date (YYYY-MM-DD)"
    elif kind == "datetime":
        if not _is_datetime(value):
            return "should be an ISO-8601 date-time"
    elif kind in ("object", "geopoint") and not isinstance(value, dict):
        return "should be an object"
    if kind in ("string", "number") and definition.get("eq") and value not in definition["eq"]:
        return "is not one of the allowed values"
    return None


def violations(schema: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    """What in ``metadata`` breaks a schema with ``allow_defined_only`` (empty when it has no such flag)."""
    if not schema.get("allow_defined_only"):
        return []
    properties: dict[str, Any] = schema.get("properties") or {}
    problems = []
    for key, value in metadata.items():
        definition = properties.get(key)
        if definition is None or definition.get("deleted"):
            problems.append(f"metadata.{key} is not defined in the {schema['related_object']} schema")
            continue
        if value is None:
            continue
        if definition.get("array"):
            if not isinstance(value, list):
                problems.append(f"metadata.{key} should be an array")
                continue
            values = value
        else:
            values = [value]
        for item in values:
            error = _value_error(definition, item)
            if error is not None:
                problems.append(f"metadata.{key} {error}")
                break
    return problems


async def check(conn: asyncpg.Connection, project_id: str, related_object: str, metadata: dict[str, Any]) -> None:
    """Raise ``metadata_validation_failed`` when ``metadata`` breaks the resource's strict schema."""
    if not metadata:
        return
    row = await conn.fetchrow(
        "SELECT related_object, allow_defined_only, properties FROM metadata_schemas "
        "WHERE project_id = $1 AND related_object = $2 AND allow_defined_only",
        project_id,
        related_object,
    )
    if row is None:
        return
    problems = violations(dict(row), metadata)
    if problems:
        raise MetadataValidationFailed("; ".join(problems))
