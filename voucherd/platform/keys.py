"""Every Redis key and stream name voucherd uses, in one place.

Keys of one project share the hash tag ``{p:<project_id>}`` where a script must
touch several of them atomically, so that a Redis Cluster keeps them in one slot.
"""

from __future__ import annotations

import zlib

PREFIX = "vd"


def definitions_version(project_id: str) -> str:
    """Bumped on every definition change; processes reload their compiled caches when it moves."""
    return f"{PREFIX}:{{p:{project_id}}}:defs"


def stream(name: str) -> str:
    return f"{PREFIX}:stream:{{{name}}}"


def dead_letter_stream(name: str) -> str:
    return dead_letter_for(stream(name))


def dead_letter_for(stream_key: str) -> str:
    """Shares the hash tag of its stream so the dead-letter move is one script in one slot."""
    return f"{stream_key}:dead"


def stream_index(name: str) -> str:
    """SET of the per-project stream keys of the family ``name`` (see ``project_stream``), for the worker."""
    return f"{PREFIX}:streamindex:{name}"


def health_probe() -> str:
    return f"{PREFIX}:health"


# --- live state on the hot path: every key of one project carries the tag {p:<project_id>} ---


def project_tag(project_id: str) -> str:
    return f"{PREFIX}:{{p:{project_id}}}"


def voucher_state(project_id: str, code: str) -> str:
    """HASH of one voucher's live state (see voucherd.definitions.voucher_state)."""
    return f"{project_tag(project_id)}:v:{code}"


GENERATED_BUCKETS = 1024


def generated_codes(project_id: str, code: str) -> str:
    """HASH code -> ``<template id>|<voucher id>`` of generated codes whose state hash is not written yet
    (one of ``GENERATED_BUCKETS`` per project, chosen by the code's CRC-32; see voucherd.definitions.voucher_state)."""
    return generated_bucket(project_id, zlib.crc32(code.encode()) % GENERATED_BUCKETS)


def generated_bucket(project_id: str, number: int) -> str:
    return f"{project_tag(project_id)}:gen:{number}"


def generated_templates(project_id: str) -> str:
    """HASH template id -> JSON list of the field/value pairs that a generation's codes share."""
    return f"{project_tag(project_id)}:gentpl"


def voucher_locks(project_id: str, code: str) -> str:
    """ZSET session key -> expiry (epoch ms) of the validation sessions holding a reservation on the voucher."""
    return f"{project_tag(project_id)}:v:{code}:locks"


def voucher_lock_amounts(project_id: str, code: str) -> str:
    """HASH session key -> JSON {field: amount} reserved by that session (units, credits, points)."""
    return f"{project_tag(project_id)}:v:{code}:lockamt"


def project_stream(project_id: str, name: str) -> str:
    """A stream that a project's commit scripts append to atomically with their counters (same slot)."""
    return f"{project_tag(project_id)}:stream:{name}"


def customer_segments(project_id: str) -> str:
    """HASH of segment membership for the hot path: field ``id:<customer id>`` and ``src:<source id>`` -> JSON
    list of segment ids (sorted). Written by voucherd.catalog.segments after each PostgreSQL change;
    absent = no segment."""
    return f"{project_tag(project_id)}:custsegs"


def customer_ids(project_id: str) -> str:
    """HASH source_id -> customer id, so the hot path names a customer without PostgreSQL."""
    return f"{project_tag(project_id)}:custids"


def order_ids(project_id: str) -> str:
    """HASH source_id -> order id, so the hot path names an order without PostgreSQL."""
    return f"{project_tag(project_id)}:orderids"


def rolled_back(project_id: str) -> str:
    """HASH redemption id -> 1 once rolled back: the guard that makes a rollback happen once."""
    return f"{project_tag(project_id)}:rolledback"


def commit_record(beside: str, commit_id: str) -> str:
    """STRING: the outcome of one counter commit, kept briefly so a retried commit answers it
    (voucherd.checkout.counters).

    It takes the hash tag of ``beside``, a key the same commit touches, so the script stays in one slot.
    """
    start = beside.find("{")
    end = beside.find("}", start + 1) if start >= 0 else -1
    tag = beside[start : end + 1] if end > start + 1 else ""
    return f"{PREFIX}:{tag}:commit:{commit_id}" if tag else f"{PREFIX}:commit:{commit_id}"


def idempotency(project_id: str, key: str) -> str:
    return f"{project_tag(project_id)}:idem:{key}"


def counters(project_id: str) -> str:
    """HASH of redemption counts per customer and per incentive (see voucherd.checkout.redemption_counters)."""
    return f"{project_tag(project_id)}:counters"


def wallets(project_id: str) -> str:
    """HASH customer id -> JSON list of the codes published to that customer (their wallet)."""
    return f"{project_tag(project_id)}:wallets"


def pending_redemptions(project_id: str) -> str:
    """HASH of the redemption and rollback events the worker has not persisted yet (read-your-writes).

    The commit script writes it with the stream entry: the event's home field holds its JSON, every other
    id it answers for holds ``@<home>``. The worker deletes the fields once PostgreSQL has the event (see
    voucherd.checkout.pending_redemptions)."""
    return f"{project_tag(project_id)}:pending"


def client_rate(ip: str) -> str:
    """The client API's request counter for one IP (its own slot: it is touched alone)."""
    return f"{PREFIX}:rate:{{{ip}}}"


def console_session(token: str) -> str:
    """STRING (JSON) of one browser session of the admin console: project id and key kind, never a secret.
    Expires on its own (see server.console.sessions)."""
    return f"{PREFIX}:console:{{{token}}}"


def console_flash(token: str) -> str:
    """LIST of the messages the console shows on that session's next page (beside its session key)."""
    return f"{PREFIX}:console:{{{token}}}:flash"
