"""The compiled body pre-scan says yes whenever the plain-Python reference does."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bodyscan import may_break_limits

DEPTH, ID_LENGTH = 8, 20
_BIG_NUMBER = re.compile(rb"\d{16}|\d[eE]")


def reference(raw: bytes) -> bool:
    """The scan as it was written with bytes methods and regexes."""
    return (
        raw.count(b"{") + raw.count(b"[") > DEPTH
        or b"\\u0000" in raw
        or b'\\"' in raw
        or (len(raw) > ID_LENGTH and max(map(len, raw.split(b'"'))) > ID_LENGTH)
        or _BIG_NUMBER.search(raw) is not None
    )


# Bytes rich in what the scan looks for.
pieces = st.sampled_from([b"{", b"[", b"]", b"}", b'"', b"\\", b"u0000", b"0", b"7", b"e", b"E", b"a", b":", b","])
bodies = st.lists(pieces, max_size=60).map(b"".join) | st.binary(max_size=80)


@settings(max_examples=3000, deadline=None)
@given(bodies)
def test_the_scan_agrees_with_the_reference(raw: bytes) -> None:
    assert may_break_limits(raw, DEPTH, ID_LENGTH) == reference(raw)


def test_each_limit_is_seen() -> None:
    assert not may_break_limits(b'{"id":"abc","amount":123}', DEPTH, ID_LENGTH)
    assert may_break_limits(b"[" * 9, DEPTH, ID_LENGTH)
    assert may_break_limits(b'{"id":"' + b"x" * 21 + b'"}', DEPTH, ID_LENGTH)
    assert may_break_limits(b'{"a":"\\u0000"}', DEPTH, ID_LENGTH)
    assert may_break_limits(b'{"a":"\\""}', DEPTH, ID_LENGTH)
    assert may_break_limits(b'{"a":1234567890123456}', DEPTH, ID_LENGTH)
    assert may_break_limits(b'{"a":1e5}', DEPTH, ID_LENGTH)
