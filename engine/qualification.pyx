"""Qualification: which of many candidate redeemables apply to one cart.

Candidates are indexed once by the product/SKU ids their rules require (see
``RuleSet.required_ids``); a cart only evaluates candidates whose required ids it
contains plus those with no product requirement, so 1,000 promotions cost about
as much as the few that can match.
"""

from datetime import datetime, timezone

from engine.discounts cimport Line, Order, build_order
from engine.rules cimport RuleSet

from engine.stacking cimport CompiledRedeemable

from engine.money import EngineInputError
from engine.stacking import compile_redeemable, evaluate_single

SORTING_RULES = ("DEFAULT", "BEST_DEAL", "LEAST_DEAL")


cdef long long _applied(Order o):
    """What to_dict reports as total_applied_discount_amount for this step, without rendering."""
    cdef Line ln
    cdef long long total = o.step_discount_amount
    for ln in o.lines:
        total += ln.step_discount_amount
    return total


cdef class Qualifier:
    """Compiled, indexed candidates; build once per definitions version, reuse per request."""
    cdef list candidates
    cdef list prepared
    cdef dict by_id
    cdef list always

    def __init__(self, list candidates):
        cdef CompiledRedeemable cr
        self.candidates = []
        self.prepared = []
        self.by_id = {}
        self.always = []
        for c in candidates:
            if isinstance(c, CompiledRedeemable):
                cr = c
                self.candidates.append(cr.source)
                self.prepared.append(cr)
                continue
            comp = c.get("compiled") if isinstance(c, dict) else None
            cr = comp if comp is not None else compile_redeemable(c)
            self.candidates.append(dict(cr.source, **c) if comp is not None else c)
            self.prepared.append(c if comp is not None else cr)
        for i, c in enumerate(self.prepared):
            cr = c if isinstance(c, CompiledRedeemable) else c["compiled"]
            need = None
            for rs in cr.rules:
                req = (<RuleSet>rs).required_ids
                if req is not None and (need is None or len(req) < len(need)):
                    need = req
            if need is None:
                self.always.append(i)
            else:
                for pid in need:
                    self.by_id.setdefault(pid, []).append(i)

    def __len__(self):
        return len(self.candidates)

    def qualify(self, order, customer, now, sorting_rule="DEFAULT", context=None, limit=None):
        """Return ``{"redeemables": list-object, "order": calculated order}`` for the cart.

        Each data item: ``{id, object, created_at?, result, order, applicable_to,
        inapplicable_to, metadata?, categories?}``; ``order`` is the cart with this
        redeemable alone, pre-serialised (an ``orjson.Fragment``; the top-level ``order``
        is a dict whose ``items`` is one). ``deals`` lists each item's
        ``order.total_applied_discount_amount``. Sorting: DEFAULT (created_at desc),
        BEST_DEAL / LEAST_DEAL (by that amount).
        """
        cdef Order base = order if isinstance(order, Order) else build_order(order or {})
        cdef Order o
        cdef Line ln
        if sorting_rule not in SORTING_RULES:
            raise EngineInputError(f"unknown sorting_rule {sorting_rule!r}")
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        cust = customer or {}
        ctx = dict(context or {})
        ctx.setdefault("order_metadata", base.raw.get("metadata") or {})
        picked = set(self.always)
        for ln in base.lines:
            for key in (ln.product_id, ln.sku_id, ln.product_source_id, ln.sku_source_id):
                if key is not None:
                    hits = self.by_id.get(key)
                    if hits:
                        picked.update(hits)
        found = []
        if picked:
            # Every candidate's copy inherits the lines' cached JSON openings.
            base.begin_step()
            base.to_json(True, True)
        for i in sorted(picked):
            o = base.copy()
            ok, res = evaluate_single(self.prepared[i], o, cust, now, ctx)
            if ok:
                found.append((self.candidates[i].get("created_at") or "", _applied(o), i, o, res))
        # Sort on what the evaluation left in the Order, then render only what the page keeps:
        # turning a result into dicts costs more than evaluating it.
        if sorting_rule == "DEFAULT":
            found.sort(key=lambda f: f[0], reverse=True)
        else:
            sign = -1 if sorting_rule == "BEST_DEAL" else 1
            found.sort(key=lambda f: sign * f[1])
        total = len(found)
        has_more = limit is not None and total > limit
        kept = found if limit is None else found[:limit]
        data = []
        deals = []
        for _created, deal, i, o, res in kept:
            c = self.candidates[i]
            item = {"id": c.get("id"), "object": c.get("object") or "voucher"}
            if c.get("created_at") is not None:
                item["created_at"] = c["created_at"]
            item.update(res)
            item["order"] = o.snapshot(True)
            for k in ("metadata", "categories", "name", "banner", "campaign_id", "campaign_name"):
                if c.get(k) is not None:
                    item[k] = c[k]
            data.append(item)
            deals.append(deal)
        return {
            "redeemables": {"object": "list", "data_ref": "data", "data": data, "total": total,
                            "has_more": has_more},
            "order": base.view(False),
            "deals": deals,
            "evaluated": len(picked),
        }
