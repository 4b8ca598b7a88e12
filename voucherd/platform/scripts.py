"""Lua scripts, read once from each context's ``lua/*.lua`` and registered per Redis client.

Every change to a counter that must never go wrong is one of these scripts:
it checks its guards and appends its event in the same atomic step.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from voucherd.platform.instruments import SCRIPT_SECONDS
from voucherd.platform.script_wire import ScriptWire


def _load_sources() -> dict[str, str]:
    """Every ``voucherd/<context>/lua/<name>.lua`` by name; a script lives beside the code that calls it."""
    sources: dict[str, str] = {}
    for context in resources.files("voucherd").iterdir():
        folder = context.joinpath("lua")
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.endswith(".lua"):
                name = entry.name.removesuffix(".lua")
                if name in sources:
                    raise RuntimeError(f"two Lua scripts are named {name!r}")
                sources[name] = entry.read_text("utf-8")
    return sources


SOURCES: dict[str, str] = _load_sources()

# Scripts whose second run answers what the first did, so a call whose connection failed after
# sending may run again (voucherd.platform.redis_client): read_state and customer_ids_claim_many only
# read (as wallet_state), or claim an id with HSETNX and read it back; floor only reads; apply_counters keeps
# each commit's outcome under its commit record and answers that to a second run.
REPLAY_SAFE = frozenset({"read_state", "wallet_state", "customer_ids_claim_many", "floor", "apply_counters"})


class _Timed:
    """A registered script whose round trips are measured (voucherd.platform.instruments).

    With a ``ScriptWire`` (one server, not a cluster) the call goes over that pipelined
    connection; otherwise through redis-py's script object.
    """

    def __init__(self, name: str, source: str, script: AsyncScript, wire: ScriptWire | None) -> None:
        self._histogram = SCRIPT_SECONDS.labels(name)
        self._script = script
        self._wire = wire
        self._sha = script.sha
        self._source = source
        self._replay_safe = name in REPLAY_SAFE

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        started = time.perf_counter()
        try:
            if self._wire is not None:
                try:
                    return await self._wire.evalsha(self._sha, self._source, keys, args, replay_safe=self._replay_safe)
                except TypeError:  # an argument hiredis cannot pack (a bool): redis-py's packer refuses it clearly
                    pass
            return await self._script(keys=keys, args=args)
        finally:
            self._histogram.observe(time.perf_counter() - started)


class Scripts:
    """``scripts.<name>(keys=[...], args=[...])`` runs ``lua/<name>.lua`` with EVALSHA."""

    def __init__(self, client: aioredis.Redis) -> None:
        registered = {name: client.register_script(source) for name, source in SOURCES.items()}
        wire: ScriptWire | None = getattr(client, "script_wire", None)  # redis_client.ReconnectingRedis
        self._scripts: dict[str, _Timed] = {
            name: _Timed(name, SOURCES[name], script, wire) for name, script in registered.items()
        }
        replay_safe: set[str] | None = getattr(client, "replay_safe", None)  # redis_client.ReconnectingRedis
        if replay_safe is not None:
            replay_safe.update(registered[name].sha for name in REPLAY_SAFE)

    def __getattr__(self, name: str) -> _Timed:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(f"no Lua script named {name!r}") from None

    async def run(self, name: str, keys: list[Any], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)
