"""Discount math over a mutable order state.

``build_order`` turns a request ``order`` into an :class:`Order` of :class:`Line`
objects with integer money. ``apply_discount`` / ``apply_gift`` / ``apply_points``
mutate it, recording each change three times: cumulative (``discount_amount``),
for this request (``req_*``) and for the redeemable being applied (``step_*``),
so both the per-redeemable snapshot and the top-level calculated order can be
rendered without recomputation.

Definitions compile once: :func:`compile_discount` gives a :class:`Plan` and
:func:`compile_targeting` a :class:`Targeting` (``applicable_to`` entries as typed
:class:`Entry` objects with a product/SKU index). ``apply_discount`` and
``match_lines`` are the plain-dict forms of the same code.

Choices the docs leave open (see SEMANTICS §3):
* percentages round half up per line; proportional splits use largest remainder
  and never give a line more than its subtotal;
* when a cap (line, entry, aggregated, or the order total) cuts a discount, lines
  keep their discount in selection order until the cap is used up;
* a partial-quantity base is the line subtotal scaled by units (half up);
* INITIAL_AMOUNT mode computes from ``amount`` (line or order) but is still capped
  by what is left, so totals never drop below zero;
* ``product_*_quantity_limit`` caps count units already discounted from the
  caller's counters (``used[field][id]``); per-entry caps key by the entry's id,
  ``product_in_collection_*`` caps by each line's product id; the tightest wins;
* a dynamic ``amount_off_formula`` / ``percent_off_formula`` that reads order-item
  operands (``ORDER_ITEM_PRICE`` …) is evaluated per discounted line.
"""

import re

cimport cython

from libc.math cimport ceil, floor
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy


from cpython.object cimport PyObject

cdef extern from "Python.h":
    object _PyDict_NewPresized(Py_ssize_t minused)
    bint PyDict_Next(object d, Py_ssize_t *pos, PyObject **key, PyObject **value)
    Py_ssize_t PyDict_GET_SIZE(object d)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from engine.formula cimport Formula, compile_formula
from engine.jsonout cimport (
    JB_FIELD, JB_INT_MAX, JB_LIT, JBuf, jb_bytes, jb_char, jb_end, jb_free, jb_init, jb_put, jb_reserve, jb_str, jb_value,
)
from engine.money cimport c_percent_of, c_round_half_up, c_to_int

from orjson import Fragment, JSONEncodeError, dumps, loads

from engine.money import EngineInputError

SHIPPING_PRODUCT_ID = "prod_5h1pp1ng"
SHIPPING_SOURCE_ID = "5h1pp1ng"

ORDER_EFFECT = "APPLY_TO_ORDER"
ITEM_EFFECTS = frozenset({"APPLY_TO_ITEMS", "APPLY_TO_ITEMS_PROPORTIONALLY",
                          "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY", "APPLY_TO_ITEMS_BY_QUANTITY"})
UNIT_EFFECTS = frozenset({"ADD_MISSING_ITEMS", "ADD_NEW_ITEMS", "ADD_MANY_ITEMS"})
DISCOUNT_TYPES = frozenset({"AMOUNT", "PERCENT", "FIXED", "UNIT"})
PRODUCT_QUANTITY_LIMITS = (
    "product_campaign_quantity_limit", "product_customer_campaign_quantity_limit",
    "product_promotion_tier_quantity_limit", "product_customer_promotion_tier_quantity_limit",
    "product_in_collection_campaign_quantity_limit", "product_in_collection_customer_campaign_quantity_limit",
    "product_in_collection_promotion_tier_quantity_limit",
    "product_in_collection_customer_promotion_tier_quantity_limit",
)
UNITS_LISTED_MAX = 1000
cdef tuple _CAP_FIELDS = tuple((f, f + "_formula") for f in PRODUCT_QUANTITY_LIMITS)
_ECHO_ITEM_KEYS = ("source_id", "related_object", "product", "sku", "metadata", "id")
cdef tuple _ECHO_ITEM_JSON = tuple((k, f',"{k}":'.encode()) for k in _ECHO_ITEM_KEYS)
_ECHO_ORDER_KEYS = ("id", "source_id", "status", "metadata", "referrer_id", "customer_id")
_ITEM_OPERAND = re.compile(r"(?<![A-Z_])ORDER_ITEM_")

# The implicit "every item" entry used when no rule names products.
ALL_ITEMS = {"object": "order", "effect": "APPLY_TO_EVERY", "target": "ITEM"}

cdef enum:
    T_AMOUNT = 0
    T_PERCENT = 1
    T_FIXED = 2
    T_UNIT = 3
    E_ORDER = 0
    E_ITEMS = 1
    E_PROP = 2
    E_PROP_Q = 3
    E_BY_Q = 4
    H_EVERY = 0
    H_TO_CHEAP = 1
    H_FROM_CHEAP = 2
    H_TO_DEAR = 3
    H_FROM_DEAR = 4

# build_order reads an item's fields in one pass over its keys; a key's slot is found by
# its length and bytes (cheaper than a dict lookup per key).
cdef extern from *:
    """
    enum { F_PRODUCT_ID, F_SKU_ID, F_PRODUCT, F_SKU, F_SOURCE_ID, F_RELATED, F_QUANTITY, F_PRICE,
           F_AMOUNT, F_DISCOUNT, F_METADATA, F_ID, F_SLOTS };
    static int vd_item_slot(PyObject *k) {
        if (!PyUnicode_CheckExact(k) || !PyUnicode_IS_ASCII(k)) return -1;
        const char *s = (const char *)PyUnicode_DATA(k);
        switch (PyUnicode_GET_LENGTH(k)) {
        case 2: return memcmp(s, "id", 2) ? -1 : F_ID;
        case 3: return memcmp(s, "sku", 3) ? -1 : F_SKU;
        case 5: return memcmp(s, "price", 5) ? -1 : F_PRICE;
        case 6: return !memcmp(s, "sku_id", 6) ? F_SKU_ID : (!memcmp(s, "amount", 6) ? F_AMOUNT : -1);
        case 7: return memcmp(s, "product", 7) ? -1 : F_PRODUCT;
        case 8: return !memcmp(s, "quantity", 8) ? F_QUANTITY : (!memcmp(s, "metadata", 8) ? F_METADATA : -1);
        case 9: return memcmp(s, "source_id", 9) ? -1 : F_SOURCE_ID;
        case 10: return memcmp(s, "product_id", 10) ? -1 : F_PRODUCT_ID;
        case 14: return memcmp(s, "related_object", 14) ? -1 : F_RELATED;
        case 15: return memcmp(s, "discount_amount", 15) ? -1 : F_DISCOUNT;
        }
        return -1;
    }
    """
    enum:
        F_PRODUCT_ID, F_SKU_ID, F_PRODUCT, F_SKU, F_SOURCE_ID, F_RELATED, F_QUANTITY, F_PRICE, F_AMOUNT,
        F_DISCOUNT, F_METADATA, F_ID, F_SLOTS
    int vd_item_slot(PyObject *k) noexcept

cdef dict _TYPES = {"AMOUNT": T_AMOUNT, "PERCENT": T_PERCENT, "FIXED": T_FIXED, "UNIT": T_UNIT}
cdef dict _EFFECTS = {"APPLY_TO_ORDER": E_ORDER, "APPLY_TO_ITEMS": E_ITEMS, "APPLY_TO_ITEMS_PROPORTIONALLY": E_PROP,
                      "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY": E_PROP_Q, "APPLY_TO_ITEMS_BY_QUANTITY": E_BY_Q}
cdef dict _HOW = {"APPLY_TO_EVERY": H_EVERY, "APPLY_TO_CHEAPEST": H_TO_CHEAP, "APPLY_FROM_CHEAPEST": H_FROM_CHEAP,
                  "APPLY_TO_MOST_EXPENSIVE": H_TO_DEAR, "APPLY_FROM_MOST_EXPENSIVE": H_FROM_DEAR}


# Free lists: a request builds and drops a line object per cart line and a pick per discounted line.
@cython.freelist(512)
cdef class Line:
    """One order line with integer money and cumulative / request / step discounts."""

    cdef Line copy(self):
        cdef Line c = Line.__new__(Line)
        c.index = self.index
        c.product_id = self.product_id
        c.product_source_id = self.product_source_id
        c.sku_id = self.sku_id
        c.sku_source_id = self.sku_source_id
        c.has_price = self.has_price
        c.added = self.added
        c.price = self.price
        c.quantity = self.quantity
        c.initial_quantity = self.initial_quantity
        c.amount = self.amount
        c.initial_amount = self.initial_amount
        c.discount_amount = self.discount_amount
        c.req_discount_amount = self.req_discount_amount
        c.step_discount_amount = self.step_discount_amount
        c.discount_quantity = self.discount_quantity
        c.req_discount_quantity = self.req_discount_quantity
        c.step_discount_quantity = self.step_discount_quantity
        c.req_added_quantity = self.req_added_quantity
        c.step_added_quantity = self.step_added_quantity
        c.raw = self.raw
        c.plain = self.plain
        c._head = self._head
        c._hoff = self._hoff
        c._hlen = self._hlen
        c._hfull = self._hfull
        c._hq = self._hq
        c._hamt = self._hamt
        return c

    cdef int write_head(self, JBuf *b) except -1:
        """Write the opening of the item's JSON, up to ``price``."""
        cdef char *p = jb_reserve(b, 32)
        jb_end(b, JB_LIT(p, b'{"object":"order_item"'))
        if self.product_id is not None:
            jb_end(b, JB_LIT(jb_reserve(b, 16), b',"product_id":'))
            jb_str(b, self.product_id)
        if self.sku_id is not None:
            jb_end(b, JB_LIT(jb_reserve(b, 16), b',"sku_id":'))
            jb_str(b, self.sku_id)
        if not self.plain:
            for k, prefix in _ECHO_ITEM_JSON:
                v = self.raw.get(k)
                if v is not None:
                    jb_put(b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix))
                    if type(v) is str:
                        jb_str(b, v)
                    else:
                        jb_value(b, v)
        p = jb_reserve(b, 100 + 5 * JB_INT_MAX)
        p = JB_FIELD(p, b',"quantity":', self.quantity)
        p = JB_FIELD(p, b',"initial_quantity":', self.initial_quantity)
        p = JB_FIELD(p, b',"amount":', self.amount)
        p = JB_FIELD(p, b',"initial_amount":', self.initial_amount)
        if self.has_price:
            p = JB_FIELD(p, b',"price":', self.price)
        jb_end(b, p)
        return 0

    cdef int render(self, JBuf *b, bint step) except -1:
        """Voucherify ``OrderCalculatedItem``; ``step`` selects the per-redeemable applied view."""
        cdef long long applied, applied_q, added
        cdef Py_ssize_t hn = self._hlen
        cdef char *p = jb_reserve(b, hn + 200 + 7 * JB_INT_MAX)
        if step:
            applied = self.step_discount_amount
            applied_q = self.step_discount_quantity
            added = self.step_added_quantity
        else:
            applied = self.req_discount_amount
            applied_q = self.req_discount_quantity
            added = self.req_added_quantity
        if not (self.discount_amount or applied or self.discount_quantity or applied_q or added):
            memcpy(p, PyBytes_AS_STRING(self._head) + self._hoff, self._hfull)
            jb_end(b, p + self._hfull)
            return 0
        memcpy(p, PyBytes_AS_STRING(self._head) + self._hoff, hn)
        p = JB_FIELD(p + hn, b',"subtotal_amount":', self.amount - self.discount_amount)
        if self.discount_amount:
            p = JB_FIELD(p, b',"discount_amount":', self.discount_amount)
        if applied:
            p = JB_FIELD(p, b',"applied_discount_amount":', applied)
        if self.discount_quantity:
            p = JB_FIELD(p, b',"discount_quantity":', self.discount_quantity)
        if applied_q:
            p = JB_FIELD(p, b',"applied_discount_quantity":', applied_q)
        if added:
            p = JB_FIELD(p, b',"applied_quantity":', added)
            p = JB_FIELD(p, b',"applied_quantity_amount":', added * self.unit_price())
        p[0] = 125  # }
        jb_end(b, p + 1)
        return 0


@cython.freelist(16)
cdef class Order:
    """The running calculated order; ``lines`` are :class:`Line` in request order.

    Rendering writes JSON directly (:meth:`to_json`): an evaluation renders one snapshot
    per applied redeemable, and building those as dicts cost more than the discount math.
    """

    cpdef long long items_discount_amount(self):
        cdef long long s = 0
        cdef Line ln
        for ln in self.lines:
            s += ln.discount_amount
        return s

    cpdef long long total_amount(self):
        cdef long long t = self.amount - self.discount_amount - self.items_discount_amount()
        return t if t > 0 else 0

    cpdef Order copy(self):
        cdef Order c = Order.__new__(Order)
        cdef Line ln
        c.lines = [ln.copy() for ln in self.lines]
        c.amount = self.amount
        c.initial_amount = self.initial_amount
        c.discount_amount = self.discount_amount
        c.req_discount_amount = self.req_discount_amount
        c.step_discount_amount = self.step_discount_amount
        c.raw = self.raw
        c._heads_ok = self._heads_ok
        c._echo = self._echo
        c._echo_json = self._echo_json
        return c

    cpdef void begin_step(self):
        """Reset the per-redeemable counters before applying the next redeemable."""
        cdef Line ln
        self.step_discount_amount = 0
        for ln in self.lines:
            ln.step_discount_amount = 0
            ln.step_discount_quantity = 0
            ln.step_added_quantity = 0

    cdef dict echo(self):
        # The request's identifying fields, repeated in every rendering.
        if self._echo is None:
            d = {"object": "order"}
            for k in _ECHO_ORDER_KEYS:
                v = self.raw.get(k)
                if v is not None:
                    d[k] = v
            self._echo = d
        return self._echo

    cdef bytes echo_json(self):
        cdef char stack[256]
        cdef JBuf b
        if self._echo_json is None:
            jb_init(&b, stack, 256)
            try:
                jb_end(&b, JB_LIT(jb_reserve(&b, 32), b'{"object":"order"'))
                for k, v in self.echo().items():
                    if k != "object":
                        jb_char(&b, 44)  # ,
                        jb_str(&b, k)
                        jb_char(&b, 58)  # :
                        jb_value(&b, v)
                self._echo_json = jb_bytes(&b)
            finally:
                jb_free(&b)
        return self._echo_json

    cdef int prepare_heads(self) except -1:
        """Render the heads of the lines that have none (or whose units changed) into one buffer."""
        cdef Line ln
        cdef char stack[4096]
        cdef JBuf b
        cdef char *p
        cdef bint stale = False
        if self._heads_ok:
            return 0
        for ln in self.lines:
            if not ln.head_ok():
                stale = True
                break
        if not stale:
            self._heads_ok = True
            return 0
        jb_init(&b, stack, 4096)
        try:
            for ln in self.lines:
                if not ln.head_ok():
                    ln._head = None
                    ln._hoff = b.n
                    ln.write_head(&b)
                    ln._hlen = b.n - ln._hoff
                    # ...followed by the rest of the item while it has no discount at all
                    p = jb_reserve(&b, 24 + JB_INT_MAX)
                    p = JB_FIELD(p, b',"subtotal_amount":', ln.amount)
                    p[0] = 125  # }
                    jb_end(&b, p + 1)
                    ln._hfull = b.n - ln._hoff
            arena = jb_bytes(&b)
        finally:
            jb_free(&b)
        for ln in self.lines:
            if ln._head is None:
                ln._head = arena
                ln._hq = ln.quantity
                ln._hamt = ln.amount
        self._heads_ok = True
        return 0

    cdef int render_items(self, JBuf *b, bint step) except -1:
        cdef Line ln
        cdef bint first = True
        self.prepare_heads()
        jb_char(b, 91)  # [
        for ln in self.lines:
            if not first:
                jb_char(b, 44)
            first = False
            ln.render(b, step)
        return jb_char(b, 93)  # ]

    cpdef bytes to_json(self, bint step=False, bint with_items=True):
        """Voucherify ``OrderCalculated`` as JSON: cumulative fields plus the step or request
        ``applied_*`` view."""
        cdef long long items = 0, items_applied = 0, applied, total
        cdef Line ln
        cdef char stack[8192]
        cdef JBuf b
        cdef char *p
        cdef bytes echo = self.echo_json()
        cdef Py_ssize_t en = PyBytes_GET_SIZE(echo)
        for ln in self.lines:
            items += ln.discount_amount
            items_applied += ln.step_discount_amount if step else ln.req_discount_amount
        applied = self.step_discount_amount if step else self.req_discount_amount
        total = self.amount - self.discount_amount - items
        jb_init(&b, stack, 8192)
        try:
            p = jb_reserve(&b, en + 300 + 9 * JB_INT_MAX)
            memcpy(p, PyBytes_AS_STRING(echo), en)
            p = JB_FIELD(p + en, b',"amount":', self.amount)
            p = JB_FIELD(p, b',"initial_amount":', self.initial_amount)
            p = JB_FIELD(p, b',"discount_amount":', self.discount_amount)
            p = JB_FIELD(p, b',"items_discount_amount":', items)
            p = JB_FIELD(p, b',"total_discount_amount":', self.discount_amount + items)
            p = JB_FIELD(p, b',"total_amount":', total if total > 0 else 0)
            p = JB_FIELD(p, b',"applied_discount_amount":', applied)
            p = JB_FIELD(p, b',"items_applied_discount_amount":', items_applied)
            p = JB_FIELD(p, b',"total_applied_discount_amount":', applied + items_applied)
            if with_items:
                p = JB_LIT(p, b',"items":')
            jb_end(&b, p)
            if with_items:
                self.render_items(&b, step)
            jb_char(&b, 125)
            return jb_bytes(&b)
        finally:
            jb_free(&b)

    cpdef object snapshot(self, bint step=True):
        """The calculated order as a pre-serialised ``orjson.Fragment`` (for responses)."""
        return Fragment(self.to_json(step, True))

    cpdef dict view(self, bint step=False):
        """The calculated order as a dict whose ``items`` is a pre-serialised ``orjson.Fragment``.

        For callers that add fields to the order and serialise it with orjson.
        """
        cdef long long items = 0, items_applied = 0, applied, total
        cdef Line ln
        cdef JBuf b
        cdef char stack[8192]
        cdef dict d
        for ln in self.lines:
            items += ln.discount_amount
            items_applied += ln.step_discount_amount if step else ln.req_discount_amount
        applied = self.step_discount_amount if step else self.req_discount_amount
        total = self.amount - self.discount_amount - items
        d = <dict>_PyDict_NewPresized(16)
        d.update(self.echo())
        d["amount"] = self.amount
        d["initial_amount"] = self.initial_amount
        d["discount_amount"] = self.discount_amount
        d["items_discount_amount"] = items
        d["total_discount_amount"] = self.discount_amount + items
        d["total_amount"] = total if total > 0 else 0
        d["applied_discount_amount"] = applied
        d["items_applied_discount_amount"] = items_applied
        d["total_applied_discount_amount"] = applied + items_applied
        jb_init(&b, stack, 8192)
        try:
            self.render_items(&b, step)
            d["items"] = Fragment(jb_bytes(&b))
        finally:
            jb_free(&b)
        return d

    cpdef dict to_dict(self, bint step=False, bint with_items=True):
        """The calculated order as plain data (parsed from :meth:`to_json`: one renderer)."""
        return loads(self.to_json(step, with_items))


cdef inline object _opt_id(object v):
    if v is None:
        return None
    if type(v) is str:
        return v if v else None
    if v == "":
        return None
    if not isinstance(v, str):
        raise EngineInputError("ids must be strings")
    return v


cdef inline object _id_or_none(object v):
    # An id as given ("" and other empty values: none); anything else but a string is an error.
    if type(v) is str:
        return v if PyUnicode_GET_LENGTH(v) else None
    if v is None or not v:
        return None
    return _opt_id(v)


cdef inline dict _sub_object(PyObject *p):
    # An item's "product" / "sku" object (borrowed from the item); empty or absent: None.
    if p == NULL:
        return None
    v = <object>p
    if type(v) is dict:
        return <dict>v if PyDict_GET_SIZE(v) else None
    return dict(v) if v else None


cdef inline long long _int(object v, str field) except? -1:
    if type(v) is int:
        return <long long>v
    return c_to_int(v, field)


cpdef Order build_order(dict order):
    """Normalize a request ``order`` (SEMANTICS §3 "Order input") into an :class:`Order`."""
    cdef Order o = Order.__new__(Order)
    cdef Line ln
    cdef long long total = 0
    cdef Py_ssize_t i = 0
    cdef dict item, product, sku
    cdef list lines = []
    items = order.get("items")
    if items is None:
        items = ()
    elif not isinstance(items, list):
        if not items:
            items = ()
        else:
            raise EngineInputError("order.items must be a list")
    cdef PyObject *f[F_SLOTS]
    cdef PyObject *kp
    cdef PyObject *vp
    cdef int slot
    cdef Py_ssize_t pos, k
    for obj in items:
        if type(obj) is not dict:
            if not isinstance(obj, dict):
                raise EngineInputError("order.items[] must be objects")
        item = <dict>obj
        # One pass over the item's keys instead of a lookup per field (f[] holds borrowed values).
        for k in range(F_SLOTS):
            f[k] = NULL
        pos = 0
        while PyDict_Next(item, &pos, &kp, &vp):
            if vp != <PyObject *>None:
                slot = vd_item_slot(kp)
                if slot >= 0:
                    f[slot] = vp
        ln = Line.__new__(Line)
        ln.index = i
        ln.raw = item
        # Plain lines (no echoed fields) skip the echo lookups when rendered.
        ln.plain = (f[F_PRODUCT] == NULL and f[F_SKU] == NULL and f[F_SOURCE_ID] == NULL
                    and f[F_RELATED] == NULL and f[F_METADATA] == NULL and f[F_ID] == NULL)
        product = _sub_object(f[F_PRODUCT])
        sku = _sub_object(f[F_SKU])
        v = _id_or_none(<object>f[F_PRODUCT_ID]) if f[F_PRODUCT_ID] != NULL else None
        if v is None and product is not None:
            v = _id_or_none(product.get("id"))
        ln.product_id = v
        v = _id_or_none(<object>f[F_SKU_ID]) if f[F_SKU_ID] != NULL else None
        if v is None and sku is not None:
            v = _id_or_none(sku.get("id"))
        ln.sku_id = v
        ln.product_source_id = _opt_id(product.get("source_id")) if product is not None else None
        ln.sku_source_id = _opt_id(sku.get("source_id")) if sku is not None else None
        src = _opt_id(<object>f[F_SOURCE_ID]) if f[F_SOURCE_ID] != NULL else None
        if src is not None:
            if f[F_RELATED] != NULL and <object>f[F_RELATED] == "sku":
                ln.sku_source_id = ln.sku_source_id or src
            else:
                ln.product_source_id = ln.product_source_id or src
        q = <object>f[F_QUANTITY] if f[F_QUANTITY] != NULL else None
        ln.quantity = 1 if q is None else _int(q, "order.items[].quantity")
        if ln.quantity < 0:
            raise EngineInputError("order.items[].quantity must not be negative")
        price = <object>f[F_PRICE] if f[F_PRICE] != NULL else None
        if price is None:
            if sku is not None:
                price = sku.get("price")
            if price is None and product is not None:
                price = product.get("price")
        ln.has_price = price is not None
        ln.price = _int(price, "order.items[].price") if ln.has_price else 0
        if ln.price < 0:
            raise EngineInputError("order.items[].price must not be negative")
        amount = <object>f[F_AMOUNT] if f[F_AMOUNT] != NULL else None
        ln.amount = _int(amount, "order.items[].amount") if amount is not None else ln.price * ln.quantity
        if ln.amount < 0:
            raise EngineInputError("order.items[].amount must not be negative")
        ln.initial_quantity = ln.quantity
        ln.initial_amount = ln.amount
        prior = <object>f[F_DISCOUNT] if f[F_DISCOUNT] != NULL else None
        if prior is not None:
            ln.discount_amount = min(max(_int(prior, "order.items[].discount_amount"), 0), ln.amount)
        total += ln.amount
        lines.append(ln)
        i += 1
    o.lines = lines
    amount = order.get("amount")
    o.amount = _int(amount, "order.amount") if amount is not None else total
    if o.amount < 0:
        raise EngineInputError("order.amount must not be negative")
    init = order.get("initial_amount")
    o.initial_amount = _int(init, "order.initial_amount") if init is not None else o.amount
    v = order.get("discount_amount")
    o.discount_amount = max(0, _int(v, "order.discount_amount")) if v is not None else 0
    o.raw = order
    return o


cpdef bint entry_matches(dict entry, Line ln, dict collections):
    obj = entry.get("object")
    eid = entry.get("id")
    sid = entry.get("source_id")
    if obj == "sku":
        return (eid is not None and eid == ln.sku_id) or (sid is not None and sid == ln.sku_source_id)
    if obj == "products_collection":
        members = collections.get(eid) if eid is not None else None
        if not members:
            return False
        return ln.product_id in members or (ln.sku_id is not None and ln.sku_id in members)
    # "product" (and unknown objects treated as products)
    return (eid is not None and eid == ln.product_id) or (sid is not None and sid == ln.product_source_id)


cpdef list match_lines(Order order, dict applicable_to, dict collections):
    """Resolve ``applicable_to{included, excluded, included_all}`` into ``[(entry, [Line, …]), …]``.

    Excluded wins over included; a line claimed by an earlier included entry is not
    offered to later ones. No included entries (or ``included_all``) means one
    implicit entry (:data:`ALL_ITEMS`) over every non-excluded line.
    """
    cdef list included = applicable_to.get("included") or [] if applicable_to else []
    cdef list excluded = applicable_to.get("excluded") or [] if applicable_to else []
    cdef Targeting t
    cdef Entry e
    if applicable_to and applicable_to.get("included_all"):
        included = []
    t = compile_targeting(included, excluded)
    return [((ALL_ITEMS if e is _ALL else e.raw), list(lines)) for e, lines in t.match(order, collections)]


cdef dict _order_env(Order o, dict env):
    # Money operands in major units (see engine.formula).
    cdef dict e = dict(env) if env else {}
    cdef Line ln
    cdef Line cheap = None
    cdef Line dear = None
    cdef long long units = 0
    for ln in o.lines:
        units += ln.quantity
        if cheap is None or ln.unit_price() < cheap.unit_price():
            cheap = ln
        if dear is None or ln.unit_price() > dear.unit_price():
            dear = ln
    e["ORDER_AMOUNT"] = o.total_amount() / 100.0
    e["ORDER_ITEMS_QUANTITY"] = len(o.lines)
    e["ORDER_UNITS_QUANTITY"] = units
    for prefix, ln in (("CHEAPEST_", cheap), ("MOST_EXPENSIVE_", dear)):
        if ln is not None:
            e[prefix + "ORDER_ITEM_PRICE"] = ln.unit_price() / 100.0
            e[prefix + "ORDER_ITEM_AMOUNT"] = ln.amount / 100.0
            e[prefix + "ORDER_ITEM_SUBTOTAL"] = ln.subtotal() / 100.0
            e[prefix + "ORDER_ITEM_UNITS_QUANTITY"] = ln.quantity
            e[prefix + "ORDER_ITEM_METADATA"] = ln.raw.get("metadata") or {}
            e[prefix + "ORDER_ITEM_PRODUCT_METADATA"] = (ln.raw.get("product") or {}).get("metadata") or {}
    return e


cdef dict _item_env(dict oenv, Line ln):
    cdef dict e = dict(oenv) if oenv else {}
    e["ORDER_ITEM_PRICE"] = ln.unit_price() / 100.0
    e["ORDER_ITEM_AMOUNT"] = ln.amount / 100.0
    e["ORDER_ITEM_SUBTOTAL"] = ln.subtotal() / 100.0
    e["ORDER_ITEM_UNITS_QUANTITY"] = ln.quantity
    e["ORDER_ITEM_METADATA"] = ln.raw.get("metadata") or {}
    e["ORDER_ITEM_PRODUCT_METADATA"] = (ln.raw.get("product") or {}).get("metadata") or {}
    return e


cdef object _formula_number(object src, dict env):
    if not src:
        return None
    v = compile_formula(src).evaluate(env if env is not None else {})
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return v


cdef long long _money(object v, str field) except? -1:
    cdef long long m = c_to_int(v, field)
    return m if m > 0 else 0


cdef inline long long _count_selected(long long p, long long q, long long skip, long long rep):
    # Units at positions p .. p+q-1; those k >= skip with (k - skip) % rep == 0 are selected.
    cdef long long a = p if p > skip else skip
    cdef long long end = p + q, first
    if a >= end:
        return 0
    first = skip + ((a - skip + rep - 1) // rep) * rep
    if first >= end:
        return 0
    return (end - 1 - first) // rep + 1


cdef long long _opt_limit(dict entry, str key) except? -1:
    v = entry.get(key)
    if v is None:
        return -1
    return max(0, c_to_int(v, key))


def _cheap_key(Line ln):
    # ties: lower subtotal, then request order
    return (ln.unit_price(), ln.subtotal(), ln.index)


def _dear_key(Line ln):
    return (-ln.unit_price(), ln.subtotal(), ln.index)


def unit_price(Line ln):
    """Unit price used for sorting and per-unit math (amount / quantity when no price)."""
    return ln.unit_price()


cdef class Entry:
    """A compiled ``applicable_to`` entry: typed selection settings and limits."""

    def __init__(self, dict entry):
        self.raw = entry
        self.out = entry if entry.get("effect") is not None else dict(entry, effect="APPLY_TO_EVERY")
        try:
            self.out_json = dumps(self.out)
        except JSONEncodeError as exc:
            raise EngineInputError(f"applicable_to entry cannot be written as JSON: {exc}") from None
        obj = entry.get("object")
        self.obj = 1 if obj == "sku" else (2 if obj == "products_collection" else 0)
        self.eid = entry.get("id")
        self.sid = entry.get("source_id")
        self.explicit = True
        self.how = _HOW.get(entry.get("effect") or "APPLY_TO_EVERY", H_EVERY)
        self.single = self.how == H_TO_CHEAP or self.how == H_TO_DEAR
        self.unit_target = entry.get("target") == "UNIT"
        self.skip = max(0, c_to_int(entry.get("skip_initially"), "skip_initially"))
        self.rep = max(1, c_to_int(entry.get("repeat") or 1, "repeat"))
        self.qlim = _opt_limit(entry, "quantity_limit")
        self.aqlim = _opt_limit(entry, "aggregated_quantity_limit")
        v = entry.get("amount_limit")
        self.amount_limit = -1 if v is None else _money(v, "amount_limit")
        v = entry.get("aggregated_amount_limit")
        self.agg_amount_limit = -1 if v is None else _money(v, "aggregated_amount_limit")
        f = entry.get("price_formula")
        self.price_formula = compile_formula(f) if f else None
        v = entry.get("price")
        self.has_price = v is not None
        self.price = _money(v, "applicable_to.price") if self.has_price else 0
        self.needs_env = self.price_formula is not None
        self.caps = []
        for k in entry:
            if type(k) is str and (<str>k).startswith("product_") and "quantity_limit" in <str>k:
                break
        else:
            return
        for field, ffield in _CAP_FIELDS:
            static = entry.get(field)
            fsrc = entry.get(ffield)
            if static is None and not fsrc:
                continue
            if fsrc:
                compile_formula(fsrc)
                self.needs_env = True
            self.caps.append((field, None if static is None else max(0, c_to_int(static, field)), fsrc or None,
                              field.startswith("product_in_collection_")))

    cdef bint matches(self, Line ln, dict collections):
        if self.obj == 1:
            return (self.eid is not None and self.eid == ln.sku_id) or (
                self.sid is not None and self.sid == ln.sku_source_id)
        if self.obj == 2:
            members = collections.get(self.eid) if self.eid is not None and collections else None
            if not members:
                return False
            return ln.product_id in members or (ln.sku_id is not None and ln.sku_id in members)
        return (self.eid is not None and self.eid == ln.product_id) or (
            self.sid is not None and self.sid == ln.product_source_id)


cdef Entry _ALL = Entry(ALL_ITEMS)
_ALL.explicit = False


cdef class Picks:
    def __cinit__(self):
        self.items = NULL
        self.n = 0
        self.cap = 0

    def __dealloc__(self):
        free(self.items)

    def __len__(self):
        return self.n

    cdef int add(self, Line ln, Entry entry, long long units, long long start) except -1:
        cdef Pick *grown
        if self.n == self.cap:
            grown = <Pick *>realloc(self.items, (self.cap * 2 + 16) * sizeof(Pick))
            if grown == NULL:
                raise MemoryError()
            self.items = grown
            self.cap = self.cap * 2 + 16
        self.items[self.n].ln = <PyObject *>ln
        self.items[self.n].entry = <PyObject *>entry
        self.items[self.n].units = units
        self.items[self.n].start = start
        self.n += 1
        return 0


cdef inline void _idx_put(dict index, object key, Py_ssize_t k):
    if key is not None and key not in index:
        index[key] = k


cdef class Targeting:
    """Compiled ``applicable_to``: included / excluded :class:`Entry` lists and an id index."""

    cpdef list match(self, Order order, dict collections):
        """``[(Entry, [Line, …]), …]`` with the same rules as :func:`match_lines`."""
        cdef Line ln
        cdef Entry e
        cdef Py_ssize_t k, best, n = len(self.included)
        cdef list lines = order.lines
        cdef list free
        cdef list buckets
        cdef bint blocked
        if collections is None:
            collections = {}
        if self.excluded:
            free = []
            for ln in lines:
                blocked = False
                for e in self.excluded:
                    if e.matches(ln, collections):
                        blocked = True
                        break
                if not blocked:
                    free.append(ln)
        else:
            free = lines
        if n == 0:
            return [(_ALL, free)]
        buckets = [[] for _ in range(n)]
        for ln in free:
            best = -1
            if ln.product_id is not None and self.p_id:
                k = self.p_id.get(ln.product_id, -1)
                if k >= 0:
                    best = k
            if ln.product_source_id is not None and self.p_src:
                k = self.p_src.get(ln.product_source_id, -1)
                if k >= 0 and (best < 0 or k < best):
                    best = k
            if ln.sku_id is not None and self.s_id:
                k = self.s_id.get(ln.sku_id, -1)
                if k >= 0 and (best < 0 or k < best):
                    best = k
            if ln.sku_source_id is not None and self.s_src:
                k = self.s_src.get(ln.sku_source_id, -1)
                if k >= 0 and (best < 0 or k < best):
                    best = k
            for k in self.slow:
                if best >= 0 and k > best:
                    break
                if (<Entry>self.included[k]).matches(ln, collections):
                    best = k
                    break
            if best >= 0:
                (<list>buckets[best]).append(ln)
        return [(self.included[k], buckets[k]) for k in range(n)]


cpdef Targeting compile_targeting(list included, list excluded):
    """Compile ``applicable_to`` entries (plain dicts) once for :meth:`Targeting.match`."""
    cdef Targeting t = Targeting.__new__(Targeting)
    cdef Entry e
    cdef Py_ssize_t k
    t.included = [x if isinstance(x, Entry) else Entry(x) for x in included or ()]
    t.excluded = [x if isinstance(x, Entry) else Entry(x) for x in excluded or ()]
    t.explicit = bool(t.included)
    t.p_id = {}
    t.p_src = {}
    t.s_id = {}
    t.s_src = {}
    t.slow = []
    t.needs_env = False
    for k in range(len(t.included)):
        e = t.included[k]
        t.needs_env = t.needs_env or e.needs_env
        if e.obj == 2:
            t.slow.append(k)
        elif e.obj == 1:
            _idx_put(t.s_id, e.eid, k)
            _idx_put(t.s_src, e.sid, k)
        else:
            _idx_put(t.p_id, e.eid, k)
            _idx_put(t.p_src, e.sid, k)
    return t


cdef long long _cap_limit(tuple cap, dict oenv) except? -2:
    # -1: no limit this time (no static value and the formula gave none)
    v = _formula_number(cap[2], oenv) if cap[2] is not None else None
    if v is not None:
        return max(0, <long long>floor(v))
    return -1 if cap[1] is None else <long long>cap[1]


cdef void _select(list targets, long long lmult, dict used, dict oenv, Picks picks) except *:
    """Add picks honouring sort, skip, repeat and every quantity limit."""
    cdef Line ln
    cdef Entry entry
    cdef long long pos, n, taken, qlim, aqlim, ecap, lim, u, rem, start
    cdef dict prem
    cdef list pcaps
    for tgt in targets:
        entry = <Entry>(<tuple>tgt)[0]
        lines = (<tuple>tgt)[1]
        if entry.how == H_TO_CHEAP or entry.how == H_FROM_CHEAP:
            lines = sorted(lines, key=_cheap_key)
        elif entry.how == H_TO_DEAR or entry.how == H_FROM_DEAR:
            lines = sorted(lines, key=_dear_key)
        qlim = entry.qlim * lmult if entry.qlim >= 0 else -1
        aqlim = entry.aqlim * lmult if entry.aqlim >= 0 else -1
        ecap = -1
        pcaps = None
        prem = None
        if entry.caps:
            for cap in entry.caps:
                lim = _cap_limit(<tuple>cap, oenv)
                if lim < 0:
                    continue
                counts = used.get((<tuple>cap)[0]) if used else None
                if (<tuple>cap)[3]:
                    if pcaps is None:
                        pcaps = []
                        prem = {}
                    pcaps.append((lim, counts))
                else:
                    u = 0
                    if counts:
                        key = entry.eid if entry.eid is not None else entry.sid
                        u = c_to_int(counts.get(key), "used units")
                    rem = lim - u if lim > u else 0
                    if ecap < 0 or rem < ecap:
                        ecap = rem
        pos = 0
        taken = 0
        for ln in lines:
            if ln.quantity <= 0:
                continue
            start = pos
            if entry.unit_target:
                n = _count_selected(pos, ln.quantity, entry.skip, entry.rep)
                pos += ln.quantity
                if entry.single and n:
                    n = 1
            else:
                n = ln.quantity if (pos >= entry.skip and (pos - entry.skip) % entry.rep == 0) else 0
                pos += 1
            if qlim >= 0 and n > qlim:
                n = qlim
            if aqlim >= 0 and n > aqlim - taken:
                n = aqlim - taken
            if ecap >= 0 and n > ecap - taken:
                n = ecap - taken
            if pcaps is not None and n > 0:
                pid = ln.product_id if ln.product_id is not None else ln.sku_id
                if pid in prem:
                    rem = prem[pid]
                else:
                    rem = -1
                    for pc in pcaps:
                        lim = (<tuple>pc)[0]
                        counts = (<tuple>pc)[1]
                        u = c_to_int(counts.get(pid), "used units") if counts else 0
                        lim = lim - u if lim > u else 0
                        if rem < 0 or lim < rem:
                            rem = lim
                if n > rem:
                    n = rem
                prem[pid] = rem - (n if n > 0 else 0)
            if n <= 0:
                continue
            taken += n
            picks.add(ln, entry, n, start)
            if entry.single:
                break


cpdef list unit_positions(Line ln, Entry e, long long units, long long start):
    """1-based unit numbers of ``ln`` covered by a pick (UNIT targets honour skip/repeat)."""
    cdef long long k, p, got = 0
    cdef list out = []
    if not e.unit_target:
        return list(range(1, units + 1))
    for k in range(ln.quantity):
        p = start + k
        if p >= e.skip and (p - e.skip) % e.rep == 0:
            out.append(k + 1)
            got += 1
            if got >= units:
                break
    return out


cdef struct _Rem:
    long long rem
    Py_ssize_t idx


cdef int _rem_cmp(const void* a, const void* b) noexcept nogil:
    # larger remainder first; ties: earlier line first (as money.c_split_largest_remainder)
    cdef const _Rem* x = <const _Rem*>a
    cdef const _Rem* y = <const _Rem*>b
    if x.rem != y.rem:
        return -1 if x.rem > y.rem else 1
    return -1 if x.idx < y.idx else (1 if x.idx > y.idx else 0)


cdef void _sort_rems(_Rem *a, Py_ssize_t n) noexcept nogil:
    # Insertion sort in _rem_cmp order: a few elements, no qsort callback per comparison.
    cdef Py_ssize_t i, j
    cdef _Rem x
    for i in range(1, n):
        x = a[i]
        j = i - 1
        while j >= 0 and _rem_cmp(&x, &a[j]) < 0:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


cdef int _split_capped(long long total, const long long *w, const long long *c, long long *parts,
                       Py_ssize_t n) except -1:
    # Largest-remainder split of ``total`` by weights ``w`` into ``parts`` where no part may
    # exceed its cap ``c``; what a capped part cannot take is split again among the rest.
    cdef Py_ssize_t i, j, nlive = 0, nkeep, q
    cdef long long left = total, wsum, given, room, extra
    cdef bint over
    if n == 0:
        return 0
    cdef Py_ssize_t* live = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
    cdef _Rem* rems = <_Rem*>malloc(n * sizeof(_Rem))
    cdef long long* share = <long long*>malloc(n * sizeof(long long))
    if live == NULL or rems == NULL or share == NULL:
        free(live)
        free(rems)
        free(share)
        raise MemoryError()
    try:
        for i in range(n):
            parts[i] = 0
            if w[i] > 0 and c[i] > 0:
                live[nlive] = i
                nlive += 1
        while left > 0 and nlive > 0:
            wsum = 0
            for j in range(nlive):
                wsum += w[live[j]]
            given = 0
            for j in range(nlive):
                share[j] = (left * w[live[j]]) // wsum
                given += share[j]
                rems[j].rem = (left * w[live[j]]) % wsum
                rems[j].idx = j
            extra = left - given
            if extra > 0:
                if nlive <= 32:
                    _sort_rems(rems, nlive)
                else:
                    qsort(rems, nlive, sizeof(_Rem), _rem_cmp)
                for q in range(extra):
                    share[rems[q].idx] += 1
            over = False
            nkeep = 0
            for j in range(nlive):
                i = live[j]
                room = c[i] - parts[i]
                if share[j] >= room:
                    parts[i] = c[i]
                    left -= room
                    if share[j] > room:
                        over = True
                else:
                    live[nkeep] = i
                    share[nkeep] = share[j]
                    nkeep += 1
            if not over:
                for j in range(nkeep):
                    parts[live[j]] += share[j]
                    left -= share[j]
                break
            nlive = nkeep
    finally:
        free(live)
        free(rems)
        free(share)
    return 0


cdef inline void _give(Order o, Line ln, long long d, long long units):
    ln.discount_amount += d
    ln.req_discount_amount += d
    ln.step_discount_amount += d
    if units:
        ln.discount_quantity += units
        ln.req_discount_quantity += units
        ln.step_discount_quantity += units


cdef inline void _give_order(Order o, long long d):
    o.discount_amount += d
    o.req_discount_amount += d
    o.step_discount_amount += d


cdef long long _items(Order o, int dtype, int effect, double value, dict discount, list targets,
                      bint initial_mode, dict oenv, Plan plan, long long mult, dict used, Picks picks) except -1:
    cdef Py_ssize_t n
    cdef long long *raw
    lmult = mult if dtype != T_PERCENT else 1
    _select(targets, lmult, used, oenv, picks)
    n = picks.n
    # raw discounts, bases and weights: one block of per-pick integers
    raw = <long long *>malloc((3 * n + 1) * sizeof(long long))
    if raw == NULL:
        raise MemoryError()
    try:
        return _items_picked(o, dtype, effect, value, discount, initial_mode, oenv, plan, mult, picks, n, raw,
                             raw + n, raw + 2 * n)
    finally:
        free(raw)


cdef long long _items_picked(Order o, int dtype, int effect, double value, dict discount, bint initial_mode,
                             dict oenv, Plan plan, long long mult, Picks picks, Py_ssize_t n, long long *raw,
                             long long *bases, long long *weights) except -1:
    cdef Py_ssize_t i
    cdef Line ln
    cdef Pick *pk
    cdef Entry entry
    cdef long long units, full, base, d, cap, newp, total = 0, sub, bsum = 0, left, disc_line_cap = -1
    cdef long long remaining
    cdef bint by_unit
    cdef double pv
    cdef dict entry_left = None
    for i in range(n):
        pk = &picks.items[i]
        ln = <Line>pk.ln
        units = pk.units
        sub = ln.amount - ln.discount_amount
        full = ln.amount if initial_mode else sub
        base = full if units == ln.quantity else c_round_half_up(full * units, ln.quantity)
        if base > sub:
            base = sub
        bases[i] = base
        bsum += base
    if effect == E_PROP or effect == E_PROP_Q:
        for i in range(n):
            weights[i] = bases[i] if effect == E_PROP else picks.items[i].units
        _split_capped(min(<long long>value, bsum), weights, bases, raw, n)
    else:
        for i in range(n):
            pk = &picks.items[i]
            ln = <Line>pk.ln
            units = pk.units
            entry = <Entry>pk.entry
            base = bases[i]
            by_unit = effect == E_BY_Q or entry.unit_target
            if dtype == T_AMOUNT:
                d = <long long>value
                if plan is not None and plan.item_formula:
                    v = _formula_number(plan.fsrc, _item_env(oenv, ln))
                    if v is not None:
                        d = _money(v * 100.0, "amount_off") * (1 if effect == E_BY_Q else mult)
                d = d * (units if by_unit else 1)
            elif dtype == T_PERCENT:
                pv = value
                if plan is not None and plan.item_formula:
                    v = _formula_number(plan.fsrc, _item_env(oenv, ln))
                    if v is not None and v == v:
                        pv = min(max(float(v), 0.0) * mult, 100.0)
                d = c_percent_of(base, pv)
            else:  # FIXED: re-price each unit
                newp = <long long>value
                if entry.price_formula is not None:
                    v = _formula_number(entry.price_formula.source, _item_env(oenv, ln))
                    if v is not None:
                        newp = <long long>floor(v * 100.0 + 0.5)
                    elif entry.has_price:
                        newp = entry.price
                elif entry.has_price:
                    newp = entry.price
                d = base - newp * units
            raw[i] = max(0, min(d, base))
    # Per-line caps (entry amount_limit; PERCENT discount amount_limit), then per-entry aggregates.
    if dtype == T_PERCENT and discount.get("amount_limit") is not None:
        disc_line_cap = _money(discount["amount_limit"], "amount_limit")
    for i in range(n):
        pk = &picks.items[i]
        entry = <Entry>pk.entry
        d = raw[i]
        if entry.amount_limit >= 0 and d > entry.amount_limit:
            d = entry.amount_limit
        if disc_line_cap >= 0 and d > disc_line_cap:
            d = disc_line_cap
        if entry.agg_amount_limit >= 0:
            if entry_left is None:
                entry_left = {}
            left = entry_left.get(entry, entry.agg_amount_limit)
            if d > left:
                d = left
            entry_left[entry] = left - d
        raw[i] = d
    # Aggregated cap of the discount, then what is left of the order total.
    cap = -1
    if discount.get("aggregated_amount_limit") is not None:
        cap = _money(discount["aggregated_amount_limit"], "aggregated_amount_limit")
    remaining = o.total_amount()
    for i in range(n):
        pk = &picks.items[i]
        d = raw[i]
        if cap >= 0 and d > cap:
            d = cap
        if d > remaining:
            d = remaining
        if d <= 0:
            continue
        if cap >= 0:
            cap -= d
        remaining -= d
        total += d
        _give(o, <Line>pk.ln, d, pk.units)
    return total


cdef Line _find_unit_line(Order o, object pid, object psrc, object sid):
    cdef Line ln
    for ln in o.lines:
        if sid is not None and ln.sku_id != sid:
            continue
        if (pid is not None and ln.product_id == pid) or (psrc is not None and ln.product_source_id == psrc):
            return ln
    return None


cdef dict _apply_unit(Order o, dict unit, dict oenv, dict prices, str default_effect, long long mult):
    cdef dict product = unit.get("product") or {}
    cdef dict sku = unit.get("sku") or {}
    cdef Line ln
    cdef long long n, add = 0, have, price, units, d, n1
    pid = unit.get("unit_type") or product.get("id")
    psrc = product.get("source_id")
    if pid == SHIPPING_PRODUCT_ID and psrc is None:
        psrc = SHIPPING_SOURCE_ID
    if pid is None and psrc is None:
        raise EngineInputError("UNIT discount needs unit_type or product")
    sid = sku.get("id")
    effect = unit.get("effect") or default_effect
    if effect not in ("ADD_MISSING_ITEMS", "ADD_NEW_ITEMS"):
        raise EngineInputError(f"unknown unit effect {effect}")
    v = _formula_number(unit.get("unit_off_formula"), oenv) if unit.get("unit_off_formula") else None
    n1 = max(0, c_to_int(v if v is not None else unit.get("unit_off"), "unit_off"))
    n = n1 * mult
    ln = _find_unit_line(o, pid, psrc, sid)
    if ln is not None and ln.has_price:
        price = ln.price
    else:
        p = sku.get("price") if sku.get("price") is not None else product.get("price")
        if p is None and prices:
            p = prices.get(sid) if sid is not None else None
            if p is None:
                p = prices.get(pid)
        price = _money(p, "unit price") if p is not None else (ln.unit_price() if ln is not None else 0)
    have = ln.quantity if ln is not None else 0
    add = max(0, n - have) if effect == "ADD_MISSING_ITEMS" else n
    if add:
        if ln is None:
            ln = Line.__new__(Line)
            ln.index = len(o.lines)
            ln.added = True
            ln.product_id = pid
            ln.product_source_id = psrc
            ln.sku_id = sid
            ln.sku_source_id = sku.get("source_id")
            ln.has_price = True
            ln.price = price
            raw = {}
            if pid == SHIPPING_PRODUCT_ID:
                product = {"id": pid, "source_id": SHIPPING_SOURCE_ID, "name": "Shipping", **product}
            if product:
                raw["product"] = product
            if sku:
                raw["sku"] = sku
            ln.raw = raw
            o.lines.append(ln)
        o._heads_ok = False
        ln.quantity += add
        ln.amount += add * price
        ln.req_added_quantity += add
        ln.step_added_quantity += add
        o.amount += add * price
    units = min(n, ln.quantity) if ln is not None else 0
    d = 0
    if units:
        d = min(units * price, ln.subtotal(), o.total_amount())
        if d > 0:
            _give(o, ln, d, units)
    out = dict(unit)
    out["unit_off"] = n1
    out["effect"] = effect
    if pid is not None:
        out["unit_type"] = pid
    return out


cdef object _value(dict discount, str key, str fkey, dict oenv, double scale):
    # The formula (when it yields a number) beats the static value.
    f = discount.get(fkey)
    if f:
        v = _formula_number(f, oenv)
        if v is not None:
            return v * scale
    return discount.get(key)


cdef bint _is_dynamic(dict discount):
    for k in ("amount_off_formula", "percent_off_formula", "fixed_amount_formula", "unit_off_formula"):
        if discount.get(k):
            return True
    for u in discount.get("units") or ():
        if u.get("unit_off_formula"):
            return True
    return False


cdef class Plan:
    """A compiled ``discount``: its type, effect and formula flags, looked up once.

    Malformed discounts (unknown type or effect) compile and raise when applied, so
    a redeemable that fails its checks first still reports that failure.
    """

    cdef dict apply(self, Order o, list targets, bint explicit, dict env, bint initial_mode, dict prices,
                    long long mult, dict used, Picks picks_out):
        """Apply to ``o`` over compiled ``targets`` (``[(Entry, lines)]``); return the result echo.

        ``mult`` multiplies the value (bundles); ``used`` holds product quantity counters;
        item picks are appended to ``picks_out`` when given.
        """
        cdef double value = 0
        cdef long long money
        cdef dict discount = self.raw
        cdef int eff
        cdef bint needs_env
        if self.dtype < 0:
            raise EngineInputError(f"unknown discount type {discount.get('type')!r}")
        needs_env = self.dynamic or self.item_formula
        if not needs_env:
            for tgt in targets or ():
                if (<Entry>(<tuple>tgt)[0]).needs_env:
                    needs_env = True
                    break
        oenv = _order_env(o, env) if needs_env else env
        # A static discount computes its echo and value once (the echo is shared: read-only).
        cacheable = not needs_env and mult == 1 and self.dtype != T_UNIT
        memo = (self._memo_explicit if explicit else self._memo_implicit) if cacheable else None
        if memo is not None:
            out = <dict>(<tuple>memo)[0]
            value = (<tuple>memo)[1]
            eff = (<tuple>memo)[2]
            self._run(o, eff, value, targets, initial_mode, oenv, mult, used, picks_out)
            return out
        out = dict(discount)
        effect = self.effect
        if self.dtype == T_UNIT:
            if effect == "ADD_MANY_ITEMS":
                out["units"] = [_apply_unit(o, u, oenv, prices, "ADD_MISSING_ITEMS", mult)
                                for u in discount.get("units") or []]
            else:
                out.update(_apply_unit(o, discount, oenv, prices, effect or "ADD_MISSING_ITEMS", mult))
                effect = out["effect"]
            out["effect"] = effect
            if self.dynamic:
                out["is_dynamic"] = True
            return out
        if effect is None:
            effect = "APPLY_TO_ITEMS" if explicit else ORDER_EFFECT
        eff = _EFFECTS.get(effect, -1)
        if eff < 0:
            raise EngineInputError(f"unknown discount effect {effect!r}")
        if self.dtype == T_AMOUNT:
            money = _money(_value(discount, "amount_off", "amount_off_formula", oenv, 100.0), "amount_off")
            out["amount_off"] = money
            # per-unit amounts keep their value; only the unit limits scale with bundles
            value = money if eff == E_BY_Q else money * mult
        elif self.dtype == T_PERCENT:
            pv = _value(discount, "percent_off", "percent_off_formula", oenv, 1.0)
            if isinstance(pv, bool) or (pv is not None and not isinstance(pv, (int, float))):
                raise EngineInputError("percent_off must be a number")
            value = float(pv) if pv is not None else 0.0
            if value < 0 or value != value:
                raise EngineInputError("percent_off must be a non-negative number")
            value = min(value, 100.0)
            out["percent_off"] = int(value) if value == int(value) else value
            value = min(value * mult, 100.0)
        else:
            money = _money(_value(discount, "fixed_amount", "fixed_amount_formula", oenv, 100.0), "fixed_amount")
            out["fixed_amount"] = money
            value = money
        out["effect"] = effect
        if self.dynamic:
            out["is_dynamic"] = True
        if cacheable:
            if explicit:
                self._memo_explicit = (out, value, eff)
            else:
                self._memo_implicit = (out, value, eff)
        self._run(o, eff, value, targets, initial_mode, oenv, mult, used, picks_out)
        return out

    cdef int _run(self, Order o, int eff, double value, list targets, bint initial_mode, dict oenv,
                  long long mult, dict used, Picks picks_out) except -1:
        if eff == E_ORDER:
            _order_level(o, self.dtype, value, self.raw, initial_mode)
        else:
            _items(o, self.dtype, eff, value, self.raw, targets or [], initial_mode, oenv, self, mult, used,
                   picks_out if picks_out is not None else Picks())
        return 0


cpdef Plan compile_discount(dict discount):
    """Compile a Voucherify ``Discount`` once; see :class:`Plan`."""
    cdef Plan p = Plan.__new__(Plan)
    p.raw = discount
    p.dtype = _TYPES.get(discount.get("type"), -1)
    p.effect = discount.get("effect")
    p.dynamic = _is_dynamic(discount)
    p.fsrc = None
    p.item_formula = False
    if p.dtype == T_AMOUNT or p.dtype == T_PERCENT:
        f = discount.get("amount_off_formula" if p.dtype == T_AMOUNT else "percent_off_formula")
        if f and isinstance(f, str) and _ITEM_OPERAND.search(f):
            p.fsrc = f
            p.item_formula = True
    return p


cpdef dict apply_discount(Order order, dict discount, list targets, dict env, bint initial_mode, dict prices):
    """Apply one ``discount`` to ``order`` in place; return the ``result.discount`` echo.

    ``targets`` comes from :func:`match_lines`; ``env`` is the formula environment
    (customer / redemption / redeemable metadata, ``NOW``…) without order operands;
    ``prices`` maps product/SKU ids to catalog prices for UNIT lines added to the cart.
    """
    cdef list ct = []
    cdef bint explicit = False
    for entry, lines in targets or []:
        if entry is ALL_ITEMS:
            ct.append((_ALL, lines))
        else:
            explicit = True
            ct.append((Entry(entry), lines))
    return compile_discount(discount).apply(order, ct, explicit, env, initial_mode, prices, 1, None, None)


cdef void _order_level(Order o, int dtype, double value, dict discount, bint initial_mode) except *:
    cdef long long current = o.total_amount(), d, base
    if dtype == T_AMOUNT:
        d = <long long>value
    elif dtype == T_PERCENT:
        base = o.amount if initial_mode else current
        d = c_percent_of(base, value)
        for key in ("amount_limit", "aggregated_amount_limit"):
            if discount.get(key) is not None:
                d = min(d, _money(discount[key], key))
    else:
        d = current - <long long>value
    d = max(0, min(d, current))
    if d:
        _give_order(o, d)


cpdef long long apply_gift(Order order, object credits, long long balance, list targets, bint to_items) except -1:
    """Deduct gift-card credits at order level; return the credits actually used.

    ``credits`` None means "as much as possible" (min of balance and what is left).
    With ``to_items`` the credits are further capped by the applicable lines' subtotals.
    """
    cdef Order o = order
    cdef long long cap = o.total_amount(), want, s = 0
    cdef Line ln
    if to_items:
        for _, lines in targets or []:
            for ln in lines:
                s += ln.subtotal()
        cap = min(cap, s)
    want = balance if credits is None else min(_money(credits, "gift.credits"), balance)
    want = max(0, min(want, cap))
    if want:
        _give_order(o, want)
    return want


cpdef tuple apply_points(Order order, long long points, dict coin):
    """Pay with loyalty points: ``(points_used, discount)``.

    ``coin{exchange_ratio, points_ratio}``: ``points_ratio`` points are worth
    ``exchange_ratio`` in **major** units (10 points at 0.5 -> 50 cents). The cash
    value rounds half up; when the order total caps it, only the points needed to
    cover that total are used. No coin (material/campaign rewards) -> no discount.
    """
    cdef Order o = order
    cdef long long value, cap, used
    if points <= 0 or not coin:
        return (max(points, 0), 0)
    ex = coin.get("exchange_ratio")
    pr = coin.get("points_ratio") or 1
    if ex is None or isinstance(ex, bool) or ex < 0 or pr <= 0:
        raise EngineInputError("coin needs exchange_ratio >= 0 and points_ratio > 0")
    value = <long long>floor(points * float(ex) * 100.0 / pr + 0.5)
    cap = o.total_amount()
    used = points
    if value > cap:
        value = cap
        used = min(points, <long long>ceil(cap * pr / (float(ex) * 100.0))) if ex > 0 else points
    if value:
        _give_order(o, value)
    return (used, value)
