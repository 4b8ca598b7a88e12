"""Fuzzing every documented operation with schemathesis against the real server (granian, one process).

The document is the one the server serves at ``GET /openapi.json``. Each operation gets a few
schema-conforming requests and a few deliberately broken ones (``GenerationMode.NEGATIVE``), sent with
the project's keys. Every answer must be: never a 5xx; JSON unless it is an empty 204; an error in the
Voucherify shape (``code`` equal to the status, ``key``, ``message``, ``request_id``); a 2xx status the
document lists for that operation; and free of tracebacks, SQL and the keys themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, Phase, strategies
from starlette.testclient import TestClient

from scripts import build_openapi
from tests.conftest import LiveServer, ProjectKeys
from voucherd.platform.settings import Settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES_PER_MODE = 5  # per operation, for each of the positive and negative modes
BUDGET_S = 200.0  # a hard stop well above the usual run (about 100 s for 225 operations), so nothing hangs
LEAKS = ("Traceback", 'File "', "asyncpg", "SELECT ", "INSERT ", "postgres", "redis://")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(client_rate_limit=1_000_000)  # the fuzzer is one client sending hundreds of requests


def _documented_2xx(operation: Any) -> set[int]:
    return {int(code) for code in operation.definition.raw.get("responses", {}) if code.isdigit() and code[0] == "2"}


def _problems(response: requests.Response, documented: set[int], secrets: tuple[str, ...]) -> list[str]:
    status, text = response.status_code, response.text
    found = []
    if status >= 500:
        found.append(f"status {status}")
    if any(leak in text for leak in (*LEAKS, *secrets)):
        found.append("leaks internals or keys")
    if status == 204 and not text:
        return found
    if "application/json" not in response.headers.get("content-type", ""):
        return [*found, f"not JSON: {response.headers.get('content-type')}"]
    try:
        body = response.json()
    except ValueError:
        return [*found, "unparsable JSON"]
    if status >= 400:
        shaped = (
            isinstance(body, dict)
            and body.get("code") == status
            and isinstance(body.get("key"), str)
            and isinstance(body.get("message"), str)
            and str(body.get("request_id", "")).startswith("v-")
        )
        if not shaped:
            found.append("error body not in the Voucherify shape")
    elif documented and status not in documented:
        found.append(f"status {status} not among the documented {sorted(documented)}")
    return found


@dataclass
class Tally:
    base_url: str
    session: requests.Session
    secrets: tuple[str, ...]
    started: float
    sent: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    def fuzz(self, operation: Any, headers: dict[str, str]) -> None:
        """Send the operation's generated requests (both modes) and note every bad answer."""
        label = f"{operation.method.upper()} {operation.path}"
        documented = _documented_2xx(operation)
        strategy = strategies.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @hypothesis.settings(
            max_examples=2 * EXAMPLES_PER_MODE,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def run(case: Any) -> None:
            if time.monotonic() - self.started > BUDGET_S:
                return
            # The document declares the keys as header parameters, so generated cases carry made-up ones:
            # the real keys replace them, and the fuzzing goes into paths, queries and bodies.
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(base_url=self.base_url, session=self.session, timeout=30)
            self.sent += 1
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            for problem in _problems(response, documented, self.secrets):
                self.failures.setdefault(label, []).append(
                    f"{problem}: {case.method} {case.formatted_path} query={case.query} body={str(case.body)[:300]}"
                    f" -> {response.status_code} {response.text[:300]}"
                )

        run()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fuzz_every_documented_operation(
    live_server: LiveServer,
    project: ProjectKeys,
    management_headers: dict[str, str],
    make_project: Callable[..., ProjectKeys],
) -> None:
    session = requests.Session()
    document = session.get(f"{live_server.url}/openapi.json", timeout=10)
    assert document.status_code == 200 and document.headers["content-type"].startswith("application/json")
    schema = schemathesis.openapi.from_dict(document.json())
    trusted = session.put(
        f"{live_server.url}/management/v1/projects/{project.project_id}",
        json={"client_trusted_domains": ["*"]},
        headers=management_headers,
        timeout=10,
    )
    assert trusted.status_code == 200, trusted.text

    families = {
        "/v1/": project.headers,
        "/client/v1/": {
            "X-Client-Application-Id": project.client_id,
            "X-Client-Token": project.client_token,
            "Origin": "https://shop.example",
        },
        "/management/v1/": management_headers,
    }
    secrets = (project.app_token, project.client_token, management_headers["X-Management-Token"])
    tally = Tally(live_server.url, session, secrets, time.monotonic())
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        headers = next(h for prefix, h in families.items() if operation.path.startswith(prefix))
        tally.fuzz(operation, headers)
    sent, failures, statuses = tally.sent, tally.failures, tally.statuses
    started = tally.started

    elapsed = time.monotonic() - started
    print(
        f"\nfuzz: {len(operations)} operations, {sent} requests in {elapsed:.0f} s, statuses {sorted(statuses.items())}"
    )
    assert elapsed <= BUDGET_S, f"the fuzz run hit its {BUDGET_S} s budget after {sent} requests"
    assert sent >= len(operations), "every operation got at least one request"
    report = "\n".join(f"{label}:\n  " + "\n  ".join(sorted(set(found))[:5]) for label, found in failures.items())
    assert not failures, f"{sum(map(len, failures.values()))} bad answers in {len(failures)} operations:\n{report}"


def test_the_document_is_served_without_a_key_and_holds_no_prose(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    document = response.json()
    served = build_openapi.served_routes()
    for path, item in document["paths"].items():
        methods = {m for m in item if m in build_openapi.METHODS}
        assert methods <= served.get(build_openapi.route_shape(path), set()), f"{path} is documented but not served"

    def keywords(node: Any, names: bool = False) -> set[str]:
        """Every keyword in the document; the keys of a ``properties`` map are field names, not keywords."""
        found: set[str] = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if not names:
                    found.add(key)
                found |= keywords(value, not names and key == "properties")
        elif isinstance(node, list):
            for item in node:
                found |= keywords(item)
        return found

    present = keywords(document)
    assert not present & build_openapi.PROSE
    assert not [k for k in present if k.startswith("x-")]
