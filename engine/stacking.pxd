from engine.discounts cimport Order, Plan, Targeting

cdef class Bundle:
    cdef readonly list components
    cdef readonly long long limit
    cpdef tuple match(self, Order o, dict collections)

cdef class CompiledRedeemable:
    cdef readonly dict source
    cdef readonly Plan plan
    cdef readonly list rules
    cdef readonly Targeting targeting
    cdef readonly list app_in, app_ex
    cdef readonly bint needs_after
    cdef readonly Bundle bundle
    cdef readonly bint state_free
    cdef readonly tuple fallback_keys
