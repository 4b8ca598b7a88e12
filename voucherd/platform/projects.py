"""Projects and their keys.

A project owns every row and every Redis key. Application keys map a request
to its project; management keys administer projects. Tokens are stored only
as SHA-256 digests and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id, new_key
from voucherd.platform.timeutil import iso

# Project settings kept in the jsonb column, with their defaults (ManagementProjectBase).
SETTING_DEFAULTS: dict[str, Any] = {
    "dial_code": None,
    "webhook_version": "v2024-01-01",
    "client_trusted_domains": [],
    "client_redeem_enabled": False,
    "client_publish_enabled": False,
    "client_list_vouchers_enabled": False,
    "client_create_customer_enabled": False,
    "client_loyalty_events_enabled": False,
    "client_set_voucher_expiration_date_enabled": False,
    "webhooks_callout_notifications": None,
    "api_usage_notifications": None,
}
_COLUMNS = ("name", "description", "timezone", "currency", "case_sensitive_codes")


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_matches(token: str, digest: bytes) -> bool:
    return hmac.compare_digest(hash_token(token), digest)


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    token: str

    def as_app(self) -> dict[str, str]:
        return {"app_id": self.key_id, "app_token": self.token}


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    project_id: str
    kind: str
    token_hash: bytes
    # The project's settings (client flags, trusted domains), cached with the key for the client API.
    settings: dict[str, Any] = field(default_factory=dict)


def project_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    settings = {**SETTING_DEFAULTS, **(row["settings"] or {})}
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "timezone": row["timezone"],
        "currency": row["currency"],
        "case_sensitive_codes": row["case_sensitive_codes"],
        **settings,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "project",
    }


def _split_fields(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    columns = {k: body[k] for k in _COLUMNS if k in body}
    settings = {k: body[k] for k in SETTING_DEFAULTS if k in body}
    if "name" in columns and (not isinstance(columns["name"], str) or not columns["name"].strip()):
        raise InvalidPayload("Property .name should be a non-empty string")
    for key in ("description", "timezone", "currency"):
        if columns.get(key) is not None and not isinstance(columns[key], str):
            raise InvalidPayload(f"Property .{key} should be string")
    if "case_sensitive_codes" in columns and not isinstance(columns["case_sensitive_codes"], bool):
        raise InvalidPayload("Property .case_sensitive_codes should be boolean")
    return columns, settings


async def _insert_key(conn: asyncpg.Connection, project_id: str, kind: str, pair: KeyPair) -> None:
    await conn.execute(
        """INSERT INTO api_keys (key_id, project_id, kind, token_hash) VALUES ($1, $2, $3, $4)
           ON CONFLICT (key_id) DO UPDATE SET project_id = EXCLUDED.project_id,
               kind = EXCLUDED.kind, token_hash = EXCLUDED.token_hash""",
        pair.key_id,
        project_id,
        kind,
        hash_token(pair.token),
    )


async def create_project(
    conn: asyncpg.Connection,
    body: dict[str, Any],
    *,
    is_default: bool = False,
    server_key: KeyPair | None = None,
) -> tuple[dict[str, Any], KeyPair, KeyPair]:
    """Create a project with fresh server-side and client-side keys; return it and the keys."""
    columns, settings = _split_fields(body)
    if "name" not in columns:
        raise InvalidPayload("Property .name is required")
    server_key = server_key or KeyPair(new_key(), new_key())
    client_key = KeyPair(new_key(), new_key())
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO projects (id, name, description, timezone, currency, case_sensitive_codes,
                                     settings, is_default)
               VALUES ($1, $2, $3, COALESCE($4, 'UTC'), COALESCE($5, 'USD'), COALESCE($6, true), $7, $8)
               RETURNING *""",
            new_id("proj"),
            columns["name"],
            columns.get("description"),
            columns.get("timezone"),
            columns.get("currency"),
            columns.get("case_sensitive_codes"),
            settings,
            is_default,
        )
        await _insert_key(conn, row["id"], "application", server_key)
        await _insert_key(conn, row["id"], "client", client_key)
    return project_view(row), server_key, client_key


async def get_project(conn: asyncpg.Connection, project_id: str) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM projects WHERE id = $1", project_id)
    if row is None:
        raise NotFound.of("project", project_id)
    return project_view(row)


async def list_projects(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [project_view(r) for r in await conn.fetch("SELECT * FROM projects ORDER BY created_at, id")]


async def update_project(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    columns, settings = _split_fields(body)
    assignments = [f"{name} = ${i}" for i, name in enumerate(columns, start=2)]
    assignments.append(f"settings = settings || ${len(columns) + 2}")
    row = await conn.fetchrow(
        f"UPDATE projects SET {', '.join(assignments)}, updated_at = now() WHERE id = $1 RETURNING *",
        project_id,
        *columns.values(),
        settings,
    )
    if row is None:
        raise NotFound.of("project", project_id)
    return project_view(row)


async def delete_project(conn: asyncpg.Connection, project_id: str) -> None:
    status = await conn.execute("DELETE FROM projects WHERE id = $1", project_id)
    if status == "DELETE 0":
        raise NotFound.of("project", project_id)


async def find_key(conn: asyncpg.Connection, key_id: str) -> StoredKey | None:
    row = await conn.fetchrow(
        """SELECT k.key_id, k.project_id, k.kind, k.token_hash, p.settings
           FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.key_id = $1""",
        key_id,
    )
    if row is None:
        return None
    settings = {**SETTING_DEFAULTS, **(row["settings"] or {})}
    return StoredKey(row["key_id"], row["project_id"], row["kind"], bytes(row["token_hash"]), settings)


async def find_management_key(conn: asyncpg.Connection, key_id: str) -> bytes | None:
    digest = await conn.fetchval("SELECT token_hash FROM management_keys WHERE key_id = $1", key_id)
    return bytes(digest) if digest is not None else None


async def create_management_key(conn: asyncpg.Connection, pair: KeyPair | None = None) -> KeyPair:
    pair = pair or KeyPair(new_key(), new_key())
    await conn.execute(
        """INSERT INTO management_keys (key_id, token_hash) VALUES ($1, $2)
           ON CONFLICT (key_id) DO UPDATE SET token_hash = EXCLUDED.token_hash""",
        pair.key_id,
        hash_token(pair.token),
    )
    return pair


async def ensure_default_project(
    conn: asyncpg.Connection, fixed_key: KeyPair | None
) -> tuple[dict[str, Any], KeyPair | None]:
    """Return the default project, creating it on first use.

    The returned key pair is the one the caller can print: freshly created
    keys, or ``fixed_key`` (installed on the default project when given).
    ``None`` means the project existed and its token is known only as a hash.
    """
    row = await conn.fetchrow("SELECT * FROM projects WHERE is_default")
    if row is None:
        project, server_key, _client = await create_project(
            conn, {"name": "Default project"}, is_default=True, server_key=fixed_key
        )
        return project, server_key
    if fixed_key is not None:
        await _insert_key(conn, row["id"], "application", fixed_key)
    return project_view(row), fixed_key
