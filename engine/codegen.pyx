"""Voucher code generation from a ``code_config``.

Random characters come from ``os.urandom`` (kernel CSPRNG) when no seed is
given, so codes cannot be predicted from other codes. With a seed, a
xoshiro256** stream (seeded through splitmix64) makes generation reproducible
for tests and imports; never use seeded codes in production.
"""

import os

from cpython.unicode cimport PyUnicode_FromKindAndData
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

from engine.money import EngineInputError

DEFAULT_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DEFAULT_PATTERN = "########"
MAX_LENGTH = 100
# Rejection sampling slows down as the space fills; past this fill ratio draw
# without replacement from the enumerated space instead.
cdef Py_ssize_t _ENUMERATE_LIMIT = 4_000_000
cdef Py_ssize_t _URANDOM_CHUNK = 65536


cdef inline uint64_t _rotl(uint64_t x, int k) nogil:
    return (x << k) | (x >> (64 - k))


cdef class _Source:
    """32-bit random words: kernel CSPRNG bytes, or xoshiro256** when seeded."""
    cdef uint64_t s[4]
    cdef bint seeded
    cdef bytes chunk
    cdef const unsigned char *buf
    cdef Py_ssize_t pos, size

    def __cinit__(self, object seed):
        cdef uint64_t z, x
        cdef int i
        self.seeded = seed is not None
        self.pos = 0
        self.size = 0
        if self.seeded:
            x = <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)
            for i in range(4):
                x += 0x9E3779B97F4A7C15ULL
                z = x
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
                self.s[i] = z ^ (z >> 31)

    cdef inline uint32_t next32(self):
        cdef uint64_t result, t
        cdef uint32_t w
        if self.seeded:
            result = _rotl(self.s[1] * 5, 7) * 9
            t = self.s[1] << 17
            self.s[2] ^= self.s[0]
            self.s[3] ^= self.s[1]
            self.s[1] ^= self.s[2]
            self.s[0] ^= self.s[3]
            self.s[2] ^= t
            self.s[3] = _rotl(self.s[3], 45)
            return <uint32_t>(result >> 32)
        if self.pos + 4 > self.size:
            self.chunk = os.urandom(_URANDOM_CHUNK)
            self.buf = self.chunk
            self.size = _URANDOM_CHUNK
            self.pos = 0
        memcpy(&w, self.buf + self.pos, 4)
        self.pos += 4
        return w

    cdef inline uint32_t below(self, uint32_t m):
        # Lemire's multiply-shift with rejection: unbiased integer in [0, m).
        cdef uint64_t prod = <uint64_t>self.next32() * m
        cdef uint32_t low = <uint32_t>prod, threshold
        if low < m:
            threshold = (<uint32_t>(-m)) % m
            while low < threshold:
                prod = <uint64_t>self.next32() * m
                low = <uint32_t>prod
        return <uint32_t>(prod >> 32)


def _int_field(cfg, name):
    value = cfg.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EngineInputError(f"code_config.{name} must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise EngineInputError(f"code_config.{name} must be an integer")
        value = int(value)
    return value


def _str_field(cfg, name, default):
    value = cfg.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise EngineInputError(f"code_config.{name} must be a string")
    return value


def validate_code_config(cfg):
    """Normalize a ``code_config``; raise ``EngineInputError`` when it is unusable.

    Returns ``{length, charset, prefix, postfix, pattern}`` where ``pattern``
    always holds the full layout (``#`` = one random character) and ``length``
    is the number of random characters.
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise EngineInputError("code_config must be an object")
    charset = _str_field(cfg, "charset", DEFAULT_CHARSET)
    if not charset:
        raise EngineInputError("code_config.charset must not be empty")
    if len(set(charset)) != len(charset):
        raise EngineInputError("code_config.charset must not repeat characters")
    prefix = _str_field(cfg, "prefix", "")
    postfix = _str_field(cfg, "postfix", "")
    pattern = _str_field(cfg, "pattern", None)
    length = _int_field(cfg, "length")
    if pattern is not None and pattern != "":
        n = pattern.count("#")
        if n == 0:
            raise EngineInputError("code_config.pattern must contain at least one '#'")
        if n > MAX_LENGTH:
            raise EngineInputError(f"code_config.pattern may hold at most {MAX_LENGTH} '#'")
        length = n
    elif length is not None:
        if length < 1 or length > MAX_LENGTH:
            raise EngineInputError(f"code_config.length must be between 1 and {MAX_LENGTH}")
        pattern = "#" * length
    else:
        pattern = DEFAULT_PATTERN
        length = len(pattern)
    return {"length": length, "charset": charset, "prefix": prefix, "postfix": postfix, "pattern": pattern}


def code_space(cfg):
    """How many distinct codes a (normalized or raw) config can produce."""
    norm = validate_code_config(cfg)
    return len(norm["charset"]) ** norm["length"]


cdef list _layout(dict norm):
    # Full code template as code points; the random slots are remembered separately.
    return [ord(c) for c in norm["prefix"] + norm["pattern"] + norm["postfix"]]


def generate_codes(cfg, count, seed=None, exclude=None):
    """Return ``count`` distinct codes for ``cfg`` that are not in ``exclude``.

    Deterministic for a given ``seed``; kernel-random when ``seed`` is None.
    Raises ``EngineInputError`` when the code space cannot hold ``count`` new codes.
    """
    norm = validate_code_config(cfg)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise EngineInputError("count must be a non-negative integer")
    if exclude is None:
        exclude = frozenset()
    space = len(norm["charset"]) ** norm["length"]
    # Only excluded codes with the same shape can collide; counting all is a safe upper bound.
    if count > space - len(exclude):
        raise EngineInputError(
            f"code_config allows {space} codes; cannot generate {count} new ones"
            + (f" next to {len(exclude)} existing" if exclude else "")
        )
    if count == 0:
        return []
    src = _Source(seed)
    if space <= _ENUMERATE_LIMIT and count * 4 >= space:
        return _draw_enumerated(norm, count, src, exclude, space)
    return _draw_random(norm, count, src, exclude)


cdef list _draw_random(dict norm, Py_ssize_t count, _Source src, object exclude):
    cdef list tmpl = _layout(norm)
    cdef str charset = norm["charset"]
    cdef Py_ssize_t n = len(tmpl), i, j, nslots = 0
    cdef uint32_t m = len(charset)
    cdef Py_ssize_t maxcp = 0
    for c in tmpl:
        if c > maxcp:
            maxcp = c
    for c in charset:
        if ord(c) > maxcp:
            maxcp = ord(c)
    # prefix/postfix may themselves contain '#': only pattern positions are random slots
    cdef Py_ssize_t off = len(norm["prefix"])
    cdef list slots = [off + k for k, ch in enumerate(norm["pattern"]) if ch == "#"]
    nslots = len(slots)
    cdef int kind = 1 if maxcp < 256 else (2 if maxcp < 65536 else 4)
    cdef bytearray work = bytearray(n * kind)
    cdef unsigned char *w8 = work
    cdef unsigned short *w16 = <unsigned short *>w8
    cdef unsigned int *w32 = <unsigned int *>w8
    cdef bytearray cs = bytearray(m * 4)
    cdef unsigned int *csv = <unsigned int *><unsigned char *>cs
    cdef bytearray sl = bytearray(nslots * sizeof(Py_ssize_t))
    cdef Py_ssize_t *slv = <Py_ssize_t *><unsigned char *>sl
    for i in range(m):
        csv[i] = ord(charset[i])
    for i in range(nslots):
        slv[i] = slots[i]
    for i in range(n):
        if kind == 1:
            w8[i] = tmpl[i]
        elif kind == 2:
            w16[i] = tmpl[i]
        else:
            w32[i] = tmpl[i]
    cdef set seen = set()
    cdef list out = []
    cdef bint check_ex = len(exclude) > 0
    cdef str code
    cdef int ukind = 1 if kind == 1 else (2 if kind == 2 else 4)
    while len(out) < count:
        for j in range(nslots):
            if kind == 1:
                w8[slv[j]] = csv[src.below(m)]
            elif kind == 2:
                w16[slv[j]] = csv[src.below(m)]
            else:
                w32[slv[j]] = csv[src.below(m)]
        code = PyUnicode_FromKindAndData(ukind, w8, n)
        if code in seen or (check_ex and code in exclude):
            continue
        seen.add(code)
        out.append(code)
    return out


cdef list _draw_enumerated(dict norm, Py_ssize_t count, _Source src, object exclude, object space):
    # Small spaces: partial Fisher-Yates over code indices, skipping excluded codes.
    cdef Py_ssize_t total = space, i, k, drawn = 0
    cdef str charset = norm["charset"]
    cdef Py_ssize_t m = len(charset), length = norm["length"]
    cdef list idx = list(range(total))
    cdef list out = []
    cdef str head = norm["prefix"], tail = norm["postfix"], pattern = norm["pattern"]
    cdef list parts
    i = 0
    while len(out) < count:
        if i >= total:
            raise EngineInputError("code space exhausted by excluded codes")
        k = i + <Py_ssize_t>(_below_big(src, total - i))
        idx[i], idx[k] = idx[k], idx[i]
        v = idx[i]
        i += 1
        digits = []
        for _ in range(length):
            digits.append(charset[v % m])
            v //= m
        parts = []
        for ch in pattern:
            parts.append(digits.pop() if ch == "#" else ch)
        code = head + "".join(parts) + tail
        if code in exclude:
            continue
        out.append(code)
    return out


cdef uint32_t _below_big(_Source src, Py_ssize_t bound):
    # bound <= _ENUMERATE_LIMIT < 2**32
    return src.below(<uint32_t>bound)
