"""Identifiers in the Voucherify style: a type prefix and random hex (``cat_0bb343dee3cdb5ec0c``)."""

from __future__ import annotations

import hashlib
import os
import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(10).hex()}"


def new_request_id() -> str:
    return f"v-{os.urandom(9).hex()}"


def new_key() -> str:
    """An API key id or token: a random UUID, as Voucherify issues them."""
    return str(uuid.uuid4())


def stable_id(prefix: str, *parts: str) -> str:
    """An id made from what caused a row, so the same cause always makes the same row."""
    return f"{prefix}_{hashlib.sha256(':'.join(parts).encode()).hexdigest()[:20]}"
