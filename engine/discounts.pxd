# Order state and discount math; cimported by stacking and qualification.

from cpython.object cimport PyObject

from engine.formula cimport Formula
from engine.jsonout cimport JBuf

cdef class Line:
    cdef public Py_ssize_t index
    cdef public object product_id, product_source_id, sku_id, sku_source_id
    cdef public bint has_price, added, plain
    cdef public long long price, quantity, initial_quantity, amount, initial_amount
    cdef public long long discount_amount, req_discount_amount, step_discount_amount
    cdef public long long discount_quantity, req_discount_quantity, step_discount_quantity
    cdef public long long req_added_quantity, step_added_quantity
    cdef public dict raw
    # render cache: the item's JSON opening is _head[_hoff:_hoff + _hlen] (_head is shared by
    # the order's lines), valid while quantity and amount are unchanged
    cdef bytes _head
    cdef Py_ssize_t _hoff, _hlen, _hfull  # _hfull: with the no-discount rest of the item
    cdef long long _hq, _hamt
    cdef inline long long subtotal(self):
        return self.amount - self.discount_amount
    cdef inline long long unit_price(self):
        if self.has_price:
            return self.price
        return self.amount // self.quantity if self.quantity > 0 else 0
    cdef Line copy(self)
    cdef inline bint head_ok(self):
        return self._head is not None and self._hq == self.quantity and self._hamt == self.amount
    cdef int write_head(self, JBuf *b) except -1
    cdef int render(self, JBuf *b, bint step) except -1


cdef class Order:
    cdef public list lines
    cdef public long long amount, initial_amount
    cdef public long long discount_amount, req_discount_amount, step_discount_amount
    cdef public dict raw
    cdef dict _echo
    cdef bytes _echo_json
    cdef bint _heads_ok
    cpdef long long items_discount_amount(self)
    cpdef long long total_amount(self)
    cpdef Order copy(self)
    cpdef void begin_step(self)
    cdef dict echo(self)
    cdef bytes echo_json(self)
    cdef int prepare_heads(self) except -1
    cdef int render_items(self, JBuf *b, bint step) except -1
    cpdef bytes to_json(self, bint step=*, bint with_items=*)
    cpdef object snapshot(self, bint step=*)
    cpdef dict view(self, bint step=*)
    cpdef dict to_dict(self, bint step=*, bint with_items=*)


cdef class Entry:
    cdef readonly dict raw
    cdef readonly dict out
    cdef readonly bytes out_json  # ``out`` as JSON, for rendering applicable_to
    cdef int obj, how
    cdef object eid, sid
    cdef bint unit_target, single, explicit, has_price, needs_env
    cdef long long skip, rep, qlim, aqlim, amount_limit, agg_amount_limit, price
    cdef Formula price_formula
    cdef list caps
    cdef bint matches(self, Line ln, dict collections)


# One selected cart line of an applicable_to entry. ``ln`` and ``entry`` are borrowed: the
# order and the compiled targeting outlive the evaluation step that reads the picks.
cdef struct Pick:
    PyObject *ln
    PyObject *entry
    long long units, start


cdef class Picks:
    """The picks of one application, in selection order (a C array: no object per pick)."""
    cdef Pick *items
    cdef Py_ssize_t n, cap
    cdef int add(self, Line ln, Entry entry, long long units, long long start) except -1


cdef class Targeting:
    cdef readonly list included, excluded
    cdef readonly bint explicit
    cdef dict p_id, p_src, s_id, s_src
    cdef list slow
    cdef bint needs_env
    cpdef list match(self, Order order, dict collections)


cdef class Plan:
    cdef readonly dict raw
    cdef int dtype
    cdef object effect
    cdef bint dynamic, item_formula
    cdef object fsrc
    # (result echo, value, effect) of a static discount, by whether targets are explicit
    cdef tuple _memo_implicit, _memo_explicit
    cdef dict apply(self, Order o, list targets, bint explicit, dict env, bint initial_mode, dict prices,
                    long long mult, dict used, Picks picks_out)
    cdef int _run(self, Order o, int eff, double value, list targets, bint initial_mode, dict oenv,
                  long long mult, dict used, Picks picks_out) except -1


cpdef Order build_order(dict order)
cpdef bint entry_matches(dict entry, Line ln, dict collections)
cpdef list match_lines(Order order, dict applicable_to, dict collections)
cpdef Plan compile_discount(dict discount)
cpdef Targeting compile_targeting(list included, list excluded)
cpdef list unit_positions(Line ln, Entry e, long long units, long long start)
cpdef dict apply_discount(Order order, dict discount, list targets, dict env, bint initial_mode, dict prices)
cpdef long long apply_gift(Order order, object credits, long long balance, list targets, bint to_items) except -1
cpdef tuple apply_points(Order order, long long points, dict coin)
