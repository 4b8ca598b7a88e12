"""docs/api-compatibility.md and voucherd/openapi.json keep up with the routes.

After adding routes, ``scripts/api_compat.py --write`` and ``scripts/build_openapi.py`` bring both
back in line; these tests say which one is behind.
"""

from __future__ import annotations

import json
import re

import pytest

from scripts import api_compat, build_openapi

ROW = re.compile(r"^\| `(\w+)` \| `([^`]+)` \| ")


def _documented() -> tuple[str, list[tuple[str, str]]]:
    page = api_compat.TARGET.read_text()
    return page, [(m[1], m[2]) for line in page.splitlines() if (m := ROW.match(line))]


def test_the_page_lists_every_contract_endpoint_with_its_current_state() -> None:
    page, endpoints = _documented()
    contract = api_compat.find_contract()
    if contract is not None:  # where the Voucherify document is at hand, its list is the reference
        expected_endpoints = api_compat.contract_endpoints(json.loads(contract.read_text()))
        assert sorted(set(endpoints)) == sorted(set(expected_endpoints)), "the contract's endpoints changed"
    expected = api_compat.render(endpoints) + "\n"
    summary = next(line for line in expected.splitlines() if line.startswith("Supported:"))
    assert page == expected, (
        f"docs/api-compatibility.md is out of date (now {summary}); run make api-docs (scripts/api_compat.py --write)"
    )


def test_the_page_counts_what_it_lists() -> None:
    page, endpoints = _documented()
    states = re.findall(r"^\| `\w+` \| `[^`]+` \| (supported|partial|not yet) \|", page, re.M)
    assert len(states) == len(endpoints) > 200
    counts = {state: states.count(state) for state in ("supported", "partial", "not yet")}
    summary = f"Supported: {counts['supported']}, partial: {counts['partial']}, not yet: {counts['not yet']}."
    assert summary in page.splitlines()


def test_the_served_contract_has_every_served_endpoint() -> None:
    """The request layer reads explicit nulls from voucherd/openapi.json: an endpoint missing from it
    would take its nulls as they come."""
    _page, endpoints = _documented()
    document = json.loads(build_openapi.TARGET.read_text())
    documented = {
        (method.upper(), build_openapi.route_shape(path))
        for path, item in document["paths"].items()
        for method in item
        if method in build_openapi.METHODS
    }
    served = api_compat.served()
    missing = [
        f"{method} {path}"
        for method, path in endpoints
        if method in served.get(api_compat._shape(path), set())
        and (method, build_openapi.route_shape(path)) not in documented
    ]
    assert not missing, f"voucherd/openapi.json lacks {missing}; run make api-docs (scripts/build_openapi.py)"


@pytest.mark.parametrize("state", ["supported", "not yet"])
def test_render_follows_the_routes(state: str) -> None:
    """A made-up endpoint is never served; a real route is, whatever its parameter names, with its module."""
    endpoint = ("GET", "/v1/campaigns/{anyName}") if state == "supported" else ("GET", "/v1/no-such-family")
    module = "`server/resources/definitions/campaigns.py`" if state == "supported" else ""
    assert f"| `GET` | `{endpoint[1]}` | {state} | {module} |  |" in api_compat.render([endpoint])
