"""Customers' wallets compiled for qualifications, kept per process and checked on every request.

A wallet of 200 codes cost a second round trip carrying 200 voucher hashes, decoding them, and
building and compiling 200 candidates, on every qualification. Now each process keeps the compiled
wallet of each customer it has served, with the definitions version it was built under and the
fingerprint the ``wallet_state`` script gave for the codes' state (state hashes and the amounts
live sessions hold). Every request still asks Redis, in its one round trip, whether that fingerprint,
the wallet's code list and the definitions version are current; only then is the copy used. So a
code published, removed, redeemed, disabled or locked, a lock expiring or a definitions bump is
seen by the very next qualification: nothing is ever answered from stale state.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

import engine
from voucherd.checkout.live_state import VoucherLive
from voucherd.definitions import voucher_state
from voucherd.platform import keys
from voucherd.platform.errors import MultipleRequests
from voucherd.platform.scripts import Scripts

# Codes kept compiled per process, over all customers; the least recently used wallets go first.
KEPT_CODES = 100_000
CHUNK = 64  # as the shared candidates: a page is answered from the first chunks that can fill it
# A wallet that changes between the two calls of one request again and again: read it as it is.
KEY_ATTEMPTS = 3


def _created(item: dict[str, Any]) -> str:
    return str(item.get("created_at") or "")


@dataclass
class CompiledWallet:
    """One customer's wallet candidates, as ``qualifications._wallet_candidates`` builds them."""

    version: int
    customer_id: str
    wallet_sha: str
    codes: list[str]
    fingerprint: str
    candidates: list[dict[str, Any]]  # in wallet order
    _everything: Any = None
    _chunks: list[tuple[Any, list[dict[str, Any]]]] | None = None
    _code_keys: list[str] | None = None

    def code_keys(self, project_id: str) -> list[str]:
        """Each code's state, lock and lock amount keys, built once: every request names them (600 for 200 codes)."""
        if self._code_keys is None:
            self._code_keys = _code_keys(project_id, self.codes)
        return self._code_keys

    @property
    def everything(self) -> Any:
        """One Qualifier over the wallet in its own order, as built before there was a cache."""
        if self._everything is None:
            self._everything = engine.Qualifier(self.candidates)
        return self._everything

    @property
    def chunks(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """The candidates newest first (stable, as the engine sorts), compiled in chunks."""
        if self._chunks is None:
            newest = sorted(self.candidates, key=_created, reverse=True)
            self._chunks = [
                (engine.Qualifier(newest[i : i + CHUNK]), newest[i : i + CHUNK]) for i in range(0, len(newest), CHUNK)
            ]
        return self._chunks


@dataclass
class WalletRead:
    """The one round trip's answer: what validation's read gives, plus the wallet's live codes."""

    version: int
    customer_id: str | None
    segments: list[str]
    compiled: CompiledWallet | None = None  # a current copy, when the cache had one
    vouchers: dict[str, VoucherLive | None] = field(default_factory=dict)  # otherwise the fresh state
    codes: list[str] = field(default_factory=list)
    wallet_sha: str = ""
    fingerprint: str = ""


class WalletCache:
    def __init__(self, kept_codes: int = KEPT_CODES) -> None:
        self._kept_codes = kept_codes
        self._codes = 0
        self._wallets: OrderedDict[tuple[str, str, str], CompiledWallet] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> CompiledWallet | None:
        found = self._wallets.get(key)
        if found is not None:
            self._wallets.move_to_end(key)
        return found

    def put(self, key: tuple[str, str, str], wallet: CompiledWallet) -> None:
        old = self._wallets.pop(key, None)
        if old is not None:
            self._codes -= len(old.codes)
        self._wallets[key] = wallet
        self._codes += len(wallet.codes)
        while self._codes > self._kept_codes and len(self._wallets) > 1:
            _key, dropped = self._wallets.popitem(last=False)
            self._codes -= len(dropped.codes)


def cache_key(project_id: str, customer: dict[str, Any]) -> tuple[str, str, str]:
    return (project_id, str(customer.get("id") or ""), str(customer.get("source_id") or ""))


async def read(
    redis: aioredis.Redis,
    scripts: Scripts,
    pool: asyncpg.Pool,
    cache: WalletCache,
    project_id: str,
    customer: dict[str, Any],
    now: datetime,
    *,
    wants_wallet: bool,
) -> WalletRead:
    """Definitions version, customer, segments and the wallet, current; one round trip when the copy is."""
    held = cache.get(cache_key(project_id, customer)) if wants_wallet else None
    base = [
        keys.definitions_version(project_id),
        keys.customer_segments(project_id),
        keys.customer_ids(project_id),
        keys.wallets(project_id),
    ]
    codes, sha, fingerprint, built_at, code_keys = [], "", "", "", []
    if held is not None:
        codes, sha, fingerprint, built_at = held.codes, held.wallet_sha, held.fingerprint, str(held.version)
        code_keys = held.code_keys(project_id)
    for _attempt in range(KEY_ATTEMPTS + 1):
        reply = await scripts.wallet_state(
            keys=base + code_keys,
            args=[
                int(now.timestamp() * 1000),
                customer.get("id") or "",
                customer.get("source_id") or "",
                sha,
                fingerprint,
                built_at,
                "1" if wants_wallet else "0",
            ],
        )
        status = _text(reply[4])
        if status != "keys":
            break
        raw_wallet: bytes = reply[3]
        codes, sha, fingerprint = list(orjson.loads(raw_wallet)), hashlib.sha1(raw_wallet).hexdigest(), ""
        code_keys = _code_keys(project_id, codes)
    else:
        # A writer changed the wallet between every read: the client may try again (never a 500).
        raise MultipleRequests("The customer's wallet changed while it was read; try again")  # pragma: no cover
    segments = orjson.loads(reply[2]) if reply[2] else []
    answer = WalletRead(int(reply[0]), _text(reply[1]) if reply[1] else None, list(segments))
    if status == "same" and held is not None:
        # The candidates depend on the definitions version and the codes' state only, both unchanged.
        answer.compiled = held
    elif status == "fresh":
        answer.codes, answer.wallet_sha, answer.fingerprint = codes, sha, _text(reply[5])
        answer.vouchers = await _vouchers(redis, pool, project_id, codes, reply[6:])
    return answer


async def _vouchers(
    redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, codes: list[str], flat: list[Any]
) -> dict[str, VoucherLive | None]:
    vouchers: dict[str, VoucherLive | None] = {}
    for i, code in enumerate(codes):
        raw = flat[2 * i]
        state = dict(zip(map(bytes.decode, raw[::2]), map(bytes.decode, raw[1::2]), strict=True))
        held = {k: int(v) for k, v in orjson.loads(flat[2 * i + 1]).items()}
        if not state:
            # Never seen by this Redis (or evicted): PostgreSQL once, then Redis has it (as validation does).
            state = await voucher_state.load(redis, pool, project_id, code) or {}
        vouchers[code] = None if not state or state.get("missing") else VoucherLive(state, held, {})
    return vouchers


def _code_keys(project_id: str, codes: list[str]) -> list[str]:
    out: list[str] = []
    for code in codes:
        out += [
            keys.voucher_state(project_id, code),
            keys.voucher_locks(project_id, code),
            keys.voucher_lock_amounts(project_id, code),
        ]
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
