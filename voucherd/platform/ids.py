"""Identifiers in the Voucherify style: a type prefix and random hex (``cat_0bb343dee3cdb5ec0c``)."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid


class _Entropy:
    """Random bytes read from the kernel (os.urandom) a few kilobytes at a time, handed out in slices.

    A redemption makes half a dozen ids, and a getrandom(2) call each showed as 4% of its CPU. A forked
    child forgets what its parent had read, or both would hand out the same ids.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.forget()

    def forget(self) -> None:
        self.bytes, self.taken, self.lock = b"", 0, threading.Lock()  # a fresh lock: another thread may hold it

    def hex(self, n: int) -> str:
        with self.lock:
            if self.taken + n > len(self.bytes):
                self.bytes, self.taken = os.urandom(self.size), 0
            start = self.taken
            self.taken += n
            return self.bytes[start : start + n].hex()


_ENTROPY = _Entropy()
os.register_at_fork(after_in_child=_ENTROPY.forget)


def new_id(prefix: str) -> str:
    return f"{prefix}_{_ENTROPY.hex(10)}"


def new_request_id() -> str:
    return f"v-{_ENTROPY.hex(9)}"


def new_key() -> str:
    """An API key id or token: a random UUID, as Voucherify issues them."""
    return str(uuid.uuid4())


def stable_id(prefix: str, *parts: str) -> str:
    """An id made from what caused a row, so the same cause always makes the same row."""
    return f"{prefix}_{hashlib.sha256(':'.join(parts).encode()).hexdigest()[:20]}"
