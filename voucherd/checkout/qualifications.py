"""Qualifications: which incentives this customer can use on this cart.

Candidates are the project's promotion tiers and coupon campaigns (compiled once per
definitions version into an indexed ``engine.Qualifier`` kept with the definitions) and
the codes in the customer's wallet (read with their live state in the same round trips
as validation uses). Filters narrow the candidates before anything is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import engine
from voucherd.checkout import wallet_cache
from voucherd.checkout.hot_definitions import ProjectDefinitions
from voucherd.checkout.live_state import VoucherLive
from voucherd.checkout.redeem_request import Redeemable, parse_order
from voucherd.checkout.redeemables import _tier, _voucher
from voucherd.checkout.service import Services, engine_order
from voucherd.platform import instruments
from voucherd.platform.errors import InvalidPayload
from voucherd.platform.timeutil import iso_us

SCENARIOS = (
    "ALL",
    "CUSTOMER_WALLET",
    "AUDIENCE_ONLY",
    "PRODUCTS",
    "PRODUCTS_DISCOUNT",
    "PROMOTION_STACKS",
    "PRODUCTS_BY_CUSTOMER",
    "PRODUCTS_DISCOUNT_BY_CUSTOMER",
)
FILTER_FIELDS = (
    "category_id",
    "campaign_id",
    "campaign_type",
    "resource_id",
    "resource_type",
    "voucher_type",
    "code",
    "holder_role",
)
# Scenarios that keep only what applies to products (after evaluation).
PRODUCTS = ("PRODUCTS", "PRODUCTS_DISCOUNT", "PRODUCTS_BY_CUSTOMER", "PRODUCTS_DISCOUNT_BY_CUSTOMER")
CONDITIONS = ("$is", "$is_not", "$in", "$not_in", "$has_value", "$is_unknown")
MAX_LIMIT = 50
DEFAULT_LIMIT = 5


@dataclass(frozen=True)
class QualificationRequest:
    customer: dict[str, Any] | None
    order: dict[str, Any]
    scenario: str
    limit: int
    starting_after: str | None
    filters: dict[str, Any]
    sorting_rule: str
    tracking_id: str | None
    metadata: dict[str, Any]


def parse(body: dict[str, Any]) -> QualificationRequest:
    scenario = body.get("scenario") or "ALL"
    if scenario not in SCENARIOS:
        raise InvalidPayload(f"Property .scenario should be one of {', '.join(SCENARIOS)}")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidPayload("Property .options should be object")
    limit = options.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidPayload(f"Property .options.limit should be an integer from 1 to {MAX_LIMIT}")
    sorting_rule = options.get("sorting_rule") or "DEFAULT"
    if sorting_rule not in engine.qualification.SORTING_RULES:
        raise InvalidPayload("Property .options.sorting_rule should be DEFAULT, BEST_DEAL or LEAST_DEAL")
    starting_after = options.get("starting_after")
    if starting_after is not None and not isinstance(starting_after, str):
        raise InvalidPayload("Property .options.starting_after should be a date-time string")
    filters = options.get("filters") or {}
    if not isinstance(filters, dict):
        raise InvalidPayload("Property .options.filters should be object")
    for name, value in filters.items():
        if name == "junction":
            if value not in ("and", "or", "AND", "OR"):
                raise InvalidPayload("Property .options.filters.junction should be and or or")
            continue
        if name not in FILTER_FIELDS:
            raise InvalidPayload(f"Property .options.filters.{name} is not a known filter")
        conditions = (value or {}).get("conditions") if isinstance(value, dict) else None
        if not isinstance(conditions, dict) or any(op not in CONDITIONS for op in conditions):
            raise InvalidPayload(f"Property .options.filters.{name}.conditions should use {', '.join(CONDITIONS)}")
    customer = body.get("customer")
    if customer is not None and not isinstance(customer, dict):
        raise InvalidPayload("Property .customer should be object")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidPayload("Property .metadata should be object")
    return QualificationRequest(
        customer=customer,
        order=parse_order(body.get("order")),
        scenario=scenario,
        limit=limit,
        starting_after=starting_after,
        filters=filters,
        sorting_rule=sorting_rule,
        tracking_id=body.get("tracking_id") if isinstance(body.get("tracking_id"), str) else None,
        metadata=metadata,
    )


def _matches(facts: dict[str, Any], filters: dict[str, Any]) -> bool:
    checks = []
    for name, spec in filters.items():
        if name == "junction":
            continue
        actual = facts.get(name)
        for op, operand in spec["conditions"].items():
            values = operand if isinstance(operand, list) else [operand]
            if op in ("$is", "$in"):
                checks.append(actual in values)
            elif op in ("$is_not", "$not_in"):
                checks.append(actual not in values)
            elif op == "$has_value":
                checks.append(actual not in (None, ""))
            else:
                checks.append(actual in (None, ""))
    if not checks:
        return True
    return any(checks) if str(filters.get("junction", "and")).lower() == "or" else all(checks)


def _facts(candidate: dict[str, Any], defs: ProjectDefinitions) -> dict[str, Any]:
    campaign = defs.campaigns.get(candidate.get("campaign_id") or "") or {}
    categories = candidate.get("categories") or []
    return {
        "resource_type": candidate["object"],
        "resource_id": candidate.get("resource_id") or candidate["id"],
        "code": candidate["id"] if candidate["object"] == "voucher" else None,
        "campaign_id": candidate.get("campaign_id"),
        "campaign_type": campaign.get("campaign_type"),
        "category_id": categories[0]["id"] if categories else None,
        "voucher_type": candidate.get("voucher_type"),
        "holder_role": candidate.get("holder_role"),
    }


def _shared_candidates(defs: ProjectDefinitions) -> list[dict[str, Any]]:
    """Promotion tiers and coupon campaigns: the same for every customer of the project."""
    candidates = []
    for tier in defs.tiers.values():
        entry = _tier(defs, Redeemable("promotion_tier", tier["id"]), tier, {}).engine
        campaign = defs.campaigns.get(tier["campaign_id"]) or {}
        entry.update(
            created_at=tier.get("created_at"),
            name=tier["name"],
            campaign_id=tier["campaign_id"],
            campaign_name=campaign.get("name"),
        )
        if tier.get("banner"):
            entry["banner"] = tier["banner"]
        candidates.append(entry)
    for campaign in defs.campaigns.values():
        discount = (campaign.get("voucher") or {}).get("discount")
        if campaign["campaign_type"] not in ("DISCOUNT_COUPONS", "REFERRAL_PROGRAM") or not discount:
            continue
        candidates.append(
            {
                "id": campaign["id"],
                "object": "campaign",
                "discount": discount,
                "active": campaign["active"],
                "start_date": campaign.get("start_date"),
                "expiration_date": campaign.get("expiration_date"),
                "validity_timeframe": campaign.get("validity_timeframe"),
                "validity_day_of_week": campaign.get("validity_day_of_week"),
                "validity_hours": campaign.get("validity_hours"),
                "metadata": campaign.get("metadata") or {},
                "categories": defs.category_list(campaign.get("category_id")),
                "rules": defs.rules.get(campaign["id"], []),
                "created_at": campaign.get("created_at"),
                "name": campaign["name"],
                "campaign_id": campaign["id"],
                "campaign_name": campaign["name"],
            }
        )
    return candidates


@dataclass(frozen=True)
class SharedCandidates:
    """Tiers and campaigns, newest first, compiled in chunks so a page can stop early."""

    candidates: list[dict[str, Any]]
    chunks: list[tuple[Any, list[dict[str, Any]]]]
    everything: Any  # one Qualifier over all, for the deal sortings that must see every result


CHUNK = 64


def _shared(defs: ProjectDefinitions) -> SharedCandidates:
    if defs.qualifier is None:
        candidates = sorted(_shared_candidates(defs), key=lambda c: (c.get("created_at") or "", c["id"]), reverse=True)
        chunks = [
            (engine.Qualifier(candidates[i : i + CHUNK]), candidates[i : i + CHUNK])
            for i in range(0, len(candidates), CHUNK)
        ]
        defs.qualifier = SharedCandidates(candidates, chunks, engine.Qualifier(candidates))
    shared: SharedCandidates = defs.qualifier
    return shared


def _wallet_candidates(defs: ProjectDefinitions, vouchers: dict[str, VoucherLive | None]) -> list[dict[str, Any]]:
    candidates = []
    for code, voucher in vouchers.items():
        if voucher is None or (voucher.state.get("campaign_id") and voucher.state["campaign_id"] not in defs.campaigns):
            continue
        resolved = _voucher(defs, Redeemable("voucher", code), voucher)
        if not resolved.found:
            continue
        entry = resolved.engine
        campaign = resolved.campaign or {}
        entry.update(
            resource_id=voucher.state.get("id"),
            campaign_id=campaign.get("id"),
            campaign_name=campaign.get("name"),
            voucher_type=voucher.state.get("type"),
            holder_role="OWNER",
            created_at=voucher.state.get("created_at") or "",
        )
        candidates.append(entry)
    return candidates


def _compiled_wallet(
    services: Services,
    project_id: str,
    customer: dict[str, Any],
    read: wallet_cache.WalletRead,
    defs: ProjectDefinitions,
) -> wallet_cache.CompiledWallet | None:
    """The customer's wallet candidates: the process's copy when Redis said it is current, else built and kept."""
    if read.compiled is not None:
        return read.compiled
    if not read.codes:
        return None
    compiled = wallet_cache.CompiledWallet(
        version=defs.version,
        customer_id=read.customer_id or "",
        wallet_sha=read.wallet_sha,
        codes=read.codes,
        fingerprint=read.fingerprint,
        candidates=_wallet_candidates(defs, read.vouchers),
    )
    if defs.version == read.version:
        services.wallets.put(wallet_cache.cache_key(project_id, customer), compiled)
    return compiled


def _created(item: dict[str, Any]) -> str:
    """Creation times are ISO 8601 UTC to the microsecond, so as strings they sort in time order."""
    return str(item.get("created_at") or "")


def _normalized(starting_after: str) -> str:
    try:
        value = datetime.fromisoformat(starting_after.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPayload("Property .options.starting_after should be an ISO 8601 date-time") from None
    return iso_us(value if value.tzinfo else value.replace(tzinfo=UTC))


def _after(data: list[dict[str, Any]], boundary: str, rule: str) -> list[dict[str, Any]]:
    """The items after the one created at ``boundary`` (creation times are microsecond-distinct)."""
    if rule == "DEFAULT":
        return [d for d in data if _created(d) < boundary]
    position = next((i for i, d in enumerate(data) if _created(d) == boundary), None)
    return data[position + 1 :] if position is not None else data


def _sort_key(item: dict[str, Any], rule: str) -> tuple[Any, ...]:
    if rule == "DEFAULT":
        return (_created(item), item["id"])
    deal = item["_deal"]
    return (deal if rule == "BEST_DEAL" else -deal, _created(item), item["id"])


def _evaluate(
    qualifier: Any,
    order: Any,
    customer: dict[str, Any],
    now: datetime,
    rule: str,
    context: dict[str, Any],
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The applicable ones, best first by ``rule``; with ``limit``, only that many are rendered."""
    if len(qualifier) == 0:
        return []
    with instruments.timed(instruments.ENGINE_SECONDS, "qualify"):
        found = qualifier.qualify(order, customer, now, rule, context, limit)
    items: list[dict[str, Any]] = found["redeemables"]["data"]
    for item, deal in zip(items, found["deals"], strict=True):
        item["_deal"] = deal  # the order arrives pre-serialised; sorting needs its discount
    return items


def _newest_first(
    shared: SharedCandidates,
    wallet: list[dict[str, Any]],
    want: int,
    boundary: str | None,
    evaluate: Any,
    render_all: bool = False,
) -> list[dict[str, Any]]:
    """Shared candidates chunk by chunk, newest first, until the first ``want`` results are certain.

    Every candidate in a later chunk is older than the current chunk's oldest, so once ``want``
    results (shared so far plus wallet codes at least that new) are in hand, no later one can
    displace them. For the same reason, on a first page a chunk only renders what is still wanted:
    anything after that has ``want`` newer results before it (``render_all`` when a later filter
    may drop some of those).
    """
    collected: list[dict[str, Any]] = []
    for qualifier, candidates in shared.chunks:
        if not render_all and sum(1 for w in wallet if _created(w) > _created(candidates[0])) >= want - len(collected):
            break  # the wallet alone fills the rest with codes newer than anything left (a full wallet's case)
        oldest = _created(candidates[-1])
        if boundary is not None and oldest >= boundary:
            continue  # the whole chunk is on earlier pages
        if boundary is None:
            collected += evaluate(qualifier, None if render_all else want - len(collected))
        else:
            collected += [d for d in evaluate(qualifier) if _created(d) < boundary]
        if len(collected) + sum(1 for w in wallet if _created(w) >= oldest) >= want:
            break
    return collected


def _wallet_newest_first(
    compiled: wallet_cache.CompiledWallet, limit: int | None, boundary: str | None, evaluate: Any
) -> list[dict[str, Any]]:
    """What ``evaluate(all the wallet, limit)`` gives (newest first), from the first chunks that can fill it."""
    found: list[dict[str, Any]] = []
    for qualifier, candidates in compiled.chunks:
        if boundary is not None and _created(candidates[-1]) >= boundary:
            continue  # the whole chunk is on earlier pages (and filtered out below)
        found += evaluate(qualifier, None if limit is None else limit - len(found))
        if limit is not None and len(found) >= limit:
            break
    return found


async def qualify(services: Services, project_id: str, request: QualificationRequest) -> dict[str, Any]:
    now = datetime.now(UTC)
    customer = request.customer or {}
    wants_wallet = request.scenario in (
        "ALL",
        "CUSTOMER_WALLET",
        "PRODUCTS_BY_CUSTOMER",
        "PRODUCTS_DISCOUNT_BY_CUSTOMER",
        "AUDIENCE_ONLY",
    )
    # One round trip: definitions version, customer, segments, and the wallet's state, or only
    # word that this process's compiled copy of it is still exact.
    live = await wallet_cache.read(
        services.redis,
        services.scripts,
        services.pool,
        services.wallets,
        project_id,
        customer,
        now,
        wants_wallet=wants_wallet,
    )
    defs = await services.definitions.get(project_id, live.version)
    compiled = _compiled_wallet(services, project_id, customer, live, defs)

    engine_customer = {
        **customer,
        "id": live.customer_id or customer.get("id"),
        "segments": live.segments,
        "metadata": customer.get("metadata") or {},
    }
    # Audience only: the cart does not count, so rules see an empty one.
    order = engine_order({} if request.scenario == "AUDIENCE_ONLY" else request.order, defs)
    context = {"collections": defs.collections, "prices": defs.prices, "metadata": request.metadata}

    rule = request.sorting_rule
    boundary = _normalized(request.starting_after) if request.starting_after is not None else None

    # A first page of a deal sorting needs only its own items (plus one, for has_more) rendered.
    page_limit = request.limit + 1 if boundary is None else None

    def evaluate(qualifier: Any, limit: int | None = None) -> list[dict[str, Any]]:
        return _evaluate(qualifier, order, engine_customer, now, rule, context, limit)

    # On a first page only that page (plus one) of the customer's codes is rendered.
    wallet: list[dict[str, Any]] = []
    if compiled is None or not compiled.candidates:
        pass
    elif request.filters:
        chosen_codes = [c for c in compiled.candidates if _matches(_facts(c, defs), request.filters)]
        wallet = evaluate(engine.Qualifier(chosen_codes), page_limit) if chosen_codes else []
    elif rule == "DEFAULT":
        wallet = _wallet_newest_first(compiled, page_limit, boundary, evaluate)
    else:
        wallet = evaluate(compiled.everything, page_limit)
    if boundary is not None and rule == "DEFAULT":
        wallet = [w for w in wallet if _created(w) < boundary]
    data: list[dict[str, Any]] = []
    if request.scenario != "CUSTOMER_WALLET":
        shared = _shared(defs)
        if request.filters:
            chosen = [c for c in shared.candidates if _matches(_facts(c, defs), request.filters)]
            data = evaluate(engine.Qualifier(chosen), page_limit)
        elif rule == "DEFAULT":
            data = _newest_first(shared, wallet, request.limit + 1, boundary, evaluate, request.scenario in PRODUCTS)
        else:
            data = evaluate(shared.everything, page_limit)
    data += wallet
    if request.scenario in PRODUCTS:
        data = [d for d in data if (d.get("applicable_to") or {}).get("total")]

    data.sort(key=lambda item: _sort_key(item, rule), reverse=True)
    if boundary is not None:
        data = _after(data, boundary, rule)
    page, has_more = data[: request.limit], len(data) > request.limit
    for item in page:
        del item["_deal"]
    base = order.view(False)
    redeemables: dict[str, Any] = {
        "object": "list",
        "data_ref": "data",
        "data": page,
        "total": len(page),
        "has_more": has_more,
    }
    if has_more:
        redeemables["more_starting_after"] = page[-1].get("created_at")
    ref = customer.get("source_id") or live.customer_id
    return {
        "redeemables": redeemables,
        "tracking_id": request.tracking_id or (f"track_{ref}" if ref else None),
        "order": base,
        "stacking_rules": defs.stacking_rules,
    }
