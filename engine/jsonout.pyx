"""The slow paths of the JSON writer declared in ``jsonout.pxd``.

Strings that are plain ASCII without quotes, backslashes or control characters are
copied as they are; anything else (other strings, nested objects echoed from the
request) goes through orjson, so the output is exactly what orjson would write.
"""

from libc.stdlib cimport free, malloc, realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from orjson import JSONEncodeError, dumps

from engine.money import EngineInputError


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)


cdef int jb_init(JBuf *b, char *stack, Py_ssize_t cap) noexcept:
    """Start writing into ``stack`` (``cap`` bytes); the buffer moves to the heap if it outgrows it."""
    b.p = stack
    b.n = 0
    b.cap = cap
    b.heap = False
    return 0


cdef void jb_free(JBuf *b) noexcept:
    if b.heap:
        free(b.p)
    b.p = NULL


cdef int jb_grow(JBuf *b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap * 2
    cdef char *p
    if cap < b.n + extra:
        cap = b.n + extra
    if b.heap:
        p = <char *>realloc(b.p, cap)
    else:
        p = <char *>malloc(cap)
        if p != NULL:
            memcpy(p, b.p, b.n)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    b.heap = True
    return 0


cdef bytes jb_bytes(JBuf *b):
    return PyBytes_FromStringAndSize(b.p, b.n)


cdef int jb_value(JBuf *b, object v) except -1:
    """Any JSON value echoed from the request, written by orjson."""
    cdef bytes data
    try:
        data = dumps(v)
    except JSONEncodeError as exc:
        raise EngineInputError(f"value cannot be written as JSON: {exc}") from None
    return jb_put(b, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef int jb_str(JBuf *b, str s) except -1:
    cdef Py_ssize_t i, n
    cdef const unsigned char *d
    cdef unsigned char c
    cdef char *p
    if PyUnicode_IS_ASCII(s):
        n = PyUnicode_GET_LENGTH(s)
        d = <const unsigned char *>PyUnicode_DATA(s)
        for i in range(n):
            c = d[i]
            if c < 32 or c == 34 or c == 92:
                return jb_value(b, s)
        p = jb_reserve(b, n + 2)
        p[0] = 34
        memcpy(p + 1, d, n)
        p[n + 1] = 34
        b.n += n + 2
        return 0
    return jb_value(b, s)
