"""Stream messages: one ``data`` field holding an orjson-encoded object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from voucherd.platform import keys

DATA_FIELD = b"data"


def encode(payload: dict[str, Any]) -> dict[bytes, bytes]:
    return {DATA_FIELD: orjson.dumps(payload)}


@dataclass(frozen=True)
class Message:
    id: str
    payload: dict[str, Any]

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Message:
        raw = fields.get(DATA_FIELD)
        try:
            payload = orjson.loads(raw) if raw is not None else {}
        except orjson.JSONDecodeError:
            payload = {"_undecodable": raw.decode("utf-8", "replace") if raw else ""}
        message_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return cls(message_id, payload if isinstance(payload, dict) else {"_value": payload})


async def publish(redis: aioredis.Redis, stream_name: str, payload: dict[str, Any]) -> str:
    """Append one message outside a Lua script (scripts XADD in the same atomic step as their counters)."""
    entry_id = await redis.xadd(keys.stream(stream_name), encode(payload))  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class StreamAnnouncer:
    """Makes sure workers read a project's stream of a family; one SADD per project per instance.

    Each server process holds one, so the cost is paid once per process and project.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._announced: set[tuple[str, str]] = set()

    async def stream_key(self, name: str, project_id: str) -> str:
        stream_key = keys.project_stream(project_id, name)
        if (name, project_id) not in self._announced:
            await self._redis.sadd(keys.stream_index(name), stream_key)
            self._announced.add((name, project_id))
        return stream_key
