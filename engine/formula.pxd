cdef class Formula:
    cdef readonly object ast
    cdef readonly str source
    cpdef object evaluate(self, dict env)

cpdef Formula compile_formula(str source)
