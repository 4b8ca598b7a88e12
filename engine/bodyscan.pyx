"""One pass over a request body's raw bytes: could it break a shape limit?

The server decodes every body with orjson, then walks the decoded value for the shape limits
(nesting, id lengths, numbers JavaScript cannot hold, NUL characters) only when this scan says
the bytes might break one. The scan is conservative: it may say yes for a body that is fine,
never no for one that is not. Pure, like the rest of the engine: bytes in, a boolean out.
"""


def may_break_limits(bytes raw, Py_ssize_t max_depth, Py_ssize_t max_id_length):
    """True when ``raw`` has more than ``max_depth`` ``{``/``[``, a quote-free run longer than
    ``max_id_length`` bytes, an escaped quote or ``\\u0000``, 16 digits in a row, or a digit
    followed by ``e``/``E``."""
    cdef const unsigned char *p = raw
    cdef Py_ssize_t n = len(raw), i, opens = 0, run = 0, digits = 0
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if c == 34:  # "
            if i > 0 and p[i - 1] == 92:  # an escaped quote hides a string's length
                return True
            run = 0
        else:
            run += 1
            if run > max_id_length:
                return True
        if 48 <= c <= 57:
            digits += 1
            if digits >= 16:
                return True
            continue
        if (c == 101 or c == 69) and digits:  # e / E after a digit: an exponent
            return True
        digits = 0
        if c == 123 or c == 91:  # { [
            opens += 1
            if opens > max_depth:
                return True
        elif c == 92 and i + 5 < n and p[i + 1] == 117 and p[i + 2] == 48 and p[i + 3] == 48 \
                and p[i + 4] == 48 and p[i + 5] == 48:  # \u0000
            return True
    return False
