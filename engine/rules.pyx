"""Validation rules (SEMANTICS §4) compiled once into Leaf / Group trees.

``compile_rules`` checks rule names, operators and the ``logic`` expression up
front, so ``RuleSet.check`` only walks pre-built nodes. Order and item rules read
the running :class:`engine.discounts.Order`; counters (redemption counts,
budgets) and catalog collections are looked up in the context the caller built.
"""

import re
from datetime import datetime, timedelta, timezone

from engine.discounts cimport Line, Order, build_order, entry_matches

from engine.money import EngineInputError

CUSTOMER_KEY = "customer_rules_violated"
ORDER_KEY = "order_rules_violated"
REDEMPTION_KEY = "redemption_rules_violated"

# name -> (code, needs property, failure key)
cdef dict _NAMES = {}
cdef int _c = 0
for _n, _p in (
    ("customer.segment", 0), ("customer.metadata", 1),
    ("order.amount", 0), ("order.total_amount", 0), ("order.initial_amount", 0), ("order.items.count", 0),
    ("order.items.price_any", 0), ("order.items.price_each", 0), ("order.items.metadata_any", 1),
    ("order.items.metadata_each", 1), ("order.metadata", 1),
    ("order.items.every", 0), ("order.items.any", 0), ("order.items.none", 0), ("order.items.cheapest", 0),
    ("order.items.most_expensive", 0),
    ("order.items.quantity", 0), ("order.items.aggregated_quantity", 0), ("order.items.price", 0),
    ("order.items.aggregated_amount", 0), ("order.items.metadata", 1),
    ("product.id", 0), ("product.price", 0), ("product.quantity", 0), ("product.discount_applicable", 0),
    ("product.metadata", 1), ("product.metadata.aggregated_quantity", 1),
    ("product.metadata.aggregated_amount", 1), ("product.metadata.discount_applicable", 1),
    ("product.metadata.match_all", 1),
    ("sku.id", 0), ("sku.price", 0), ("sku.quantity", 0), ("sku.discount_applicable", 0),
    ("redemption.gift.amount", 0), ("redemption.api_key", 0), ("redemption.user.login", 0),
    ("redemption.metadata", 1), ("redemption.reward.pay_with_points.points_used", 0),
    ("publication.redeemable_by_linked_customer", 0), ("custom_event.metadata", 1),
):
    _c += 1
    _key = CUSTOMER_KEY if _n.startswith("customer.") else (
        ORDER_KEY if _n.startswith(("order.", "product.", "sku.")) else REDEMPTION_KEY)
    _NAMES[_n] = (_c, _p, _key)
# Counters supplied by the caller under ``ctx["counters"][name]`` (default 0).
COUNTER_RULES = frozenset(
    [f"campaign.redemptions.count{s}" for s in ("", ".daily", ".weekly", ".monthly")]
    + [f"campaign.redemptions.customers_count{s}" for s in ("", ".daily", ".weekly", ".monthly")]
    + ["campaign.orders.amount_discounted", "campaign.orders.amount", "redemption.count.per_api_key",
       "redemption.count.per_user"]
    + [f"redemption.count{s}" for s in (".daily", ".weekly", ".monthly")]
    + [f"redemption.count.per_customer{s}" for s in ("", ".daily", ".weekly", ".monthly")]
)
cdef int C_COUNTER = 1000
for _n in COUNTER_RULES:
    _NAMES[_n] = (C_COUNTER, 0, REDEMPTION_KEY)

cdef int N_SEGMENT = _NAMES["customer.segment"][0]
cdef int N_CMETA = _NAMES["customer.metadata"][0]
cdef int N_OAMOUNT = _NAMES["order.amount"][0]
cdef int N_OTOTAL = _NAMES["order.total_amount"][0]
cdef int N_OINIT = _NAMES["order.initial_amount"][0]
cdef int N_COUNT = _NAMES["order.items.count"][0]
cdef int N_PRICE_ANY = _NAMES["order.items.price_any"][0]
cdef int N_PRICE_EACH = _NAMES["order.items.price_each"][0]
cdef int N_META_ANY = _NAMES["order.items.metadata_any"][0]
cdef int N_META_EACH = _NAMES["order.items.metadata_each"][0]
cdef int N_OMETA = _NAMES["order.metadata"][0]
cdef int N_EVERY = _NAMES["order.items.every"][0]
cdef int N_ANY = _NAMES["order.items.any"][0]
cdef int N_NONE = _NAMES["order.items.none"][0]
cdef int N_CHEAPEST = _NAMES["order.items.cheapest"][0]
cdef int N_DEAREST = _NAMES["order.items.most_expensive"][0]
cdef set _QTY = {_NAMES[n][0] for n in ("order.items.quantity", "order.items.aggregated_quantity",
                                         "product.quantity", "sku.quantity",
                                         "product.metadata.aggregated_quantity")}
cdef set _PRICE = {_NAMES[n][0] for n in ("order.items.price", "product.price", "sku.price")}
cdef set _AMOUNT = {_NAMES[n][0] for n in ("order.items.aggregated_amount", "product.metadata.aggregated_amount")}
cdef set _IMETA = {_NAMES[n][0] for n in ("order.items.metadata", "product.metadata", "product.metadata.match_all")}
cdef set _APPLICABLE = {_NAMES[n][0] for n in ("product.discount_applicable", "sku.discount_applicable",
                                                "product.metadata.discount_applicable")}
cdef int N_PRODUCT = _NAMES["product.id"][0]
cdef int N_SKU = _NAMES["sku.id"][0]
cdef int N_GIFT = _NAMES["redemption.gift.amount"][0]
cdef int N_APIKEY = _NAMES["redemption.api_key"][0]
cdef int N_LOGIN = _NAMES["redemption.user.login"][0]
cdef int N_RMETA = _NAMES["redemption.metadata"][0]
cdef int N_POINTS = _NAMES["redemption.reward.pay_with_points.points_used"][0]
cdef int N_HOLDER = _NAMES["publication.redeemable_by_linked_customer"][0]
cdef int N_EMETA = _NAMES["custom_event.metadata"][0]
cdef set _STRUCT = {N_EVERY, N_ANY, N_NONE, N_CHEAPEST, N_DEAREST, N_PRODUCT, N_SKU}

# operator -> code; aliases map onto the canonical ones.
cdef dict _OPS = {
    "$is": 1, "$in": 1, "$is_not": 2, "$not_in": 2,
    "$less_than": 3, "$less_than_or_equal": 4, "$less_than_equal": 4,
    "$more_than": 5, "$greater_than": 5, "$more_than_or_equal": 6, "$more_than_equal": 6,
    "$greater_than_or_equal": 6,
    "$starts_with": 7, "$ends_with": 8, "$contains": 9, "$not_contain": 10,
    "$has_value": 11, "$is_unknown": 12, "$count": 13, "$count_more": 14, "$count_less": 15,
    "$not_differ": 16, "$not_intersect": 17, "$after": 18, "$before": 19,
    "$more_than_ago": 20, "$less_than_ago": 21, "$is_days_ago": 22,
    "$more_than_future": 23, "$less_than_future": 24, "$is_days_in_future": 25,
    "$timeframe": 26, "$timeframe_absolute": 27, "$timeframe_daily_hours": 28, "$dow": 29, "$from": 1,
}
OPERATORS = frozenset(_OPS)
RULE_NAMES = frozenset(_NAMES)


def _dt(v):
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    return None


_DUR = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_duration(s):
    """ISO-8601 duration (weeks/days/hours/minutes/seconds) -> timedelta."""
    m = _DUR.match(s or "")
    if not m or not any(m.groups()):
        raise EngineInputError(f"bad ISO-8601 duration {s!r}")
    w, d, h, mi, se = (int(x or 0) for x in m.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=se)


cdef object _num(object v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


cdef bint _eq(object a, object b):
    if a is None or b is None:
        return False
    if isinstance(a, dict):
        a = a.get("id")
    if isinstance(b, dict):
        b = b.get("id")
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and not isinstance(b, (int, float)):
        return _num(b) == a
    if isinstance(b, (int, float)) and not isinstance(a, (int, float)):
        return _num(a) == b
    return a == b


cdef bint _op_scalar(int op, object v, tuple vals, object now) except -1:
    cdef object x, y
    if op == 1:
        for w in vals:
            if _eq(v, w):
                return True
        return False
    if op == 2:
        if v is None:
            return True
        for w in vals:
            if _eq(v, w):
                return False
        return True
    if 3 <= op <= 6:
        x = _num(v)
        y = _num(vals[0]) if vals else None
        if x is None or y is None:
            dx, dy = _dt(v), _dt(vals[0] if vals else None)
            if dx is None or dy is None:
                return False
            x, y = dx, dy
        if op == 3:
            return x < y
        if op == 4:
            return x <= y
        if op == 5:
            return x > y
        return x >= y
    if 7 <= op <= 10:
        if v is None:
            return op == 10
        s = str(v)
        if op == 7:
            return any(s.startswith(str(w)) for w in vals)
        if op == 8:
            return any(s.endswith(str(w)) for w in vals)
        if op == 9:
            return any(str(w) in s for w in vals)
        return not any(str(w) in s for w in vals)
    if op == 11:
        return v is not None and v != "" and v != []
    if op == 12:
        return v is None or v == ""
    if 13 <= op <= 17:
        items = list(v) if isinstance(v, (list, tuple, set, frozenset)) else ([] if v is None else [v])
        if op == 13:
            return len(items) == _num(vals[0])
        if op == 14:
            return len(items) > _num(vals[0])
        if op == 15:
            return len(items) < _num(vals[0])
        ids = {w.get("id") if isinstance(w, dict) else w for w in vals}
        have = {w.get("id") if isinstance(w, dict) else w for w in items}
        return have == ids if op == 16 else have.isdisjoint(ids)
    if 18 <= op <= 25:
        d = _dt(v)
        if d is None or now is None:
            return False
        if op == 18:
            return d > _dt(vals[0])
        if op == 19:
            return d < _dt(vals[0])
        n = _num(vals[0])
        if op <= 22:
            days = (now - d).days
        else:
            days = (d - now).days
        if op in (20, 23):
            return days > n
        if op in (21, 24):
            return days < n
        return days == n
    # 26-29: the value is the moment of redemption (``now``).
    return _time_op(op, now, vals)


cdef bint _time_op(int op, object now, tuple vals) except -1:
    if now is None:
        return False
    if op == 29:
        return (now.isoweekday() % 7) in {int(x) for x in vals}
    for spec in vals:
        parts = str(spec).split(";")
        if op == 27:
            if _dt(parts[0]) <= now < _dt(parts[1]):
                return True
        elif op == 26:
            start, every, dur = _dt(parts[0]), parse_duration(parts[1]), parse_duration(parts[2])
            if now >= start and ((now - start) % every) < dur:
                return True
        else:
            sh, sm = (int(x) for x in parts[0].split(":"))
            eh, em = (int(x) for x in parts[1].split(":"))
            days = {int(x) for x in parts[2].split(",")} if len(parts) > 2 and parts[2] else None
            minute = now.hour * 60 + now.minute
            if (days is None or (now.isoweekday() % 7) in days) and sh * 60 + sm <= minute < eh * 60 + em:
                return True
    return False


cdef class Leaf:
    """One numbered rule: its name, property, operator list and optional nested group."""

    def __init__(self, dict rule, object set_message):
        name = rule.get("name")
        if name not in _NAMES:
            raise EngineInputError(f"unknown validation rule name {name!r}")
        self.name = name
        self.code, needs_prop, self.key = _NAMES[name]
        self.prop = rule.get("property")
        if needs_prop and not self.prop:
            raise EngineInputError(f"rule {name} requires a property")
        err = rule.get("error") or {}
        self.message = err.get("message") or set_message
        self.ops = []
        self.operands = ()
        conds = rule.get("conditions") or {}
        if not isinstance(conds, dict):
            raise EngineInputError("rule conditions must be an object")
        for op, vals in conds.items():
            if op not in _OPS:
                raise EngineInputError(f"unknown operator {op!r} in rule {name}")
            if not isinstance(vals, list):
                vals = [vals]
            self.ops.append((_OPS[op], tuple(vals)))
            if self.code in _STRUCT:
                self.operands = tuple(v for v in vals if isinstance(v, dict))
        self.sub = _group(rule["rules"], set_message) if rule.get("rules") else None

    cdef bint test(self, dict ctx, Order order, list scope) except -1:
        cdef int c = self.code
        cdef Line ln
        if c in _STRUCT:
            return self._structural(ctx, order, scope)
        if c == C_COUNTER:
            v = (ctx.get("counters") or {}).get(self.name, 0)
            return self._all_ops(v, ctx)
        if c == N_SEGMENT:
            segs = (ctx.get("customer") or {}).get("segments") or ()
            ids = [s.get("id") if isinstance(s, dict) else s for s in segs]
            return self._set_ops(ids, ctx)
        if c == N_CMETA:
            return self._all_ops(((ctx.get("customer") or {}).get("metadata") or {}).get(self.prop), ctx)
        if c == N_OAMOUNT:
            return self._all_ops(order.total_amount(), ctx)
        if c == N_OTOTAL:
            v = ctx.get("total_after")
            return self._all_ops(order.total_amount() if v is None else v, ctx)
        if c == N_OINIT:
            return self._all_ops(order.initial_amount, ctx)
        if c == N_COUNT:
            return self._all_ops(len(order.lines), ctx)
        if c == N_PRICE_ANY or c == N_PRICE_EACH:
            vals = [ln.unit_price() for ln in order.lines]
            return self._list_ops(vals, ctx, c == N_PRICE_EACH)
        if c == N_META_ANY or c == N_META_EACH:
            vals = [(ln.raw.get("metadata") or {}).get(self.prop) for ln in order.lines]
            return self._list_ops(vals, ctx, c == N_META_EACH)
        if c == N_OMETA:
            return self._all_ops((order.raw.get("metadata") or {}).get(self.prop), ctx)
        lines = scope if scope is not None else order.lines
        if c in _QTY:
            return self._all_ops(sum([ln.quantity for ln in lines]), ctx)
        if c in _AMOUNT:
            return self._all_ops(sum([ln.amount for ln in lines]), ctx)
        if c in _PRICE:
            return self._list_ops([ln.unit_price() for ln in lines], ctx, False)
        if c in _IMETA:
            vals = [((ln.raw.get("product") or {}).get("metadata") or ln.raw.get("metadata") or {}).get(self.prop)
                    for ln in lines]
            return self._list_ops(vals, ctx, self.name == "product.metadata.match_all")
        if c in _APPLICABLE:
            return bool(lines) and self._all_ops(True, ctx)
        if c == N_GIFT:
            return self._all_ops(ctx.get("gift_credits"), ctx)
        if c == N_POINTS:
            return self._all_ops(ctx.get("points_used"), ctx)
        if c == N_APIKEY:
            return self._all_ops(ctx.get("api_key"), ctx)
        if c == N_LOGIN:
            return self._all_ops(ctx.get("user_login"), ctx)
        if c == N_RMETA:
            return self._all_ops((ctx.get("metadata") or {}).get(self.prop), ctx)
        if c == N_EMETA:
            return self._all_ops((ctx.get("custom_event_metadata") or {}).get(self.prop), ctx)
        if c == N_HOLDER:
            holder = ctx.get("holder_id")
            cust = (ctx.get("customer") or {}).get("id")
            ok = holder is None or (cust is not None and holder == cust)
            return self._all_ops(ok, ctx) if self.ops else ok
        raise EngineInputError(f"rule {self.name} cannot be evaluated")

    cdef bint _all_ops(self, object v, dict ctx) except -1:
        now = ctx.get("now")
        for op, vals in self.ops:
            if not _op_scalar(op, v, vals, now):
                return False
        return True

    cdef bint _set_ops(self, list have, dict ctx) except -1:
        # Set-valued operands (segments): $is/$in = member of any, $is_not/$not_in = of none.
        for op, vals in self.ops:
            if op == 1:
                if not any(_eq(h, w) for h in have for w in vals):
                    return False
            elif op == 2:
                if any(_eq(h, w) for h in have for w in vals):
                    return False
            elif not _op_scalar(op, have, vals, ctx.get("now")):
                return False
        return True

    cdef bint _list_ops(self, list vals, dict ctx, bint each) except -1:
        if not vals:
            return False
        for v in vals:
            if self._all_ops(v, ctx):
                if not each:
                    return True
            elif each:
                return False
        return each

    cdef bint _structural(self, dict ctx, Order order, list scope) except -1:
        cdef Line ln
        collections = ctx.get("collections") or {}
        operands = self.operands
        negate = any(op == 2 for op, _ in self.ops)
        if self.code == N_PRODUCT or self.code == N_SKU:
            obj = "sku" if self.code == N_SKU else "product"
            matched = [ln for ln in order.lines
                       if any(entry_matches(e if e.get("object") else dict(e, object=obj), ln, collections)
                              for e in operands)]
            if negate:
                return not matched
            return bool(matched) and (self.sub is None or self.sub.test(ctx, order, matched))
        matched = [ln for ln in order.lines if any(entry_matches(e, ln, collections) for e in operands)]
        if self.code == N_NONE:
            return not matched
        if self.code == N_ANY:
            if self.sub is None:
                return bool(matched)
            return any(self.sub.test(ctx, order, [ln]) for ln in matched)
        if self.code == N_EVERY:
            if not order.lines or len(matched) != len(order.lines):
                return False
            return self.sub is None or all(self.sub.test(ctx, order, [ln]) for ln in matched)
        if not order.lines:
            return False
        if self.code == N_CHEAPEST:
            pick = min(order.lines, key=_cheap)
        else:
            pick = max(order.lines, key=_dear)
        return pick in matched and (self.sub is None or self.sub.test(ctx, order, [pick]))


def _cheap(Line ln):
    return (ln.unit_price(), ln.index)


def _dear(Line ln):
    return (ln.unit_price(), -ln.index)


_LOGIC_TOKEN = re.compile(r"\s*(\d+|and|or|AND|OR|\(|\))")


cdef object _parse_logic(str logic, set known):
    toks = []
    pos = 0
    logic = logic.strip()
    while pos < len(logic):
        m = _LOGIC_TOKEN.match(logic, pos)
        if not m:
            raise EngineInputError(f"bad rule logic {logic!r}")
        toks.append(m.group(1).lower())
        pos = m.end()
        while pos < len(logic) and logic[pos].isspace():
            pos += 1
    state = [0]

    def expr():
        node = term()
        while state[0] < len(toks) and toks[state[0]] == "or":
            state[0] += 1
            node = ("or", node, term())
        return node

    def term():
        node = atom()
        while state[0] < len(toks) and toks[state[0]] == "and":
            state[0] += 1
            node = ("and", node, atom())
        return node

    def atom():
        if state[0] >= len(toks):
            raise EngineInputError(f"bad rule logic {logic!r}")
        t = toks[state[0]]
        state[0] += 1
        if t == "(":
            node = expr()
            if state[0] >= len(toks) or toks[state[0]] != ")":
                raise EngineInputError(f"unbalanced parentheses in rule logic {logic!r}")
            state[0] += 1
            return node
        if t not in known:
            raise EngineInputError(f"rule logic names unknown rule {t}")
        return t

    node = expr()
    if state[0] != len(toks):
        raise EngineInputError(f"bad rule logic {logic!r}")
    return node


cdef class Group:
    """Numbered rules plus their ``logic`` (empty logic = all must pass)."""

    def __init__(self, list leaves, object logic):
        self.leaves = leaves
        self.logic = logic

    cdef bint test(self, dict ctx, Order order, list scope) except -1:
        self.failed = None
        if self.logic is None:
            for leaf in self.leaves:
                if not (<Leaf>leaf).test(ctx, order, scope):
                    self.failed = leaf
                    return False
            return True
        return self._eval(self.logic, ctx, order, scope)

    cdef bint _eval(self, object node, dict ctx, Order order, list scope) except -1:
        cdef Leaf leaf
        if isinstance(node, int):
            leaf = self.leaves[node]
            if leaf.test(ctx, order, scope):
                return True
            if self.failed is None:
                self.failed = leaf
            return False
        if node[0] == "and":
            return self._eval(node[1], ctx, order, scope) and self._eval(node[2], ctx, order, scope)
        return self._eval(node[1], ctx, order, scope) or self._eval(node[2], ctx, order, scope)


cdef Group _group(dict rules, object set_message):
    numbered = sorted((k for k in rules if k != "logic"), key=lambda k: int(k) if k.isdigit() else -1)
    for k in numbered:
        if not k.isdigit():
            raise EngineInputError(f"rule keys must be numbers, got {k!r}")
    leaves = [Leaf(rules[k], set_message) for k in numbered]
    logic = rules.get("logic")
    index = {k: i for i, k in enumerate(numbered)}
    tree = None
    if logic:
        if not isinstance(logic, str):
            raise EngineInputError("rule logic must be a string")
        tree = _remap(_parse_logic(logic, set(numbered)), index)
    return Group(leaves, tree)


cdef object _remap(object node, dict index):
    if isinstance(node, str):
        return index[node]
    return (node[0], _remap(node[1], index), _remap(node[2], index))


cdef object _required(Group g, dict collections):
    # Ids of which the cart must hold at least one for the group to pass (None = no such need).
    cdef Leaf leaf
    sets = []
    for leaf in g.leaves:
        s = None
        if (leaf.code == N_PRODUCT or leaf.code == N_SKU or leaf.code == N_ANY or leaf.code == N_EVERY
                or leaf.code == N_CHEAPEST or leaf.code == N_DEAREST) \
                and leaf.operands and all(op == 1 for op, _ in leaf.ops):
            s = set()
            for e in leaf.operands:
                if e.get("object") == "products_collection":
                    members = collections.get(e.get("id"))
                    if members is None:
                        s = None
                        break
                    s.update(members)
                else:
                    s.update(x for x in (e.get("id"), e.get("source_id")) if x)
        sets.append(s)
    return _need(g.logic, sets)


cdef object _need(object node, list sets):
    if node is None:
        best = None
        for s in sets:
            if s is not None and (best is None or len(s) < len(best)):
                best = s
        return best
    if isinstance(node, int):
        return sets[node]
    a, b = _need(node[1], sets), _need(node[2], sets)
    if node[0] == "and":
        if a is None:
            return b
        if b is None:
            return a
        return a if len(a) <= len(b) else b
    if a is None or b is None:
        return None
    return a | b


cdef class RuleSet:
    """A compiled validation-rule set; see :func:`compile_rules`."""

    cpdef tuple check(self, dict ctx, Order order):
        """``(ok, key, message)`` against the running ``order``."""
        if self.root is None or self.root.test(ctx, order, None):
            return (True, None, None)
        leaf = self.root.failed
        if leaf is None:
            return (False, ORDER_KEY, self.message)
        return (False, (<Leaf>leaf).key, (<Leaf>leaf).message)

    def evaluate(self, ctx):
        """Evaluate against ``ctx`` (``order`` may be a request dict or a built Order).

        Returns ``{"ok": bool, "key": str | None, "message": str | None}``.
        """
        order = ctx.get("order")
        if order is None:
            order = build_order({})
        elif isinstance(order, dict):
            order = build_order(order)
        ok, key, message = self.check(ctx, order)
        return {"ok": ok, "key": key, "message": message}


def compile_rules(rule_set, collections=None):
    """Compile a validation-rule set (``{id, rules, error, applicable_to}``) into a :class:`RuleSet`.

    ``collections`` (``{pc_id: set(product ids)}``) only feeds the qualification
    index (``required_ids``); evaluation reads collections from the context.
    """
    if not isinstance(rule_set, dict):
        raise EngineInputError("validation rule set must be an object")
    cdef RuleSet rs = RuleSet.__new__(RuleSet)
    rs.id = rule_set.get("id")
    rs.message = (rule_set.get("error") or {}).get("message")
    rules = rule_set.get("rules") or {}
    if not isinstance(rules, dict):
        raise EngineInputError("rules must be an object")
    rs.root = _group(rules, rs.message) if [k for k in rules if k != "logic"] else None
    bundle = rule_set.get("bundle_rules")
    if bundle is not None and not isinstance(bundle, dict):
        raise EngineInputError("bundle_rules must be an object")
    rs.bundle_rules = bundle if bundle and [k for k in bundle if k not in ("logic", "limit")] else None
    app = rule_set.get("applicable_to") or {}
    rs.applicable_to = {"included": list(app.get("included") or []), "excluded": list(app.get("excluded") or []),
                        "included_all": bool(app.get("included_all"))}
    names = _all_names(rs.root) if rs.root is not None else set()
    rs.needs_total_after = "order.total_amount" in names
    rs.has_order_rules = any(n.startswith(("order.", "product.", "sku.")) for n in names)
    rs.has_budget_rules = any(n in COUNTER_RULES for n in names)
    rs.required_ids = _required(rs.root, collections or {}) if rs.root is not None else None
    if rs.required_ids is not None:
        rs.required_ids = frozenset(rs.required_ids)
    return rs


cdef set _all_names(Group g):
    cdef set out = set()
    cdef Leaf leaf
    for leaf in g.leaves:
        out.add(leaf.name)
        if leaf.sub is not None:
            out |= _all_names(leaf.sub)
    return out
