"""Stackable validation (SEMANTICS §5.2–5.3): order, check, limit and apply redeemables.

Pure: every input is plain data already loaded by the caller (definitions,
live counters, ``now``). See ``stacking.pyi`` for the input/output contract.

Definitions compile once with :func:`compile_redeemable` (discount plan, rule sets,
``applicable_to`` index, bundle); a request passes the compiled object itself, or a
dict ``{"compiled": cr, **live state}`` whose keys override the definition's. Plain
dicts still work and are compiled on every call. :func:`expand_promotion_stack`
turns a promotion stack into its tiers. The output shares objects between calls
(a static discount's result echo, the normalized stacking rules, empty lists):
treat it as read-only.

Bundles (``bundle_rules``, SEMANTICS §3) multiply AMOUNT and PERCENT values and
UNIT ``unit_off`` by the number of bundles found (FIXED values and per-unit
APPLY_TO_ITEMS_BY_QUANTITY amounts are not multiplied); the unit limits
``quantity_limit`` / ``aggregated_quantity_limit`` scale with them for AMOUNT and FIXED. No bundle found -> INAPPLICABLE ``order_rules_violated`` with
``result.bundle.missing``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.string cimport memcpy

from engine.discounts cimport (
    Entry, Line, Order, Pick, Picks, Plan, Targeting, apply_gift, apply_points, build_order, compile_discount,
    compile_targeting, unit_positions,
)
from engine.jsonout cimport (
    JB_INT_MAX, JB_LIT, JBuf, jb_bytes, jb_char, jb_end, jb_free, jb_init, jb_put, jb_reserve, jb_value, jb_w_int,
)
from engine.rules cimport RuleSet

from datetime import datetime, timezone

from orjson import Fragment

cdef extern from "Python.h":
    object _PyDict_NewPresized(Py_ssize_t minused)

from engine.discounts import ITEM_EFFECTS, UNITS_LISTED_MAX
from engine.money import EngineInputError
from engine.rules import compile_rules, parse_duration

DEFAULT_STACKING_RULES = {
    "redeemables_limit": 30,
    "applicable_redeemables_limit": 5,
    "applicable_redeemables_per_category_limit": 1,
    "applicable_redeemables_category_limits": {},
    "applicable_exclusive_redeemables_limit": 1,
    "applicable_exclusive_redeemables_per_category_limit": 1,
    "exclusive_categories": [],
    "joint_categories": [],
    "redeemables_application_mode": "PARTIAL",
    "redeemables_sorting_rule": "REQUESTED_ORDER",
    "redeemables_products_application_mode": "STACK",
    "redeemables_no_effect_rule": "REDEEM_ANYWAY",
    "no_effect_skip_categories": [],
    "no_effect_redeem_anyway_categories": [],
    "redeemables_rollback_order_mode": "WITH_ORDER",
    "discount_calculation_mode": "DISCOUNTED_AMOUNT",
    "initial_amount_mode_categories": [],
    "discounted_amount_mode_categories": [],
    "grouped_redeemables_sorting_rule": "JOINT_ALWAYS_LAST",
}

# key -> standard message (Voucherify wording for the keys it documents).
MESSAGES = {
    "voucher_expired": "voucher expired",
    "voucher_not_active": "voucher not active",
    "voucher_disabled": "voucher is disabled",
    "voucher_not_active_now": "voucher not active now",
    "promotion_inactive": "Inactive Promotion",
    "promotion_not_active_now": "promotion not active now",
    "quantity_exceeded": "quantity exceeded",
    "gift_amount_exceeded": "gift amount exceeded",
    "loyalty_card_points_exceeded": "loyalty card points exceeded",
    "customer_rules_violated": "customer does not match segment rules",
    "order_rules_violated": "order does not match validation rules",
    "redemption_rules_violated": "redemption does not match validation rules",
    "referrer_not_permitted_to_redeem": "voucher cannot be redeemed by referrer",
    "applicable_redeemables_limit_exceeded": "Applicable redeemables limit exceeded",
    "applicable_redeemables_per_category_limit_exceeded": "Applicable redeemables per category limit exceeded",
    "applicable_exclusive_redeemables_limit_exceeded": "Applicable exclusive redeemables limit exceeded",
    "applicable_exclusive_redeemables_per_category_limit_exceeded":
        "Applicable exclusive redeemables per category limit exceeded",
    "exclusion_rules_not_met": "Redeemable cannot be applied due to exclusion rules",
    "preceding_validation_failed": "Redeemable cannot be applied due to preceding validation failure",
    "no_effect": "Redeemable cannot be applied because it has no effect",
}


def normalize_stacking_rules(rules):
    """Fill the recommended defaults into a project's stacking rules."""
    out = dict(DEFAULT_STACKING_RULES)
    if rules:
        for k, v in rules.items():
            if v is not None:
                out[k] = v
    return out


cdef class _Config:
    """Normalized stacking rules, read into typed fields once."""
    cdef dict sr
    cdef long long redeemables_limit, applicable_limit, per_category_limit, exclusive_limit
    cdef long long exclusive_per_category_limit
    cdef bint all_mode, once, skip_no_effect, global_initial, by_hierarchy, joint_last
    cdef set skip_cats, anyway_cats, initial_cats, discounted_cats, exclusive, joint
    cdef dict cat_limits

    def __init__(self, dict sr):
        self.sr = sr
        self.redeemables_limit = sr["redeemables_limit"]
        self.applicable_limit = sr["applicable_redeemables_limit"]
        self.per_category_limit = sr["applicable_redeemables_per_category_limit"]
        self.exclusive_limit = sr["applicable_exclusive_redeemables_limit"]
        self.exclusive_per_category_limit = sr["applicable_exclusive_redeemables_per_category_limit"]
        self.all_mode = sr["redeemables_application_mode"] == "ALL"
        self.once = sr["redeemables_products_application_mode"] == "ONCE"
        self.skip_no_effect = sr["redeemables_no_effect_rule"] == "SKIP"
        self.global_initial = sr["discount_calculation_mode"] == "INITIAL_AMOUNT"
        self.by_hierarchy = sr["redeemables_sorting_rule"] == "CATEGORY_HIERARCHY"
        self.joint_last = sr.get("grouped_redeemables_sorting_rule", "JOINT_ALWAYS_LAST") == "JOINT_ALWAYS_LAST"
        self.skip_cats = _set(sr.get("no_effect_skip_categories"))
        self.anyway_cats = _set(sr.get("no_effect_redeem_anyway_categories"))
        self.initial_cats = _set(sr.get("initial_amount_mode_categories"))
        self.discounted_cats = _set(sr.get("discounted_amount_mode_categories"))
        self.exclusive = _set(sr.get("exclusive_categories"))
        self.joint = _set(sr.get("joint_categories"))
        self.cat_limits = sr.get("applicable_redeemables_category_limits") or {}


# The last stacking rules read, and what they held: a project passes the same dict on every
# request, and normalizing it again cost more than applying a discount.
cdef object _last_rules = None
cdef tuple _last_values = None
cdef _Config _last_config = None


cdef _Config _config(object rules):
    global _last_rules, _last_values, _last_config
    if rules is None or type(rules) is not dict:
        return _Config(normalize_stacking_rules(rules))
    values = tuple((<dict>rules).values())
    if rules is _last_rules and values == _last_values:
        return _last_config
    config = _Config(normalize_stacking_rules(rules))
    _last_rules, _last_values, _last_config = rules, values, config
    return config


cdef object _dt(object v):
    if v is None or isinstance(v, datetime):
        return v
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise EngineInputError(f"bad date {v!r}") from None
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    raise EngineInputError("dates must be ISO-8601 strings")


cdef bint _active_now(dict r, object now) except -1:
    # validity_timeframe / validity_day_of_week / validity_hours (all in UTC).
    tf = r.get("validity_timeframe")
    if tf and tf.get("interval"):
        start = _dt(r.get("start_date"))
        if start is None:
            raise EngineInputError("validity_timeframe needs start_date")
        every = parse_duration(tf["interval"])
        dur = parse_duration(tf.get("duration") or tf["interval"])
        if now < start or (now - start) % every >= dur:
            return False
    dow = r.get("validity_day_of_week")
    if dow and (now.isoweekday() % 7) not in dow:
        return False
    hours = (r.get("validity_hours") or {}).get("daily")
    if hours:
        minute = now.hour * 60 + now.minute
        today = now.isoweekday() % 7
        for slot in hours:
            days = slot.get("days_of_week")
            sh, sm = (int(x) for x in slot["start_time"].split(":")[:2])
            eh, em = (int(x) for x in slot["expiration_time"].split(":")[:2])
            if (not days or today in days) and sh * 60 + sm <= minute < eh * 60 + em:
                return True
        return False
    return True


cdef dict _error(str key, object custom, str details):
    cdef dict err = {"code": 400, "key": key, "message": MESSAGES.get(key, key), "details": details}
    if custom:
        err["error"] = {"message": custom}
    return {"error": err, "details": {"key": key, "message": custom or MESSAGES.get(key, key)}}


cdef str _state_error(dict r, object now, dict customer):
    tier = r.get("object") == "promotion_tier"
    if r.get("active") is False:
        return "promotion_inactive" if tier else "voucher_disabled"
    start = _dt(r.get("start_date"))
    if start is not None and now < start:
        return "promotion_not_active_now" if tier else "voucher_not_active"
    end = _dt(r.get("expiration_date"))
    if end is not None and now > end:
        return "promotion_not_active_now" if tier else "voucher_expired"
    if not _active_now(r, now):
        return "promotion_not_active_now" if tier else "voucher_not_active_now"
    q = r.get("quantity")
    if q is not None and (r.get("redeemed_quantity") or 0) + (r.get("locked") or 0) >= q:
        return "quantity_exceeded"
    gift = r.get("gift")
    if gift is not None:
        bal = gift.get("balance") or 0
        credits = r.get("credits")
        if bal <= 0 or (credits is not None and credits > bal):
            return "gift_amount_exceeded"
    card = r.get("loyalty_card")
    if card is not None:
        pts = (r.get("reward") or {}).get("points") or 0
        if pts > (card.get("balance") or 0):
            return "loyalty_card_points_exceeded"
    if r.get("is_referral_code") and r.get("referrer_id") and r.get("referrer_id") == customer.get("id"):
        return "referrer_not_permitted_to_redeem"
    return None


cdef tuple _NO_CATEGORY = ([], 1, 0)


cdef tuple _classify(dict r, _Config cfg):
    # (category ids, hierarchy, kind) with kind 0 common, 1 exclusive, 2 joint.
    cats = r.get("categories")
    if not cats:
        return _NO_CATEGORY
    ids = []
    hier = None
    kind = 0
    excl = cfg.exclusive
    joint = cfg.joint
    for c in cats:
        cid = c.get("id")
        ids.append(cid)
        h = c.get("hierarchy")
        h = 1 if h is None else h
        hier = h if hier is None or h < hier else hier
        t = c.get("stacking_rules_type")
        if t == "EXCLUSIVE" or cid in excl:
            kind = 1
        elif (t == "JOINT" or cid in joint) and kind == 0:
            kind = 2
    return ids, (1 if hier is None else hier), kind


cdef dict _env(dict r, dict customer, dict ctx, object now):
    return {
        "CUSTOMER_METADATA": customer.get("metadata") or {},
        "REDEMPTION_METADATA": ctx.get("metadata") or {},
        "REDEEMABLE_METADATA": r.get("metadata") or {},
        "PUBLICATION_METADATA": r.get("publication_metadata") or {},
        "ORDER_METADATA": ctx.get("order_metadata") or {},
        "NOW": now, "TODAY": now,
        "VOUCHER_REDEMPTION_QUANTITY": r.get("quantity"),
        "VOUCHER_REDEEMED_QUANTITY": r.get("redeemed_quantity") or 0,
        "VOUCHER_START_DATE": r.get("start_date"),
        "VOUCHER_EXPIRATION_DATE": r.get("expiration_date"),
        "CUSTOMER_BIRTHDATE": customer.get("birthdate") or customer.get("birthday"),
    }


# --- bundles -----------------------------------------------------------------------------------

cdef long long _required_units(dict rule) except -1:
    # The nested quantity condition of a bundle row; 1 unit when none is given.
    sub = rule.get("rules") or {}
    for k, nested in sub.items():
        if k == "logic" or not isinstance(nested, dict) or "quantity" not in (nested.get("name") or ""):
            continue
        for op, vals in (nested.get("conditions") or {}).items():
            v = vals[0] if isinstance(vals, list) and vals else vals
            if op in ("$more_than_or_equal", "$more_than_equal", "$greater_than_or_equal", "$is", "$in"):
                return max(1, int(v))
            if op in ("$more_than", "$greater_than"):
                return max(1, int(v) + 1)
    return 1


def _claim_key(c):
    return (c[0], c[1])


def _found_key(f):
    return f[0][1]


cdef class Bundle:
    """Compiled ``bundle_rules``: every numbered row is one required component, all must hold.

    A row names products, SKUs or collections (``$is``/``$in`` operands) and its nested
    ``*.quantity`` condition gives the units per bundle (default 1); ``limit`` caps how
    many bundles count (default 1, at most 100). Units are claimed by SKU rows first,
    then product rows, then collection rows, each cart unit by one row only.
    """

    def __init__(self, dict bundle_rules):
        cdef list comps = []
        logic = bundle_rules.get("logic")
        if logic and " or " in f" {str(logic).lower()} ":
            raise EngineInputError("bundle_rules logic supports 'and' only")
        keys = sorted((k for k in bundle_rules if k not in ("logic", "limit")),
                      key=lambda k: int(k) if str(k).isdigit() else -1)
        for k in keys:
            if not str(k).isdigit():
                raise EngineInputError(f"bundle rule keys must be numbers, got {k!r}")
            rule = bundle_rules[k]
            if not isinstance(rule, dict):
                raise EngineInputError("bundle rules must be objects")
            name = rule.get("name") or ""
            default_obj = "sku" if name.startswith("sku.") else "product"
            qty = _required_units(rule)
            ops = []
            for op, vals in (rule.get("conditions") or {}).items():
                if op in ("$is", "$in"):
                    ops.extend(v for v in (vals if isinstance(vals, list) else [vals]) if isinstance(v, dict))
            if not ops:
                raise EngineInputError(f"bundle rule {k} names no product, SKU or collection")
            for operand in ops:
                e = operand if operand.get("object") else dict(operand, object=default_obj)
                obj = e.get("object")
                prio = 0 if obj == "sku" else (2 if obj == "products_collection" else 1)
                comps.append((prio, len(comps), Entry(e), obj, e.get("id") or e.get("source_id"), qty))
        comps.sort(key=_claim_key)
        self.components = comps
        lim = bundle_rules.get("limit")
        self.limit = 1 if lim is None else min(100, max(1, int(lim)))

    cpdef tuple match(self, Order o, dict collections):
        """``(quantity, result.bundle)`` for the running order."""
        cdef Line ln
        cdef Entry e
        cdef long long qty, want, take, got, n = -1, keep
        cdef dict left = {}
        cdef list found = []
        if collections is None:
            collections = {}
        for comp in self.components:
            e = comp[2]
            qty = comp[5]
            want = qty * self.limit
            got = 0
            uses = []
            for ln in o.lines:
                if got >= want:
                    break
                if not e.matches(ln, collections):
                    continue
                avail = left.get(ln.index, ln.quantity)
                take = min(avail, want - got)
                if take <= 0:
                    continue
                left[ln.index] = avail - take
                got += take
                uses.append((ln, take))
            found.append((comp, got, uses))
            k = got // qty
            n = k if n < 0 or k < n else n
        n = max(0, min(n, self.limit))
        identified = []
        missing = []
        found.sort(key=_found_key)
        for comp, got, uses in found:
            keep = comp[5] * (n if n > 0 else 1)
            for ln, take in uses:
                if keep <= 0:
                    break
                take = min(take, keep)
                keep -= take
                if comp[3] == "sku" or (comp[3] == "products_collection" and ln.product_id is None):
                    iid, iobj = ln.sku_id, "sku"
                else:
                    iid, iobj = ln.product_id, "product"
                identified.append({"id": iid, "object": iobj, "item_index": ln.index, "item_quantity": take})
            if n == 0 and got < comp[5]:
                missing.append({"id": comp[4], "object": comp[3], "item_quantity": comp[5] - got})
        out = {"quantity": n, "limit": self.limit, "identified": identified}
        if missing:
            out["missing"] = missing
        return n, out


# --- compiled redeemables ------------------------------------------------------------------------

_STATE_KEYS = ("active", "start_date", "expiration_date", "validity_timeframe", "validity_day_of_week",
               "validity_hours", "quantity", "gift", "loyalty_card", "is_referral_code")


cdef class CompiledRedeemable:
    """A redeemable definition compiled once: discount plan, rule sets, targeting, bundle.

    Build it with :func:`compile_redeemable` and cache it per definition version. Live
    state (quantities, balances, counters) stays in the per-request dict.
    """

    def __repr__(self):
        return f"CompiledRedeemable({self.source.get('id')!r})"


def compile_redeemable(dict redeemable):
    """Compile the definition parts of a redeemable dict (see ``stacking.pyi``).

    ``rules`` may hold :class:`RuleSet` objects or raw rule-set dicts.
    """
    cdef CompiledRedeemable cr = CompiledRedeemable.__new__(CompiledRedeemable)
    cdef RuleSet rs
    cr.source = redeemable
    cr.state_free = not any(k in redeemable for k in _STATE_KEYS)
    cr.fallback_keys = tuple(k for k in redeemable if k not in ("discount", "rules", "compiled"))
    rules = []
    for x in redeemable.get("rules") or ():
        rules.append(x if isinstance(x, RuleSet) else compile_rules(x))
    cr.rules = rules
    cr.app_in = []
    cr.app_ex = []
    cr.needs_after = False
    cr.bundle = None
    for rs in rules:
        cr.needs_after = cr.needs_after or rs.needs_total_after
        cr.app_in.extend(rs.applicable_to["included"])
        cr.app_ex.extend(rs.applicable_to["excluded"])
        if cr.bundle is None and rs.bundle_rules:
            cr.bundle = Bundle(rs.bundle_rules)
    cr.targeting = compile_targeting(cr.app_in, cr.app_ex)
    discount = redeemable.get("discount")
    cr.plan = None
    if redeemable.get("gift") is None and redeemable.get("loyalty_card") is None and discount is not None:
        cr.plan = compile_discount(discount)
    return cr


def expand_promotion_stack(tier_ids, tiers, stack_id=None):
    """The redeemables of a promotion stack, in the stack's order.

    ``tier_ids``: the stack's ``tiers.ids``; ``tiers``: ``{tier id: redeemable}`` (dicts
    or :class:`CompiledRedeemable`). A missing tier becomes an INAPPLICABLE
    ``not_found`` redeemable; each dict gets ``object: "promotion_tier"`` and, when
    ``stack_id`` is given, ``stack_id``.
    """
    out = []
    for tid in tier_ids:
        t = tiers.get(tid)
        if t is None:
            r = {"id": tid, "object": "promotion_tier",
                 "error": {"code": 404, "key": "not_found", "message": "Resource not found",
                           "details": f"Cannot find promotion_tier with id {tid}",
                           "resource_id": tid, "resource_type": "promotion_tier"}}
        elif isinstance(t, CompiledRedeemable):
            r = {"compiled": t, "id": tid, "object": "promotion_tier"}
        else:
            r = dict(t)
            r["id"] = tid
            r["object"] = "promotion_tier"
        if stack_id is not None:
            r["stack_id"] = stack_id
        out.append(r)
    return out


cdef tuple _resolve(object item):
    # (state dict, compiled) for a redeemable given as dict, dict with "compiled", or compiled object.
    cdef CompiledRedeemable cr
    if isinstance(item, CompiledRedeemable):
        cr = <CompiledRedeemable>item
        return cr.source, cr
    if not isinstance(item, dict):
        raise EngineInputError("redeemables[] must be objects")
    c = (<dict>item).get("compiled")
    if c is None:
        return item, compile_redeemable(item)
    if not isinstance(c, CompiledRedeemable):
        raise EngineInputError("compiled must come from compile_redeemable")
    cr = <CompiledRedeemable>c
    # Discount and rules are read from the compiled form; other definition fields only matter
    # when the live state lacks them, and copying the state costs more than checking.
    for k in cr.fallback_keys:
        if k not in <dict>item:
            r = dict(cr.source)
            r.update(<dict>item)
            return r, cr
    return item, cr


cdef int _open_entry(JBuf *b, Entry e) except -1:
    # The entry as defined, without its closing brace, then the start of its line indices.
    cdef bytes full = e.out_json
    cdef Py_ssize_t n = PyBytes_GET_SIZE(full)
    cdef char *p = jb_reserve(b, n + 32)
    memcpy(p, PyBytes_AS_STRING(full), n - 1)
    jb_end(b, JB_LIT(p + n - 1, b',"order_item_indices":['))
    return 0


cdef inline int _put_index(JBuf *b, Py_ssize_t i, bint first) except -1:
    cdef char *p = jb_reserve(b, JB_INT_MAX + 1)
    if not first:
        p[0] = 44  # ,
        p += 1
    jb_end(b, jb_w_int(p, i))
    return 0


cdef int _close_entry(JBuf *b, list units) except -1:
    jb_char(b, 93)  # ]
    if units is not None:
        jb_end(b, JB_LIT(jb_reserve(b, 24), b',"order_item_units":'))
        jb_value(b, units)
    return jb_char(b, 125)  # }


cdef int _write_covered(JBuf *b, Entry e, list lines, list units) except -1:
    # The entry plus the indices of the cart lines it covered; none covered: as defined.
    cdef Line ln
    cdef bint first = True
    if not lines:
        return jb_put(b, PyBytes_AS_STRING(e.out_json), PyBytes_GET_SIZE(e.out_json))
    _open_entry(b, e)
    for ln in lines:
        _put_index(b, ln.index, first)
        first = False
    return _close_entry(b, units)


cdef dict _rendered_list(JBuf *b, Py_ssize_t total):
    # A Voucherify list object whose data is already JSON.
    if total == 0:
        return _EMPTY_LIST
    jb_char(b, 93)  # ]
    return {"object": "list", "data_ref": "data", "data": Fragment(jb_bytes(b)), "total": total}


# Shared by every answer (output is read-only): building a dict costs more than the math here.
cdef dict _EMPTY_LIST = {"object": "list", "data_ref": "data", "data": Fragment(b"[]"), "total": 0}


cdef tuple _coverage(CompiledRedeemable cr, Order o, list targets, Picks picks, bint by_picks, dict collections):
    # applicable_to / inapplicable_to lists with order_item_indices (and units for UNIT targets),
    # written as JSON. Picks of one entry come in line order, one per line.
    cdef Entry e
    cdef Pick *pk
    cdef Line ln
    cdef long long total_units = 0
    cdef Targeting t = cr.targeting
    cdef Py_ssize_t count = 0, k
    cdef list units
    cdef char stack[2048]
    cdef JBuf b
    if not t.included and not t.excluded:
        return _EMPTY_LIST, _EMPTY_LIST
    jb_init(&b, stack, 2048)
    try:
        jb_char(&b, 91)  # [
        if t.included:
            for tgt in targets:
                e = (<tuple>tgt)[0]
                if count:
                    jb_char(&b, 44)
                count += 1
                units = None
                if by_picks:
                    covered = []
                    if e.unit_target:
                        units = []
                        if total_units == 0:
                            for ln in o.lines:
                                total_units += ln.quantity
                    for k in range(picks.n):
                        pk = &picks.items[k]
                        if pk.entry != <PyObject *>e:
                            continue
                        ln = <Line>pk.ln
                        if not covered or (<Line>covered[len(covered) - 1]) is not ln:
                            covered.append(ln)
                        if units is not None:
                            if total_units > UNITS_LISTED_MAX:
                                units.append({"index": ln.index, "units_limit_exceeded": True})
                            else:
                                units.append({"index": ln.index,
                                              "units": unit_positions(ln, e, pk.units, pk.start)})
                    _write_covered(&b, e, covered, units)
                else:
                    _write_covered(&b, e, (<tuple>tgt)[1], None)
        inc = _rendered_list(&b, count)
        b.n = 0
        count = 0
        jb_char(&b, 91)
        for e in t.excluded:
            if count:
                jb_char(&b, 44)
            count += 1
            _write_covered(&b, e, [ln for ln in o.lines if e.matches(ln, collections)], None)
        exc = _rendered_list(&b, count)
    finally:
        jb_free(&b)
    return inc, exc


def evaluate_stack(list redeemables, object order, customer, now, stacking_rules=None, context=None):
    """Validate and apply ``redeemables`` against ``order``; see ``stacking.pyi``.

    ``redeemables[]`` may be plain dicts (compiled on the fly), dicts with ``compiled``
    (a cached :class:`CompiledRedeemable` plus live state), or compiled objects.
    Calculated orders come pre-serialised (see ``stacking.pyi``).
    """
    cdef _Config cfg = _config(stacking_rules)
    cdef dict sr = cfg.sr
    cdef dict ctx = <dict>_PyDict_NewPresized(16)
    cdef dict cust = customer or {}
    cdef Order o = order if isinstance(order, Order) else build_order(order or {})
    cdef Order start = None
    cdef Order trial
    cdef Py_ssize_t n = len(redeemables), i
    cdef CompiledRedeemable cr
    cdef RuleSet rs
    cdef dict r
    cdef long long mult
    cdef list applicable = [], inapplicable = [], skipped = []
    if now is None or not isinstance(now, datetime):
        raise EngineInputError("now must be a datetime")
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if n > cfg.redeemables_limit:
        raise EngineInputError("too many redeemables")
    if context:
        ctx.update(context)
    ctx["customer"] = cust
    ctx["now"] = now
    if "order_metadata" not in ctx:
        ctx["order_metadata"] = o.raw.get("metadata") or {}
    collections = ctx.get("collections") or {}
    prices = ctx.get("prices") or {}
    resolved = [_resolve(x) for x in redeemables]
    meta = [_classify(<dict>(<tuple>x)[0], cfg) for x in resolved]
    order_idx = _sorted_order(meta, cfg)
    all_mode = cfg.all_mode
    if all_mode:
        start = o.copy()
    once = cfg.once
    skip_no_effect = cfg.skip_no_effect
    skip_cats = cfg.skip_cats
    anyway_cats = cfg.anyway_cats
    initial_cats = cfg.initial_cats
    discounted_cats = cfg.discounted_cats
    global_initial = cfg.global_initial
    results = [None] * n
    applied = 0
    exclusive_applied = 0
    common_applied = 0
    per_cat = {}
    per_excl_cat = {}
    failed = False
    for i in order_idx:
        r = <dict>(<tuple>resolved[i])[0]
        cr = <CompiledRedeemable>(<tuple>resolved[i])[1]
        cat_ids, _, kind = meta[i]
        # Sized for every key it may get: growing a dict costs more than filling it.
        base = <dict>_PyDict_NewPresized(10)
        base["status"] = "INAPPLICABLE"
        base["id"] = r.get("id")
        base["object"] = r.get("object") or "voucher"
        cats = r.get("categories")
        if cats:
            base["categories"] = cats
        rmeta = r.get("metadata")
        if rmeta is not None:
            base["metadata"] = rmeta
        if failed and all_mode:
            base["status"] = "SKIPPED"
            base["result"] = {"details": {"key": "preceding_validation_failed",
                                          "message": MESSAGES["preceding_validation_failed"]}}
            results[i] = base
            continue
        err = r.get("error")
        if err is not None:
            base["result"] = {"error": err, "details": {"key": err.get("key"), "message": err.get("message")}}
            results[i] = base
            failed = True
            continue
        key = None if (cr.state_free and r is cr.source) else _state_error(r, now, cust)
        if key is not None:
            base["result"] = _error(key, None, f"{base['object']} {base['id']}: {MESSAGES[key]}")
            results[i] = base
            failed = True
            continue
        rctx = ctx
        rsets = cr.rules
        if rsets:
            rctx["holder_id"] = r.get("holder_id")
            rctx["counters"] = r.get("counters") or {}
            rctx["gift_credits"] = r.get("credits")
            rctx["points_used"] = (r.get("reward") or {}).get("points")
        needs_after = cr.needs_after
        initial_mode = global_initial
        if cat_ids:
            if any(c in initial_cats for c in cat_ids):
                initial_mode = True
            elif any(c in discounted_cats for c in cat_ids):
                initial_mode = False
        mult = 1
        bundle = None
        if cr.bundle is not None:
            mult, bundle = cr.bundle.match(o, collections)
            if mult == 0:
                det = f"{base['object']} {base['id']} cannot be redeemed because of violated validation rules"
                res = _error("order_rules_violated", None, det + ": bundle conditions not met")
                res["bundle"] = bundle
                base["result"] = res
                results[i] = base
                failed = True
                continue
        # Limits and exclusivity only matter for valid redeemables, but they are cheap,
        # so test them before computing the effect (a skipped redeemable changes nothing).
        trial = o.copy() if needs_after else o
        if rsets:
            rctx.pop("total_after", None)
        applied_state = None
        if needs_after:
            trial.begin_step()
            applied_state = _apply(trial, r, cr, collections, prices, cust, rctx, now, initial_mode, once, mult)
            rctx["total_after"] = trial.total_amount()
        verdict = None
        for rs in rsets:
            ok, rkey, rmsg = rs.check(rctx, o)
            if not ok:
                det = f"{base['object']} {base['id']} cannot be redeemed because of violated validation rules"
                if rs.id:
                    det += f": {rs.id}"
                verdict = _error(rkey, rmsg, det)
                break
        if verdict is not None:
            base["result"] = verdict
            results[i] = base
            failed = True
            continue
        skip = _limit_key(cfg, kind, cat_ids, applied, exclusive_applied, common_applied, per_cat, per_excl_cat)
        if skip is not None:
            base["status"] = "SKIPPED"
            base["result"] = {"details": {"key": skip, "message": MESSAGES[skip]}}
            results[i] = base
            continue
        snapshot_needed = skip_no_effect or bool(skip_cats)
        backup = o.copy() if (snapshot_needed and not needs_after) else None
        prev = o
        if needs_after:
            o = trial
        else:
            o.begin_step()
            applied_state = _apply(o, r, cr, collections, prices, cust, rctx, now, initial_mode, once, mult)
        result = (<tuple>applied_state)[0]
        no_effect = "discount" in result and o.step_discount_amount == 0 and _items_step(o) == 0
        if no_effect and _skips_no_effect(skip_no_effect, cat_ids, skip_cats, anyway_cats):
            o = backup if backup is not None else prev
            base["status"] = "SKIPPED"
            base["result"] = {"details": {"key": "no_effect", "message": MESSAGES["no_effect"]}}
            results[i] = base
            continue
        applied += 1
        if kind == 1:
            exclusive_applied += 1
        elif kind == 0:
            common_applied += 1
        for c in cat_ids:
            per_cat[c] = per_cat.get(c, 0) + 1
            if kind == 1:
                per_excl_cat[c] = per_excl_cat.get(c, 0) + 1
        if bundle is not None:
            result["bundle"] = bundle
        base["status"] = "APPLICABLE"
        base["order"] = o.snapshot(True)
        base["applicable_to"], base["inapplicable_to"] = _coverage(
            cr, o, (<tuple>applied_state)[1], (<tuple>applied_state)[2], (<tuple>applied_state)[3], collections)
        base["result"] = result
        results[i] = base
    if all_mode and failed:
        top = start
    else:
        top = o
    for x in results:
        status = (<dict>x)["status"]
        if status == "APPLICABLE":
            applicable.append(x)
        elif status == "INAPPLICABLE":
            inapplicable.append(x)
        else:
            skipped.append(x)
    out = {
        "valid": len(applicable) == n and n > 0,
        "redeemables": results,
        "order": top.view(False),
        "stacking_rules": sr,
    }
    if inapplicable:
        out["inapplicable_redeemables"] = inapplicable
    if skipped:
        out["skipped_redeemables"] = skipped
    return out


cdef set _EMPTY = set()


cdef inline set _set(object v):
    return set(v) if v else _EMPTY


cdef list _sorted_order(list meta, _Config cfg):
    # Request order, or category hierarchy (ties: request order); joint ones last when asked.
    cdef Py_ssize_t n = len(meta), k
    cdef list idx
    cdef bint any_joint = False
    for k in range(n):
        if (<tuple>meta[k])[2] == 2:
            any_joint = True
            break
    if not cfg.by_hierarchy and not (any_joint and cfg.joint_last):
        return list(range(n))
    if cfg.by_hierarchy:
        idx = [k for _, k in sorted([((<tuple>meta[k])[1], k) for k in range(n)])]
    else:
        idx = list(range(n))
    if cfg.joint_last:
        joint = [k for k in idx if (<tuple>meta[k])[2] == 2]
        if joint:
            idx = [k for k in idx if (<tuple>meta[k])[2] != 2] + joint
    return idx


cdef long long _items_step(Order o):
    cdef long long s = 0
    cdef Line ln
    for ln in o.lines:
        s += ln.step_discount_amount
    return s


cdef bint _skips_no_effect(bint rule_skip, list cat_ids, set skip_cats, set anyway_cats):
    for c in cat_ids:
        if c in anyway_cats:
            return False
        if c in skip_cats:
            return True
    return rule_skip


cdef object _limit_key(_Config cfg, int kind, list cat_ids, long applied, long excl, long common,
                       dict per_cat, dict per_excl_cat):
    if applied >= cfg.applicable_limit:
        return "applicable_redeemables_limit_exceeded"
    if kind == 1:
        if common:
            return "exclusion_rules_not_met"
        if excl >= cfg.exclusive_limit:
            return "applicable_exclusive_redeemables_limit_exceeded"
        for c in cat_ids:
            if per_excl_cat.get(c, 0) >= cfg.exclusive_per_category_limit:
                return "applicable_exclusive_redeemables_per_category_limit_exceeded"
    elif kind == 0 and excl:
        return "exclusion_rules_not_met"
    for c in cat_ids:
        limit = cfg.cat_limits.get(c) or cfg.per_category_limit
        if per_cat.get(c, 0) >= limit:
            return "applicable_redeemables_per_category_limit_exceeded"
    return None


cdef tuple _apply(Order o, dict r, CompiledRedeemable cr, dict collections, dict prices, dict cust, dict rctx,
                  object now, bint initial_mode, bint once, long long mult):
    # (result, targets, picks, coverage-by-picks)
    cdef Line ln
    cdef list targets = cr.targeting.match(o, collections)
    cdef Picks picks = Picks()
    cdef dict result = {}
    cdef Plan plan
    if once:
        # ONCE: a line already discounted in this request is taken.
        targets = [(e, [ln for ln in lines if ln.req_discount_amount == 0]) for e, lines in targets]
    # A redeemable compiled with a discount stays a discount: no gift or card to look for.
    plan = cr.plan
    gift = card = None
    if plan is None:
        gift = r.get("gift")
        card = r.get("loyalty_card")
    by_picks = False
    if gift is not None:
        to_items = gift.get("effect") == "APPLY_TO_ITEMS"
        used = apply_gift(o, r.get("credits"), gift.get("balance") or 0, targets, to_items)
        result["gift"] = {"credits": used, "balance": gift.get("balance") or 0}
    elif card is not None:
        reward = r.get("reward") or {}
        used, _ = apply_points(o, reward.get("points") or 0, reward.get("coin"))
        result["loyalty_card"] = {"points": used}
    else:
        if plan is None:
            discount = r.get("discount")
            if discount is None:
                raise EngineInputError(f"redeemable {r.get('id')!r} has no discount, gift or loyalty_card")
            plan = compile_discount(discount)
        env = _env(r, cust, rctx, now) if (plan.dynamic or plan.item_formula or cr.targeting.needs_env) else None
        res = plan.apply(o, targets, cr.targeting.explicit, env, initial_mode, prices, mult,
                         r.get("product_quantity_counters"), picks)
        result["discount"] = res
        by_picks = res.get("effect") in ITEM_EFFECTS
    return result, targets, picks, by_picks


def evaluate_single(object redeemable, Order o, dict customer, object now, dict context, bint check_state=True):
    """Evaluate one redeemable alone on ``o`` (mutated): ``(ok, result)``.

    Used by qualification: no stacking limits, budgets/counters as given in
    ``context`` (qualifications pass none). ``result`` is the APPLICABLE ``result``
    or the INAPPLICABLE ``{error, details}``. With ``context["bundle_missing_ok"]`` an
    unmet bundle still qualifies and reports ``result.bundle.missing``.
    """
    cdef dict ctx = dict(context)
    cdef CompiledRedeemable cr
    cdef RuleSet rs
    cdef long long mult = 1
    cdef dict r
    st = _resolve(redeemable)
    r = st[0]
    cr = st[1]
    ctx["customer"] = customer
    ctx["now"] = now
    ctx["holder_id"] = r.get("holder_id")
    ctx["counters"] = r.get("counters") or {}
    if check_state:
        key = _state_error(r, now, customer)
        if key is not None:
            return False, _error(key, None, MESSAGES[key])
    for rs in cr.rules:
        ok, rkey, rmsg = rs.check(ctx, o)
        if not ok:
            return False, _error(rkey, rmsg, "validation rules violated")
    collections = ctx.get("collections") or {}
    bundle = None
    if cr.bundle is not None:
        mult, bundle = cr.bundle.match(o, collections)
        if mult == 0:
            if not ctx.get("bundle_missing_ok"):
                res = _error("order_rules_violated", None, "bundle conditions not met")
                res["bundle"] = bundle
                return False, res
            mult = 1
    o.begin_step()
    applied = _apply(o, r, cr, collections, ctx.get("prices") or {}, customer, ctx, now, False, False, mult)
    result = applied[0]
    if bundle is not None:
        result["bundle"] = bundle
    app, inapp = _coverage(cr, o, applied[1], applied[2], applied[3], collections)
    return True, {"result": result, "applicable_to": app, "inapplicable_to": inapp}
