"""Every Redis key and stream name voucherd uses, in one place.

Keys of one project share the hash tag ``{p:<project_id>}`` where a script must
touch several of them atomically, so that a Redis Cluster keeps them in one slot.
"""

from __future__ import annotations

PREFIX = "vd"


def definitions_version(project_id: str) -> str:
    """Bumped on every definition change; processes reload their compiled caches when it moves."""
    return f"{PREFIX}:{{p:{project_id}}}:defs"


def stream(name: str) -> str:
    return f"{PREFIX}:stream:{{{name}}}"


def dead_letter_stream(name: str) -> str:
    """Shares the hash tag of its stream so the dead-letter move is one script in one slot."""
    return f"{PREFIX}:stream:{{{name}}}:dead"


def health_probe() -> str:
    return f"{PREFIX}:health"
