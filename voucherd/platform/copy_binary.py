"""PostgreSQL's binary COPY format for many rows that differ in two text columns only (bulk generation).

asyncpg's ``copy_records_to_table`` encodes every field of every record; for a million generated codes that
share all but their id and code, building and encoding those records was the largest part of the worker's
CPU. Here the shared fields are encoded once and each row is its two leading fields plus those bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The column types whose binary form is written here; another type means "use copy_records_to_table".
TYPES = frozenset({"text", "boolean", "integer", "bigint", "timestamptz"})


def field(kind: str, value: Any) -> bytes:
    """One field (length word and data) of a column of type ``kind``; None is NULL."""
    if value is None:
        return struct.pack("!i", -1)
    if kind == "text":
        data = str(value).encode()
    elif kind == "boolean":
        data = b"\x01" if value else b"\x00"
    elif kind == "integer":
        data = struct.pack("!i", int(value))
    elif kind == "bigint":
        data = struct.pack("!q", int(value))
    elif kind == "timestamptz":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"a timestamptz field needs an aware datetime, got {value!r}")
        delta = value - _EPOCH
        data = struct.pack("!q", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    else:
        raise TypeError(f"no binary COPY encoding here for {kind}")
    return struct.pack("!i", len(data)) + data


def two_text_columns(first: Sequence[bytes], second: Sequence[bytes], shared: bytes, columns: int) -> bytes:
    """The COPY data of rows ``first[i], second[i], <shared>``: ``columns`` fields per row in all,
    ``shared`` the encoded fields after the two (see :func:`field`)."""
    if len(first) != len(second):
        raise ValueError("both columns need a value in every row")
    count = struct.pack("!h", columns)
    first_lengths, second_lengths = set(map(len, first)), set(map(len, second))
    if len(first_lengths) == 1 and len(second_lengths) == 1:  # the usual case: joined in C, no per-row objects
        head = count + struct.pack("!i", first_lengths.pop())
        middle = struct.pack("!i", second_lengths.pop())
        pieces = chain.from_iterable(zip(repeat(head), first, repeat(middle), second, repeat(shared)))
        return HEADER + b"".join(pieces) + TRAILER
    rows = (
        count + struct.pack("!i", len(a)) + a + struct.pack("!i", len(b)) + b + shared
        for a, b in zip(first, second, strict=True)
    )
    return HEADER + b"".join(rows) + TRAILER
