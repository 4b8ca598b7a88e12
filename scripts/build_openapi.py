"""Build ``voucherd/openapi.json``: the Voucherify contract cut down to the endpoints voucherd serves.

Development-time only: reads the Voucherify OpenAPI document (``shared/reference/voucherify-openapi.json``
in the nearest directory above the repository that has one, or the path given as the first argument),
keeps the paths and methods that ``server.app.ROUTES`` serves, keeps the components those reference,
and drops every piece of prose (``description``, ``summary``, ``example``, ``examples``, ``x-*``) and the
OAuth scheme voucherd does not implement. The result is committed and served at ``GET /openapi.json``.

    .venv/bin/python scripts/build_openapi.py [path/to/voucherify-openapi.json]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = Path("shared") / "reference" / "voucherify-openapi.json"
SOURCE = next((parent / CONTRACT for parent in ROOT.parents if (parent / CONTRACT).is_file()), ROOT.parent / CONTRACT)
TARGET = ROOT / "voucherd" / "openapi.json"

PROSE = frozenset(("description", "summary", "example", "examples"))
DATA = frozenset(("enum", "default", "const"))  # values, not schema keywords: copied as they are
METHODS = ("get", "put", "post", "delete", "patch")
DROPPED_SCHEMES = frozenset(("X-Voucherify-OAuth",))


def route_shape(path: str) -> str:
    """``/v1/campaigns/{campaignId}`` and ``/v1/campaigns/{id}`` are the same route."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def served_routes() -> dict[str, set[str]]:
    sys.path.insert(0, str(ROOT))
    from starlette.routing import Route

    from server.app import ROUTES

    served: dict[str, set[str]] = {}
    for route in ROUTES:
        if isinstance(route, Route) and route.methods:
            served.setdefault(route_shape(route.path), set()).update(m.lower() for m in route.methods)
    return served


def strip(node: Any) -> Any:
    """The node without prose and vendor extensions; names under ``properties`` are field names, kept."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in PROSE or key.startswith("x-"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: strip(schema) for name, schema in value.items()}
        elif key in DATA:
            out[key] = value
        elif key == "security" and isinstance(value, list):
            kept = [{k: v for k, v in req.items() if k not in DROPPED_SCHEMES} for req in value]
            out[key] = [req for req in kept if req]
        else:
            out[key] = strip(value)
    return out


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def build(spec: dict[str, Any], served: dict[str, set[str]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        methods = served.get(route_shape(path), set())
        kept = {k: v for k, v in item.items() if k in methods or (k not in METHODS and k == "parameters")}
        if any(k in METHODS for k in kept):
            paths[path] = strip(kept)

    components: dict[str, dict[str, Any]] = {}
    pending = refs(paths)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        done.add(ref)
        _hash, _components, section, name = ref.split("/", 3)
        target = strip(spec["components"][section][name])
        components.setdefault(section, {})[name] = target
        pending |= refs(target) - done
    schemes = {k: v for k, v in spec["components"]["securitySchemes"].items() if k not in DROPPED_SCHEMES}
    components["securitySchemes"] = strip(schemes)
    ordered = {section: dict(sorted(entries.items())) for section, entries in sorted(components.items())}

    return {
        "openapi": spec["openapi"],
        "info": {"title": "voucherd", "version": spec["info"]["version"]},
        "paths": dict(sorted(paths.items())),
        "components": ordered,
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else SOURCE
    spec = json.loads(source.read_text())
    document = build(spec, served_routes())
    TARGET.write_text(json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n")
    operations = sum(1 for item in document["paths"].values() for k in item if k in METHODS)
    print(f"{TARGET.relative_to(ROOT)}: {len(document['paths'])} paths, {operations} operations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
