"""Explicit ``null`` in request bodies, read as the contract types each field.

The official SDKs build request models whose every nullable field they were given goes out as
``null``. The contract marks such a field ``nullable``, and a ``null`` there means "not given":
it is dropped before the service sees the body, so services only ever deal with absent fields.
A ``null`` for a field the contract declares but does not mark nullable is refused with 400
``invalid_payload``. Fields the contract does not declare (metadata keys, unknown fields) are
left as they are.

An update sets the fields it is sent, and for the fields its service can clear, a ``null`` at the
top of the body is such a value (``PUT /v1/campaigns/{id} {"expiration_date": null}`` removes the
expiry): the handler names them (``clears``) and those nulls reach the service. Everywhere else,
deeper in update bodies too, the rule applies.

A property that only names another schema (``$ref``, or ``allOf`` around one) cannot carry
``nullable`` in OpenAPI 3.0, so the contract leaves its nullability unsaid; the official SDKs send
null for such properties (a campaign's ``voucher``, a discount's ``product``), and unsaid is read
as nullable. The refusal is for properties the contract types inline without ``nullable``.

The contract is ``voucherd/openapi.json`` (the served operations' part of it). Each operation's
request schema is compiled once per process into a tree of ``Shape``s that names, per object, the
properties to drop and to refuse when null and the properties to walk into; ``allOf``, ``oneOf``
and ``anyOf`` branches are merged (a property nullable in any branch is nullable). A request pays
for a walk only when its raw bytes contain ``null`` at all.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import orjson

from voucherd.platform.errors import InvalidPayload

METHODS = ("post", "put", "patch", "delete")
COMPOSITIONS = ("allOf", "oneOf", "anyOf")


class Shape:
    """What the contract says about the nulls in one JSON value (object properties or array items)."""

    __slots__ = ("absent", "fields", "items", "refused")

    def __init__(self) -> None:
        self.absent: frozenset[str] = frozenset()  # properties whose null means "not given"
        self.refused: frozenset[str] = frozenset()  # declared properties that cannot be null
        self.fields: dict[str, Shape] = {}  # properties whose value has declared structure
        self.items: Shape | None = None  # each item's shape, when the value is an array


def route_shape(path: str) -> str:
    """``/v1/campaigns/{campaignId}`` and ``/v1/campaigns/{id}`` are the same route."""
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


class _Compiler:
    """Turns schemas into Shapes; a Shape stands for a set of schemas, so recursive schemas
    (filters within filters) end in a finite, cyclic graph."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self.done: dict[frozenset[int], Shape | None] = {}

    def _resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            node = self.schemas[node["$ref"].rsplit("/", 1)[-1]]
            seen += 1
        return node if isinstance(node, dict) else {}

    def _closure(self, nodes: list[Any]) -> list[dict[str, Any]]:
        """The schemas that together describe a value: each node, its ``$ref`` target and its branches."""
        out: dict[int, dict[str, Any]] = {}
        stack = list(nodes)
        while stack:
            node = self._resolve(stack.pop())
            if id(node) in out:
                continue
            out[id(node)] = node
            for key in COMPOSITIONS:
                stack.extend(node.get(key) or ())
        return list(out.values())

    def nullable(self, node: Any) -> bool:
        if isinstance(node, dict) and "type" not in node and any(key in node for key in ("$ref", *COMPOSITIONS)):
            # A property that only names other schemas: its nullability is unsaid (see the module's notes).
            return True
        return any(schema.get("nullable") is True for schema in self._closure([node]))

    def shape(self, nodes: list[Any]) -> Shape | None:
        closure = self._closure(nodes)
        key = frozenset(id(schema) for schema in closure)
        if key in self.done:
            return self.done[key]
        properties: dict[str, list[Any]] = {}
        items: list[Any] = []
        for schema in closure:
            for name, sub in (schema.get("properties") or {}).items():
                properties.setdefault(name, []).append(sub)
            if isinstance(schema.get("items"), dict):
                items.append(schema["items"])
        if not properties and not items:
            self.done[key] = None
            return None
        shape = Shape()
        self.done[key] = shape  # before the children: a schema may contain itself
        absent = {name for name, subs in properties.items() if any(self.nullable(sub) for sub in subs)}
        shape.absent = frozenset(absent)
        shape.refused = frozenset(properties) - shape.absent
        for name, subs in properties.items():
            child = self.shape(subs)
            if child is not None:
                shape.fields[name] = child
        shape.items = self.shape(items) if items else None
        return shape


def compile_contract(document: dict[str, Any]) -> dict[tuple[str, str], Shape]:
    """``(METHOD, route shape) -> Shape`` for every operation with a JSON request body."""
    compiler = _Compiler(document.get("components", {}).get("schemas", {}))
    out: dict[tuple[str, str], Shape] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS or not isinstance(operation, dict):
                continue
            content = (operation.get("requestBody") or {}).get("content") or {}
            schemas = [media["schema"] for kind, media in content.items() if "json" in kind and "schema" in media]
            shape = compiler.shape(schemas) if schemas else None
            if shape is not None:
                out[(method.upper(), route_shape(path))] = shape
    return out


@functools.cache
def contract_shapes() -> dict[tuple[str, str], Shape]:
    """The served contract's shapes, compiled once per process (about 0.1 s; the app warms it)."""
    raw = resources.files("voucherd").joinpath("openapi.json").read_bytes()
    return compile_contract(orjson.loads(raw))


_by_route: dict[tuple[str, str], Shape | None] = {}


def shape_for(method: str, route_path: str) -> Shape | None:
    """The request body's Shape for a route of the app (its path template), None when the contract has none."""
    key = (method, route_path)
    try:
        return _by_route[key]
    except KeyError:
        found = contract_shapes().get((method, route_shape(route_path)))
        _by_route[key] = found
        return found


def settle(body: Any, shape: Shape, *, clears: frozenset[str] = frozenset()) -> None:
    """Drop, in place, the nulls ``shape`` says mean "not given"; refuse those it says cannot be null.
    A top-level null for a field in ``clears`` stays: the update it is sent to clears that field."""
    try:
        _settle(body, shape, clears)
    except _RefusedNull as refused:
        raise InvalidPayload(f"Property {refused.path} should not be null") from None


class _RefusedNull(Exception):
    """Raised at the refused null; each level it passes on the way out puts its own step in front of
    ``path``, so the walk builds no path strings unless one is needed."""

    def __init__(self, path: str) -> None:
        self.path = path


_NO_CLEARS: frozenset[str] = frozenset()


def _settle(value: Any, shape: Shape, clears: frozenset[str] = _NO_CLEARS) -> None:
    if type(value) is dict:
        fields = shape.fields
        drop = None
        for key, item in value.items():
            if item is None:
                if key in clears:
                    continue
                if key in shape.absent:
                    if drop is None:
                        drop = []
                    drop.append(key)
                elif key in shape.refused:
                    raise _RefusedNull(f".{key}")
            elif fields:
                child = fields.get(key)
                if child is not None:
                    try:
                        _settle(item, child)
                    except _RefusedNull as refused:
                        refused.path = f".{key}{refused.path}"
                        raise
        if drop is not None:
            for key in drop:
                del value[key]
    elif type(value) is list and shape.items is not None:
        items = shape.items
        for index, item in enumerate(value):
            try:
                _settle(item, items)
            except _RefusedNull as refused:
                refused.path = f"[{index}]{refused.path}"
                raise
