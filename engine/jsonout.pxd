# A growable byte buffer that writes JSON directly (cimported by discounts).
#
# Rendering calculated orders as JSON bytes instead of dicts is what keeps a stacked
# evaluation within its time budget. The hot writers are C macros over a raw cursor:
# reserve room first (``jb_reserve``), write, then store the cursor back (``jb_end``).
# Rare paths (growing, escaping, nested values) live in jsonout.pyx.

from libc.string cimport memcpy

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static const char JB_DIGITS[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    /* Digits are written backwards from the end, two at a time: no temporary, no memcpy call.
       Money and quantities fit 32 bits almost always, and 32-bit division is the cheap kind. */
    static CYTHON_INLINE char *jb_w_u32(char *p, uint32_t v) {
        int n = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5
              : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
        char *end = p + n;
        char *q = end;
        while (v >= 100) {
            uint32_t r = (v % 100) * 2;
            v /= 100;
            q -= 2;
            q[0] = JB_DIGITS[r];
            q[1] = JB_DIGITS[r + 1];
        }
        if (v >= 10) {
            q[-2] = JB_DIGITS[v * 2];
            q[-1] = JB_DIGITS[v * 2 + 1];
        } else {
            q[-1] = (char)('0' + v);
        }
        return end;
    }
    static CYTHON_INLINE char *jb_w_uint(char *p, unsigned long long u) {
        if (u <= 0xFFFFFFFFull) return jb_w_u32(p, (uint32_t)u);
        char tmp[20];
        int i = 20;
        while (u > 0) {
            tmp[--i] = (char)('0' + u % 10);
            u /= 10;
        }
        memcpy(p, tmp + i, 20 - i);
        return p + 20 - i;
    }
    static CYTHON_INLINE char *jb_w_int(char *p, long long v) {
        if (v < 0) {
            *p++ = '-';
            return jb_w_uint(p, (unsigned long long)(-(v + 1)) + 1);
        }
        return jb_w_uint(p, (unsigned long long)v);
    }
    /* ``lit`` is a string literal: its length is known when compiling. */
    #define JB_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)
    #define JB_FIELD(p, lit, v) jb_w_int(JB_LIT((p), lit), (v))
    """
    char *jb_w_int(char *p, long long v) noexcept nogil
    char *JB_LIT(char *p, const char *lit) noexcept nogil
    char *JB_FIELD(char *p, const char *lit, long long v) noexcept nogil

# Longest a JB_FIELD writes besides its key: a sign and 19 digits.
cdef enum:
    JB_INT_MAX = 20

cdef struct JBuf:
    char *p
    Py_ssize_t n
    Py_ssize_t cap
    bint heap

cdef int jb_init(JBuf *b, char *stack, Py_ssize_t cap) noexcept
cdef void jb_free(JBuf *b) noexcept
cdef int jb_grow(JBuf *b, Py_ssize_t extra) except -1
cdef bytes jb_bytes(JBuf *b)
cdef int jb_value(JBuf *b, object v) except -1
cdef int jb_str(JBuf *b, str s) except -1


cdef inline char *jb_reserve(JBuf *b, Py_ssize_t k) except NULL:
    """The write cursor, with room for ``k`` more bytes."""
    if b.n + k > b.cap:
        jb_grow(b, k)
    return b.p + b.n


cdef inline void jb_end(JBuf *b, char *cursor) noexcept:
    b.n = cursor - b.p


cdef inline int jb_put(JBuf *b, const char *s, Py_ssize_t k) except -1:
    cdef char *p = jb_reserve(b, k)
    memcpy(p, s, k)
    b.n += k
    return 0


cdef inline int jb_char(JBuf *b, char c) except -1:
    cdef char *p = jb_reserve(b, 1)
    p[0] = c
    b.n += 1
    return 0
