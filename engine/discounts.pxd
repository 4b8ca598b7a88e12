# Order state and discount math; cimported by stacking and qualification.

cdef class Line:
    cdef public Py_ssize_t index
    cdef public object product_id, product_source_id, sku_id, sku_source_id
    cdef public bint has_price, added
    cdef public long long price, quantity, initial_quantity, amount, initial_amount
    cdef public long long discount_amount, req_discount_amount, step_discount_amount
    cdef public long long discount_quantity, req_discount_quantity, step_discount_quantity
    cdef public long long req_added_quantity, step_added_quantity
    cdef public dict raw
    cdef inline long long subtotal(self):
        return self.amount - self.discount_amount
    cdef inline long long unit_price(self):
        if self.has_price:
            return self.price
        return self.amount // self.quantity if self.quantity > 0 else 0
    cdef Line copy(self)
    cpdef dict to_dict(self, bint step)


cdef class Order:
    cdef public list lines
    cdef public long long amount, initial_amount
    cdef public long long discount_amount, req_discount_amount, step_discount_amount
    cdef public dict raw
    cpdef long long items_discount_amount(self)
    cpdef long long total_amount(self)
    cpdef Order copy(self)
    cpdef void begin_step(self)
    cpdef dict to_dict(self, bint step=*, bint with_items=*)


cpdef Order build_order(dict order)
cpdef bint entry_matches(dict entry, Line ln, dict collections)
cpdef list match_lines(Order order, dict applicable_to, dict collections)
cpdef dict apply_discount(Order order, dict discount, list targets, dict env, bint initial_mode, dict prices)
cpdef long long apply_gift(Order order, object credits, long long balance, list targets, bint to_items) except -1
cpdef tuple apply_points(Order order, long long points, dict coin)
