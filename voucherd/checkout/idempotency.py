"""``Idempotency-Key`` for redemptions and rollbacks: a retry within 24 h gets the first answer.

The first request with a key claims it (``pending``) and, once answered, stores its
status and body. A retry with the same key and the same request gets that answer
again without redeeming twice; the same key with a different request gets 409, and
so does a retry while the first is still running. A request that crashed releases
its claim, and a claim left by a dead process expires after a minute.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from voucherd.platform import keys
from voucherd.platform.errors import IdempotencyKeyReused, InvalidPayload, MultipleRequests
from voucherd.platform.scripts import Scripts

KEEP_ANSWER_MS = 24 * 3_600_000
PENDING_MS = 60_000
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    redis_key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: bytes


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def begin(scripts: Scripts, project_id: str, key: str, request_fingerprint: str) -> Claim | StoredAnswer:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidPayload(f"Idempotency-Key should be 1 to {MAX_KEY_LENGTH} characters")
    claim = Claim(keys.idempotency(project_id, key), request_fingerprint)
    reply = await scripts.idempotency(keys=[claim.redis_key], args=["begin", request_fingerprint, PENDING_MS])
    state = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
    if state == "new":
        return claim
    if state == "mismatch":
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different request")
    if state == "pending":
        raise MultipleRequests(f"A request with Idempotency-Key {key!r} is still in progress")
    return StoredAnswer(int(reply[1]), bytes(reply[2]))


async def finish(scripts: Scripts, claim: Claim, status: int, body: bytes) -> None:
    await scripts.idempotency(keys=[claim.redis_key], args=["finish", claim.fingerprint, KEEP_ANSWER_MS, status, body])


async def abandon(scripts: Scripts, claim: Claim) -> None:
    await scripts.idempotency(keys=[claim.redis_key], args=["abandon", claim.fingerprint])
