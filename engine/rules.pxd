from engine.discounts cimport Order

cdef class Leaf:
    cdef readonly str name, prop, key
    cdef readonly object message
    cdef int code
    cdef list ops
    cdef object operands
    cdef readonly Group sub
    cdef bint test(self, dict ctx, Order order, list scope) except -1
    cdef bint _all_ops(self, object v, dict ctx) except -1
    cdef bint _set_ops(self, list have, dict ctx) except -1
    cdef bint _list_ops(self, list vals, dict ctx, bint each) except -1
    cdef bint _structural(self, dict ctx, Order order, list scope) except -1

cdef class Group:
    cdef list leaves
    cdef object logic
    cdef Leaf failed
    cdef bint test(self, dict ctx, Order order, list scope) except -1
    cdef bint _eval(self, object node, dict ctx, Order order, list scope) except -1

cdef class RuleSet:
    cdef readonly str id
    cdef readonly object message
    cdef readonly dict applicable_to
    cdef readonly object required_ids
    cdef readonly bint needs_total_after
    cdef readonly bint has_order_rules
    cdef readonly bint has_budget_rules
    cdef readonly dict bundle_rules
    cdef Group root
    cpdef tuple check(self, dict ctx, Order order)
