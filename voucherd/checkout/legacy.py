"""The single-code calls of older integrations, answered from the stackable ones.

``POST /v1/vouchers/{code}/validate`` and ``POST /v1/vouchers/{code}/redemption`` take the
old body (``customer``, ``order``, ``gift``, ``reward``, ``session``, ``metadata``) and answer
in the old shapes: ``{valid, code, discount|gift, order, …}`` or ``{valid: false, reason, error}``,
and the redemption object itself.
"""

from __future__ import annotations

from typing import Any

from voucherd.checkout.redeem_request import RedeemRequest, parse
from voucherd.platform.errors import InvalidPayload


def as_stackable(code: str, body: dict[str, Any]) -> RedeemRequest:
    redeemable: dict[str, Any] = {"object": "voucher", "id": code}
    for name in ("gift", "reward"):
        if body.get(name) is not None:
            redeemable[name] = body[name]
    stackable = {key: body.get(key) for key in ("order", "customer", "session", "tracking_id", "metadata")}
    stackable["redeemables"] = [redeemable]
    return parse(stackable)


def validation_view(code: str, answer: dict[str, Any]) -> dict[str, Any]:
    entry = answer["redeemables"][0]
    view: dict[str, Any] = {
        "code": code,
        "tracking_id": answer.get("tracking_id"),
        "metadata": entry.get("metadata") or {},
    }
    if entry["status"] != "APPLICABLE":
        error = dict((entry.get("result") or {}).get("error") or {})
        details = (entry.get("result") or {}).get("details") or {}
        return {**view, "valid": False, "reason": details.get("message") or error.get("message"), "error": error}
    result = entry.get("result") or {}
    view.update(valid=True, order=entry.get("order") or answer.get("order"))
    for name in ("applicable_to", "inapplicable_to"):
        if name in entry:
            view[name] = entry[name]
    if "discount" in result:
        view["discount"] = result["discount"]
    if "gift" in result:
        view["gift"] = result["gift"]
    if "loyalty_card" in result:
        view["loyalty"] = {"points_cost": result["loyalty_card"].get("points")}
    if "session" in answer:
        view["session"] = answer["session"]
    return view


def check_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidPayload("The request body must be a JSON object.")
    return body
