"""Data-driven conformance cases: tests/engine/cases/*.json (request -> expected calculated order)."""

import json
from pathlib import Path

import pytest

from tests.engine.helpers import assert_subset, run_case

CASES = [
    pytest.param(case, id=f"{path.stem}:{case['name']}")
    for path in sorted((Path(__file__).parent / "cases").glob("*.json"))
    for case in json.loads(path.read_text())
]


def test_cases_have_reasons() -> None:
    assert len(CASES) >= 40
    for p in CASES:
        assert p.values[0].get("why"), p.id


@pytest.mark.parametrize("case", CASES)
def test_case(case: dict) -> None:
    out = run_case(case)
    assert_subset(case["expect"], out)
    # Money stays integral everywhere in the calculated order.
    for key, value in out["order"].items():
        if key.endswith("amount"):
            assert isinstance(value, int) and value >= 0, key


@pytest.mark.parametrize("case", CASES)
def test_case_compiled_paths_agree(case: dict) -> None:
    """Cached definitions (compile_redeemable, directly or under "compiled") give the plain-dict result."""
    from engine.stacking import compile_redeemable
    from tests.engine.helpers import parse_now, prepare, stack

    plain = run_case(case)
    redeemables, context = prepare(case)
    args = (case["order"], case.get("customer"), parse_now(case.get("now")), case.get("stacking_rules"), context)
    compiled = [compile_redeemable(r) for r in redeemables]
    assert stack(compiled, *args) == plain
    keyed = [
        {
            "compiled": compile_redeemable({k: v for k, v in r.items() if k in ("discount", "rules")}),
            **{k: v for k, v in r.items() if k not in ("discount", "rules")},
        }
        for r in redeemables
    ]
    assert stack(keyed, *args) == plain
