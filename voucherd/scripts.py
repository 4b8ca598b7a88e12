"""Lua scripts, read once from ``lua/*.lua`` and registered per Redis client.

Every change to a counter that must never go wrong is one of these scripts:
it checks its guards and appends its event in the same atomic step.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


def _load_sources() -> dict[str, str]:
    folder = resources.files("voucherd").joinpath("lua")
    return {
        entry.name.removesuffix(".lua"): entry.read_text("utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }


SOURCES: dict[str, str] = _load_sources()


class Scripts:
    """``scripts.<name>(keys=[...], args=[...])`` runs ``lua/<name>.lua`` with EVALSHA."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source) for name, source in SOURCES.items()
        }

    def __getattr__(self, name: str) -> AsyncScript:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(f"no Lua script named {name!r}") from None

    async def run(self, name: str, keys: list[Any], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)
