"""Discount math over a mutable order state.

``build_order`` turns a request ``order`` into an :class:`Order` of :class:`Line`
objects with integer money. ``apply_discount`` / ``apply_gift`` / ``apply_points``
mutate it, recording each change three times: cumulative (``discount_amount``),
for this request (``req_*``) and for the redeemable being applied (``step_*``),
so both the per-redeemable snapshot and the top-level calculated order can be
rendered without recomputation.

Choices the docs leave open (see SEMANTICS §3):
* percentages round half up per line; proportional splits use largest remainder
  and never give a line more than its subtotal;
* when a cap (line, entry, aggregated, or the order total) cuts a discount, lines
  keep their discount in selection order until the cap is used up;
* a partial-quantity base is the line subtotal scaled by units (half up);
* INITIAL_AMOUNT mode computes from ``amount`` (line or order) but is still capped
  by what is left, so totals never drop below zero.
"""

from libc.math cimport ceil, floor

from engine.formula cimport compile_formula
from engine.money cimport c_percent_of, c_round_half_up, c_split_largest_remainder, c_to_int

from engine.money import EngineInputError

SHIPPING_PRODUCT_ID = "prod_5h1pp1ng"
SHIPPING_SOURCE_ID = "5h1pp1ng"

ORDER_EFFECT = "APPLY_TO_ORDER"
ITEM_EFFECTS = frozenset({"APPLY_TO_ITEMS", "APPLY_TO_ITEMS_PROPORTIONALLY",
                          "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY", "APPLY_TO_ITEMS_BY_QUANTITY"})
UNIT_EFFECTS = frozenset({"ADD_MISSING_ITEMS", "ADD_NEW_ITEMS", "ADD_MANY_ITEMS"})
DISCOUNT_TYPES = frozenset({"AMOUNT", "PERCENT", "FIXED", "UNIT"})
_ECHO_ITEM_KEYS = ("source_id", "related_object", "product", "sku", "metadata", "id")
_ECHO_ORDER_KEYS = ("id", "source_id", "status", "metadata", "referrer_id", "customer_id")

# The implicit "every item" entry used when no rule names products.
ALL_ITEMS = {"object": "order", "effect": "APPLY_TO_EVERY", "target": "ITEM"}


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
        return c

    cpdef dict to_dict(self, bint step):
        """Voucherify ``OrderCalculatedItem``; ``step`` selects the per-redeemable applied view."""
        cdef dict d = {"object": "order_item"}
        cdef dict raw = self.raw
        if self.product_id is not None:
            d["product_id"] = self.product_id
        if self.sku_id is not None:
            d["sku_id"] = self.sku_id
        for k in _ECHO_ITEM_KEYS:
            v = raw.get(k)
            if v is not None:
                d[k] = v
        d["quantity"] = self.quantity
        d["initial_quantity"] = self.initial_quantity
        d["amount"] = self.amount
        d["initial_amount"] = self.initial_amount
        if self.has_price:
            d["price"] = self.price
        d["subtotal_amount"] = self.amount - self.discount_amount
        applied = self.step_discount_amount if step else self.req_discount_amount
        applied_q = self.step_discount_quantity if step else self.req_discount_quantity
        added = self.step_added_quantity if step else self.req_added_quantity
        if self.discount_amount:
            d["discount_amount"] = self.discount_amount
        if applied:
            d["applied_discount_amount"] = applied
        if self.discount_quantity:
            d["discount_quantity"] = self.discount_quantity
        if applied_q:
            d["applied_discount_quantity"] = applied_q
        if added:
            d["applied_quantity"] = added
            d["applied_quantity_amount"] = added * self.unit_price()
        return d


cdef class Order:
    """The running calculated order; ``lines`` are :class:`Line` in request order."""

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
        return c

    cpdef void begin_step(self):
        """Reset the per-redeemable counters before applying the next redeemable."""
        cdef Line ln
        self.step_discount_amount = 0
        for ln in self.lines:
            ln.step_discount_amount = 0
            ln.step_discount_quantity = 0
            ln.step_added_quantity = 0

    cpdef dict to_dict(self, bint step=False, bint with_items=True):
        """Voucherify ``OrderCalculated``: cumulative fields plus the step or request ``applied_*`` view."""
        cdef long long items = 0, items_applied = 0, applied
        cdef Line ln
        cdef list out_items = []
        for ln in self.lines:
            items += ln.discount_amount
            items_applied += ln.step_discount_amount if step else ln.req_discount_amount
            if with_items:
                out_items.append(ln.to_dict(step))
        applied = self.step_discount_amount if step else self.req_discount_amount
        total = self.amount - self.discount_amount - items
        cdef dict d = {"object": "order"}
        for k in _ECHO_ORDER_KEYS:
            v = self.raw.get(k)
            if v is not None:
                d[k] = v
        d["amount"] = self.amount
        d["initial_amount"] = self.initial_amount
        d["discount_amount"] = self.discount_amount
        d["items_discount_amount"] = items
        d["total_discount_amount"] = self.discount_amount + items
        d["total_amount"] = total if total > 0 else 0
        d["applied_discount_amount"] = applied
        d["items_applied_discount_amount"] = items_applied
        d["total_applied_discount_amount"] = applied + items_applied
        if with_items:
            d["items"] = out_items
        return d


cdef object _opt_id(object v):
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise EngineInputError("ids must be strings")
    return v


cpdef Order build_order(dict order):
    """Normalize a request ``order`` (SEMANTICS §3 "Order input") into an :class:`Order`."""
    cdef Order o = Order.__new__(Order)
    cdef Line ln
    cdef long long total = 0
    cdef Py_ssize_t i = 0
    items = order.get("items") or []
    if not isinstance(items, list):
        raise EngineInputError("order.items must be a list")
    o.lines = []
    for item in items:
        if not isinstance(item, dict):
            raise EngineInputError("order.items[] must be objects")
        ln = Line.__new__(Line)
        ln.index = i
        ln.raw = item
        product = item.get("product") or {}
        sku = item.get("sku") or {}
        related = item.get("related_object")
        ln.product_id = _opt_id(item.get("product_id") or product.get("id"))
        ln.sku_id = _opt_id(item.get("sku_id") or sku.get("id"))
        ln.product_source_id = _opt_id(product.get("source_id"))
        ln.sku_source_id = _opt_id(sku.get("source_id"))
        src = _opt_id(item.get("source_id"))
        if src is not None:
            if related == "sku":
                ln.sku_source_id = ln.sku_source_id or src
            else:
                ln.product_source_id = ln.product_source_id or src
        q = item.get("quantity")
        ln.quantity = 1 if q is None else c_to_int(q, "order.items[].quantity")
        if ln.quantity < 0:
            raise EngineInputError("order.items[].quantity must not be negative")
        price = item.get("price")
        if price is None:
            price = sku.get("price") if sku.get("price") is not None else product.get("price")
        ln.has_price = price is not None
        ln.price = c_to_int(price, "order.items[].price") if ln.has_price else 0
        if ln.price < 0:
            raise EngineInputError("order.items[].price must not be negative")
        amount = item.get("amount")
        ln.amount = c_to_int(amount, "order.items[].amount") if amount is not None else ln.price * ln.quantity
        if ln.amount < 0:
            raise EngineInputError("order.items[].amount must not be negative")
        ln.initial_quantity = ln.quantity
        ln.initial_amount = ln.amount
        prior = c_to_int(item.get("discount_amount"), "order.items[].discount_amount")
        ln.discount_amount = min(max(prior, 0), ln.amount)
        total += ln.amount
        o.lines.append(ln)
        i += 1
    amount = order.get("amount")
    o.amount = c_to_int(amount, "order.amount") if amount is not None else total
    if o.amount < 0:
        raise EngineInputError("order.amount must not be negative")
    init = order.get("initial_amount")
    o.initial_amount = c_to_int(init, "order.initial_amount") if init is not None else o.amount
    o.discount_amount = max(0, c_to_int(order.get("discount_amount"), "order.discount_amount"))
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
    cdef set blocked = set()
    cdef list out = []
    cdef Line ln
    if collections is None:
        collections = {}
    for ln in order.lines:
        for e in excluded:
            if entry_matches(e, ln, collections):
                blocked.add(ln.index)
                break
    if not included or (applicable_to and applicable_to.get("included_all")):
        out.append((ALL_ITEMS, [ln for ln in order.lines if ln.index not in blocked]))
        return out
    # Product/SKU entries resolve through one dict lookup per line; collections scan.
    index = {}
    slow = []
    for k, e in enumerate(included):
        obj = e.get("object")
        if obj == "products_collection":
            slow.append(k)
            continue
        tag = "s" if obj == "sku" else "p"
        for key in ((tag, e.get("id")), (tag + "src", e.get("source_id"))):
            if key[1] is not None and key not in index:
                index[key] = k
    buckets = [[] for _ in included]
    for ln in order.lines:
        if ln.index in blocked:
            continue
        best = -1
        for key in (("p", ln.product_id), ("psrc", ln.product_source_id), ("s", ln.sku_id),
                    ("ssrc", ln.sku_source_id)):
            if key[1] is not None:
                k = index.get(key, -1)
                if k >= 0 and (best < 0 or k < best):
                    best = k
        for k in slow:
            if best >= 0 and k > best:
                break
            if entry_matches(included[k], ln, collections):
                best = k
                break
        if best >= 0:
            buckets[best].append(ln)
    for k, e in enumerate(included):
        out.append((e, buckets[k]))
    return out


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
    cdef dict e = dict(oenv)
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
    v = compile_formula(src).evaluate(env)
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


cdef list _select(list targets, str effect):
    """Pick ``(line, units, entry)`` triples honouring sort, skip, repeat and quantity limits."""
    cdef list picks = []
    cdef Line ln
    cdef long long pos, skip, rep, n, taken, qlim, aqlim
    cdef bint unit_target, single
    for entry, lines in targets:
        how = entry.get("effect") or "APPLY_TO_EVERY"
        if how in ("APPLY_TO_CHEAPEST", "APPLY_FROM_CHEAPEST"):
            lines = sorted(lines, key=_cheap_key)
        elif how in ("APPLY_TO_MOST_EXPENSIVE", "APPLY_FROM_MOST_EXPENSIVE"):
            lines = sorted(lines, key=_dear_key)
        single = how in ("APPLY_TO_CHEAPEST", "APPLY_TO_MOST_EXPENSIVE")
        unit_target = entry.get("target") == "UNIT"
        skip = max(0, c_to_int(entry.get("skip_initially"), "skip_initially"))
        rep = max(1, c_to_int(entry.get("repeat") or 1, "repeat"))
        qlim = _opt_limit(entry, "quantity_limit")
        aqlim = _opt_limit(entry, "aggregated_quantity_limit")
        pos = 0
        taken = 0
        for ln in lines:
            if ln.quantity <= 0:
                continue
            if unit_target:
                n = _count_selected(pos, ln.quantity, skip, rep)
                pos += ln.quantity
                if single and n:
                    n = 1
            else:
                n = ln.quantity if (pos >= skip and (pos - skip) % rep == 0) else 0
                pos += 1
            if qlim >= 0 and n > qlim:
                n = qlim
            if aqlim >= 0 and n > aqlim - taken:
                n = aqlim - taken
            if n <= 0:
                continue
            taken += n
            picks.append((ln, n, entry))
            if single:
                break
    return picks


cdef list _split_capped(long long total, list weights, list caps):
    # Largest-remainder split where no part may exceed its cap; overflow is re-split.
    cdef Py_ssize_t n = len(weights), i
    cdef list parts = [0] * n
    cdef list live = [i for i in range(n) if weights[i] > 0 and caps[i] > 0]
    cdef long long left = total
    while left > 0 and live:
        share = c_split_largest_remainder(left, [weights[i] for i in live])
        over = False
        nxt = []
        for j, i in enumerate(live):
            room = caps[i] - parts[i]
            if share[j] >= room:
                parts[i] = caps[i]
                left -= room
                over = over or share[j] > room
            else:
                nxt.append((i, share[j]))
        if not over:
            for i, s in nxt:
                parts[i] += s
                left -= s
            break
        live = [i for i, _ in nxt]
    return parts


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


cdef long long _items(Order o, str dtype, str effect, double value, dict discount, list targets,
                      bint initial_mode, dict oenv) except -1:
    cdef list picks = _select(targets, effect)
    cdef Py_ssize_t n = len(picks), i
    cdef list raw = [0] * n
    cdef list bases = [0] * n
    cdef Line ln
    cdef long long units, full, base, d, cap, newp, total = 0
    cdef bint by_unit
    for i in range(n):
        ln, units, entry = picks[i]
        full = ln.amount if initial_mode else ln.subtotal()
        base = full if units == ln.quantity else c_round_half_up(full * units, ln.quantity)
        if base > ln.subtotal():
            base = ln.subtotal()
        bases[i] = base
    if effect in ("APPLY_TO_ITEMS_PROPORTIONALLY", "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY"):
        if effect == "APPLY_TO_ITEMS_PROPORTIONALLY":
            weights = bases
        else:
            weights = [p[1] for p in picks]
        raw = _split_capped(min(<long long>value, sum(bases)), weights, bases)
    else:
        for i in range(n):
            ln, units, entry = picks[i]
            base = bases[i]
            by_unit = effect == "APPLY_TO_ITEMS_BY_QUANTITY" or entry.get("target") == "UNIT"
            if dtype == "AMOUNT":
                d = <long long>value * (units if by_unit else 1)
            elif dtype == "PERCENT":
                d = c_percent_of(base, value)
            else:  # FIXED: re-price each unit
                newp = <long long>value
                if entry.get("price_formula"):
                    v = _formula_number(entry["price_formula"], _item_env(oenv or {}, ln))
                    if v is not None:
                        newp = <long long>floor(v * 100.0 + 0.5)
                elif entry.get("price") is not None:
                    newp = _money(entry["price"], "applicable_to.price")
                d = base - newp * units
            raw[i] = max(0, min(d, base))
    # Per-line caps (entry amount_limit; PERCENT discount amount_limit), then per-entry aggregates.
    entry_left = {}
    disc_line_cap = -1
    if dtype == "PERCENT" and discount.get("amount_limit") is not None:
        disc_line_cap = _money(discount["amount_limit"], "amount_limit")
    for i in range(n):
        ln, units, entry = picks[i]
        d = raw[i]
        lim = entry.get("amount_limit")
        if lim is not None:
            d = min(d, _money(lim, "amount_limit"))
        if disc_line_cap >= 0:
            d = min(d, disc_line_cap)
        agg = entry.get("aggregated_amount_limit")
        if agg is not None:
            key = id(entry)
            left = entry_left.get(key, _money(agg, "aggregated_amount_limit"))
            d = min(d, left)
            entry_left[key] = left - d
        raw[i] = d
    # Aggregated cap of the discount, then what is left of the order total.
    cap = -1
    if discount.get("aggregated_amount_limit") is not None:
        cap = _money(discount["aggregated_amount_limit"], "aggregated_amount_limit")
    cdef long long remaining = o.total_amount()
    for i in range(n):
        ln, units, entry = picks[i]
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
        _give(o, ln, d, units)
    return total


cdef Line _find_unit_line(Order o, object pid, object psrc, object sid):
    cdef Line ln
    for ln in o.lines:
        if sid is not None and ln.sku_id != sid:
            continue
        if (pid is not None and ln.product_id == pid) or (psrc is not None and ln.product_source_id == psrc):
            return ln
    return None


cdef dict _apply_unit(Order o, dict unit, dict oenv, dict prices, str default_effect):
    cdef dict product = unit.get("product") or {}
    cdef dict sku = unit.get("sku") or {}
    cdef Line ln
    cdef long long n, add = 0, have, price, units, d
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
    n = max(0, c_to_int(v if v is not None else unit.get("unit_off"), "unit_off"))
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
    out["unit_off"] = n
    out["effect"] = effect
    if pid is not None:
        out["unit_type"] = pid
    return out


cdef object _value(dict discount, str key, dict oenv, double scale):
    # The formula (when it yields a number) beats the static value.
    f = discount.get(key + "_formula")
    if f:
        v = _formula_number(f, oenv)
        if v is not None:
            return v * scale
    return discount.get(key)


cpdef dict apply_discount(Order order, dict discount, list targets, dict env, bint initial_mode, dict prices):
    """Apply one ``discount`` to ``order`` in place; return the ``result.discount`` echo.

    ``targets`` comes from :func:`match_lines`; ``env`` is the formula environment
    (customer / redemption / redeemable metadata, ``NOW``…) without order operands;
    ``prices`` maps product/SKU ids to catalog prices for UNIT lines added to the cart.
    """
    cdef Order o = order
    cdef double value = 0
    cdef long long money
    dtype = discount.get("type")
    if dtype not in DISCOUNT_TYPES:
        raise EngineInputError(f"unknown discount type {dtype!r}")
    effect = discount.get("effect")
    dynamic = _is_dynamic(discount)
    oenv = _order_env(o, env) if dynamic or _has_price_formula(targets) else env
    out = dict(discount)
    if dtype == "UNIT":
        if effect == "ADD_MANY_ITEMS":
            out["units"] = [_apply_unit(o, u, oenv, prices, "ADD_MISSING_ITEMS")
                            for u in discount.get("units") or []]
        else:
            out.update(_apply_unit(o, discount, oenv, prices, effect or "ADD_MISSING_ITEMS"))
            effect = out["effect"]
        out["effect"] = effect
        if dynamic:
            out["is_dynamic"] = True
        return out
    if effect is None:
        explicit = False
        for entry, _ in targets or []:
            explicit = explicit or entry is not ALL_ITEMS
        effect = "APPLY_TO_ITEMS" if explicit else ORDER_EFFECT
    if effect != ORDER_EFFECT and effect not in ITEM_EFFECTS:
        raise EngineInputError(f"unknown discount effect {effect!r}")
    if dtype == "AMOUNT":
        money = _money(_value(discount, "amount_off", oenv, 100.0), "amount_off")
        out["amount_off"] = money
        value = money
    elif dtype == "PERCENT":
        pv = _value(discount, "percent_off", oenv, 1.0)
        if isinstance(pv, bool) or (pv is not None and not isinstance(pv, (int, float))):
            raise EngineInputError("percent_off must be a number")
        value = float(pv) if pv is not None else 0.0
        if value < 0 or value != value:
            raise EngineInputError("percent_off must be a non-negative number")
        value = min(value, 100.0)
        out["percent_off"] = int(value) if value == int(value) else value
    else:
        money = _money(_value(discount, "fixed_amount", oenv, 100.0), "fixed_amount")
        out["fixed_amount"] = money
        value = money
    out["effect"] = effect
    if dynamic:
        out["is_dynamic"] = True
    if effect == ORDER_EFFECT:
        _order_level(o, dtype, value, discount, initial_mode)
    else:
        _items(o, dtype, effect, value, discount, targets or [], initial_mode, oenv)
    return out


cdef bint _is_dynamic(dict discount):
    for k in ("amount_off_formula", "percent_off_formula", "fixed_amount_formula", "unit_off_formula"):
        if discount.get(k):
            return True
    for u in discount.get("units") or ():
        if u.get("unit_off_formula"):
            return True
    return False


cdef bint _has_price_formula(list targets):
    if not targets:
        return False
    for entry, _ in targets:
        if entry.get("price_formula"):
            return True
    return False


cdef void _order_level(Order o, str dtype, double value, dict discount, bint initial_mode) except *:
    cdef long long current = o.total_amount(), d, base
    if dtype == "AMOUNT":
        d = <long long>value
    elif dtype == "PERCENT":
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
