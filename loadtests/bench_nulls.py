"""What reading explicit nulls (server/nulls.py) costs a redemption body (plain script: prints a table).

.venv/bin/python loadtests/bench_nulls.py

A body without ``null`` pays one substring scan; a body as the official SDK's ``from_dict`` builds it
(every nullable field it knows sent as null) pays the walk that drops them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import voucherify

from server import body, nulls


def timeit(fn: Callable[[], object], rounds: int = 10, n: int = 1000) -> float:
    """Best-of-``rounds`` mean seconds per call in this thread's CPU time (the box is shared)."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t0) / n)
    return best


def redemption(lines: int) -> dict[str, Any]:
    items = [{"product_id": f"prod_{i}", "quantity": 1 + i % 3, "price": 1000 + i} for i in range(lines)]
    return {
        "redeemables": [{"object": "voucher", "id": "BLACK-FRIDAY"}],
        "order": {"source_id": "ord-1", "amount": 90000, "items": items},
        "customer": {"source_id": "cust-1", "metadata": {"tier": "gold"}},
        "metadata": {"channel": "web"},
    }


def main() -> None:
    shape = nulls.shape_for("POST", "/v1/redemptions")
    assert shape is not None
    print(f"compile the served contract: {timeit(_compile, rounds=3, n=1) * 1e3:.0f} ms (once per process)")
    print("| body | bytes | nulls | decode (µs) | null gate (µs) | walk (µs) |")
    print("|---|---|---|---|---|---|")
    for lines in (1, 5, 20):
        plain = orjson.dumps(redemption(lines))
        sdk = orjson.dumps(voucherify.RedemptionsRedeemRequestBody.from_dict(redemption(lines)).to_dict())
        for label, raw in ((f"{lines} lines", plain), (f"{lines} lines, SDK from_dict", sdk)):
            decode = timeit(lambda raw=raw: body.decode(raw))
            gate = timeit(lambda raw=raw: b"null" in raw)
            walk = 0.0
            if b"null" in raw:
                loads = timeit(lambda raw=raw: orjson.loads(raw))
                walk = max(0.0, timeit(lambda raw=raw: nulls.settle(orjson.loads(raw), shape)) - loads)
            cells = (
                label,
                len(raw),
                raw.count(b"null"),
                f"{decode * 1e6:.1f}",
                f"{gate * 1e6:.2f}",
                f"{walk * 1e6:.1f}",
            )
            print("| " + " | ".join(map(str, cells)) + " |")


def _compile() -> None:
    nulls.contract_shapes.cache_clear()
    nulls.contract_shapes()


if __name__ == "__main__":
    main()
