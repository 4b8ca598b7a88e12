"""Stackable validation (SEMANTICS §5.2–5.3): order, check, limit and apply redeemables.

Pure: every input is plain data already loaded by the caller (definitions,
live counters, ``now``). See ``stacking.pyi`` for the input/output contract.
"""

from datetime import datetime, timezone

from engine.discounts cimport (
    Line, Order, apply_discount, apply_gift, apply_points, build_order, match_lines,
)
from engine.rules cimport RuleSet

from engine.money import EngineInputError
from engine.rules import parse_duration

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


cdef tuple _classify(dict r, dict sr):
    # (category ids, hierarchy, kind) with kind 0 common, 1 exclusive, 2 joint.
    cats = r.get("categories") or []
    ids = []
    hier = None
    kind = 0
    excl = sr["exclusive_categories"]
    joint = sr["joint_categories"]
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


cdef dict _list(list data):
    return {"object": "list", "data_ref": "data", "data": data, "total": len(data)}


cdef list _entries(list entries):
    out = []
    for e in entries:
        if e.get("effect") is None:
            e = dict(e, effect="APPLY_TO_EVERY")
        out.append(e)
    return out


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


def evaluate_stack(list redeemables, object order, customer, now, stacking_rules=None, context=None,
                   bint snapshot_items=True):
    """Validate and apply ``redeemables`` against ``order``; see ``stacking.pyi``.

    ``snapshot_items=False`` leaves ``items`` out of the per-redeemable order snapshots
    (the top-level order always has them); rendering dicts dominates the cost.
    """
    cdef dict sr = normalize_stacking_rules(stacking_rules)
    cdef dict ctx = dict(context or {})
    cdef dict cust = customer or {}
    cdef Order o = order if isinstance(order, Order) else build_order(order or {})
    cdef Order start = None
    cdef Order trial
    cdef Py_ssize_t n = len(redeemables), i
    if now is None or not isinstance(now, datetime):
        raise EngineInputError("now must be a datetime")
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if n > sr["redeemables_limit"]:
        raise EngineInputError("too many redeemables")
    ctx["customer"] = cust
    ctx["now"] = now
    ctx.setdefault("order_metadata", o.raw.get("metadata") or {})
    collections = ctx.get("collections") or {}
    prices = ctx.get("prices") or {}
    meta = [_classify(r, sr) for r in redeemables]
    order_idx = list(range(n))
    if sr["redeemables_sorting_rule"] == "CATEGORY_HIERARCHY":
        order_idx.sort(key=lambda k: (meta[k][1], k))
    if sr.get("grouped_redeemables_sorting_rule", "JOINT_ALWAYS_LAST") == "JOINT_ALWAYS_LAST":
        order_idx.sort(key=lambda k: meta[k][2] == 2)
    all_mode = sr["redeemables_application_mode"] == "ALL"
    if all_mode:
        start = o.copy()
    once = sr["redeemables_products_application_mode"] == "ONCE"
    skip_no_effect = sr["redeemables_no_effect_rule"] == "SKIP"
    skip_cats = set(sr.get("no_effect_skip_categories") or ())
    anyway_cats = set(sr.get("no_effect_redeem_anyway_categories") or ())
    initial_cats = set(sr.get("initial_amount_mode_categories") or ())
    discounted_cats = set(sr.get("discounted_amount_mode_categories") or ())
    global_initial = sr["discount_calculation_mode"] == "INITIAL_AMOUNT"
    cat_limits = sr.get("applicable_redeemables_category_limits") or {}
    results = [None] * n
    applied = 0
    exclusive_applied = 0
    common_applied = 0
    per_cat = {}
    per_excl_cat = {}
    failed = False
    for i in order_idx:
        r = redeemables[i]
        cat_ids, _, kind = meta[i]
        base = {"status": "INAPPLICABLE", "id": r.get("id"), "object": r.get("object") or "voucher"}
        if r.get("categories"):
            base["categories"] = r["categories"]
        if r.get("metadata") is not None:
            base["metadata"] = r["metadata"]
        if failed and all_mode:
            base["status"] = "SKIPPED"
            base["result"] = {"details": {"key": "preceding_validation_failed",
                                          "message": MESSAGES["preceding_validation_failed"]}}
            results[i] = base
            continue
        if r.get("error") is not None:
            base["result"] = {"error": r["error"], "details": {"key": r["error"].get("key"),
                                                               "message": r["error"].get("message")}}
            results[i] = base
            failed = True
            continue
        key = _state_error(r, now, cust)
        if key is not None:
            base["result"] = _error(key, None, f"{base['object']} {base['id']}: {MESSAGES[key]}")
            results[i] = base
            failed = True
            continue
        rctx = ctx
        rctx["holder_id"] = r.get("holder_id")
        rctx["counters"] = r.get("counters") or {}
        rctx["gift_credits"] = r.get("credits")
        rctx["points_used"] = (r.get("reward") or {}).get("points")
        rsets = r.get("rules") or ()
        needs_after = False
        app_in = []
        app_ex = []
        for rs in rsets:
            needs_after = needs_after or (<RuleSet>rs).needs_total_after
            app_in.extend((<RuleSet>rs).applicable_to["included"])
            app_ex.extend((<RuleSet>rs).applicable_to["excluded"])
        applicable_to = {"included": app_in, "excluded": app_ex}
        initial_mode = global_initial
        if cat_ids:
            if any(c in initial_cats for c in cat_ids):
                initial_mode = True
            elif any(c in discounted_cats for c in cat_ids):
                initial_mode = False
        # Limits and exclusivity only matter for valid redeemables, but they are cheap,
        # so test them before computing the effect (a skipped redeemable changes nothing).
        trial = o.copy() if needs_after else o
        rctx.pop("total_after", None)
        if needs_after:
            trial.begin_step()
            _apply(trial, r, applicable_to, collections, prices, cust, rctx, now, initial_mode, once)
            rctx["total_after"] = trial.total_amount()
        verdict = None
        for rs in rsets:
            ok, rkey, rmsg = (<RuleSet>rs).check(rctx, o)
            if not ok:
                det = f"{base['object']} {base['id']} cannot be redeemed because of violated validation rules"
                if (<RuleSet>rs).id:
                    det += f": {(<RuleSet>rs).id}"
                verdict = _error(rkey, rmsg, det)
                break
        if verdict is not None:
            base["result"] = verdict
            results[i] = base
            failed = True
            continue
        skip = _limit_key(sr, kind, cat_ids, applied, exclusive_applied, common_applied, per_cat, per_excl_cat,
                          cat_limits)
        if skip is not None:
            base["status"] = "SKIPPED"
            base["result"] = {"details": {"key": skip, "message": MESSAGES[skip]}}
            results[i] = base
            continue
        before_total = o.total_amount()
        snapshot_needed = skip_no_effect or bool(skip_cats)
        backup = o.copy() if (snapshot_needed and not needs_after) else None
        prev = o
        if needs_after:
            o = trial
            result = rctx.pop("_result")
        else:
            o.begin_step()
            result = _apply(o, r, applicable_to, collections, prices, cust, rctx, now, initial_mode, once)
            rctx.pop("_result", None)
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
        base["status"] = "APPLICABLE"
        base["order"] = o.to_dict(True, snapshot_items)
        base["applicable_to"] = _list(_entries(app_in))
        base["inapplicable_to"] = _list(_entries(app_ex))
        base["result"] = result
        results[i] = base
    if all_mode and failed:
        top = start
    else:
        top = o
    applicable = [x for x in results if x["status"] == "APPLICABLE"]
    out = {
        "valid": len(applicable) == n and n > 0,
        "redeemables": results,
        "order": top.to_dict(False, True),
        "stacking_rules": sr,
    }
    inapplicable = [x for x in results if x["status"] == "INAPPLICABLE"]
    skipped = [x for x in results if x["status"] == "SKIPPED"]
    if inapplicable:
        out["inapplicable_redeemables"] = inapplicable
    if skipped:
        out["skipped_redeemables"] = skipped
    return out


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


cdef object _limit_key(dict sr, int kind, list cat_ids, long applied, long excl, long common,
                       dict per_cat, dict per_excl_cat, dict cat_limits):
    if applied >= sr["applicable_redeemables_limit"]:
        return "applicable_redeemables_limit_exceeded"
    if kind == 1:
        if common:
            return "exclusion_rules_not_met"
        if excl >= sr["applicable_exclusive_redeemables_limit"]:
            return "applicable_exclusive_redeemables_limit_exceeded"
        for c in cat_ids:
            if per_excl_cat.get(c, 0) >= sr["applicable_exclusive_redeemables_per_category_limit"]:
                return "applicable_exclusive_redeemables_per_category_limit_exceeded"
    elif kind == 0 and excl:
        return "exclusion_rules_not_met"
    for c in cat_ids:
        limit = cat_limits.get(c) or sr["applicable_redeemables_per_category_limit"]
        if per_cat.get(c, 0) >= limit:
            return "applicable_redeemables_per_category_limit_exceeded"
    return None


cdef dict _apply(Order o, dict r, dict applicable_to, dict collections, dict prices, dict cust, dict rctx,
                 object now, bint initial_mode, bint once):
    cdef Line ln
    targets = match_lines(o, applicable_to, collections)
    if once:
        # ONCE: a line already discounted in this request is taken.
        targets = [(e, [ln for ln in lines if ln.req_discount_amount == 0]) for e, lines in targets]
    result = {}
    gift = r.get("gift")
    card = r.get("loyalty_card")
    if gift is not None:
        to_items = gift.get("effect") == "APPLY_TO_ITEMS"
        used = apply_gift(o, r.get("credits"), gift.get("balance") or 0, targets, to_items)
        result["gift"] = {"credits": used, "balance": gift.get("balance") or 0}
    elif card is not None:
        reward = r.get("reward") or {}
        used, _ = apply_points(o, reward.get("points") or 0, reward.get("coin"))
        result["loyalty_card"] = {"points": used}
    else:
        discount = r.get("discount")
        if discount is None:
            raise EngineInputError(f"redeemable {r.get('id')!r} has no discount, gift or loyalty_card")
        result["discount"] = apply_discount(o, discount, targets, _env(r, cust, rctx, now), initial_mode, prices)
    rctx["_result"] = result
    return result


def evaluate_single(dict r, Order o, dict customer, object now, dict context, bint check_state=True):
    """Evaluate one redeemable alone on ``o`` (mutated): ``(ok, result)``.

    Used by qualification: no stacking limits, budgets/counters as given in
    ``context`` (qualifications pass none). ``result`` is the APPLICABLE ``result``
    or the INAPPLICABLE ``{error, details}``.
    """
    cdef dict ctx = dict(context)
    ctx["customer"] = customer
    ctx["now"] = now
    ctx["holder_id"] = r.get("holder_id")
    ctx["counters"] = r.get("counters") or {}
    if check_state:
        key = _state_error(r, now, customer)
        if key is not None:
            return False, _error(key, None, MESSAGES[key])
    app_in = []
    app_ex = []
    rsets = r.get("rules") or ()
    for rs in rsets:
        app_in.extend((<RuleSet>rs).applicable_to["included"])
        app_ex.extend((<RuleSet>rs).applicable_to["excluded"])
    for rs in rsets:
        ok, rkey, rmsg = (<RuleSet>rs).check(ctx, o)
        if not ok:
            return False, _error(rkey, rmsg, "validation rules violated")
    o.begin_step()
    result = _apply(o, r, {"included": app_in, "excluded": app_ex}, ctx.get("collections") or {},
                    ctx.get("prices") or {}, customer, ctx, now, False, False)
    return True, {"result": result, "applicable_to": _list(_entries(app_in)),
                  "inapplicable_to": _list(_entries(app_ex))}
