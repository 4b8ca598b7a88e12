"""Console forms: a posted form becomes the JSON body the API takes, and goes through the same domain function.

A page declares its form as a ``Form`` of ``Field``s, each named by its path in the API body
(``voucher.discount.percent_off``; a number segment makes a list: ``promotion.tiers.0.name``). ``submit``
builds the body, checks it with the API's own shape limits (``server.body.check_shape``) and calls the
domain function. A ``VoucherdError`` comes back as a ``FormState`` with the message beside the field it
names (from the ``Property .x.y`` in its details), or at the top of the form. The domain functions check
the whole body before they write, so a refused form writes nothing.

Conversions are light on purpose: an integer field that does not read as one is sent as typed, so the
domain refuses it with the API's message. Money fields take a decimal amount (10.50) and send integer
minor units (1050), as the API stores money.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, TypeVar

import orjson
from starlette.datastructures import FormData
from starlette.requests import Request

from server.body import check_shape
from voucherd.platform.errors import InvalidPayload, VoucherdError

T = TypeVar("T")

KINDS = ("text", "textarea", "int", "number", "money", "choice", "bool", "json", "hidden")
# ".voucher.discount.type", ".promotion.tiers[0].name": the paths the domain's messages name.
_PATH = re.compile(r"(?<![\w.])\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\.\d+|\[\d+\])*)")
# "rules.1.conditions should be an object": the validation rules' checks name paths without the dot.
_BARE_PATH = re.compile(r"^([A-Za-z_]\w*(?:\.\w+|\[\d+\])*)\b")


@dataclass(frozen=True)
class Field:
    name: str  # the field's path in the API body
    label: str
    kind: str = "text"
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for "choice"
    help: str = ""
    default: str = ""
    required: bool = False  # the browser's hint only; the domain function decides

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind}")

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


@dataclass(frozen=True)
class Form:
    """The fields of one form, and the constant part of its body (``{"campaign_type": "PROMOTION"}``)."""

    name: str  # tells apart the forms of one page (the posted ``_form`` value), and names its test ids
    fields: tuple[Field, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    submit_label: str = "Create"
    # Objects whose errors the domain names relative to themselves: a promotion tier's checks say
    # ".name", not ".promotion.tiers.0.name" (see ``field_for``).
    scopes: tuple[str, ...] = ()

    def body(self, data: Mapping[str, str]) -> dict[str, Any]:
        """The API body for these posted values; a JSON field that does not parse is a ``FieldError``."""
        body: dict[str, Any] = {}
        for name, value in self.fixed.items():
            _set(body, name, value)
        for item in self.fields:
            raw = data.get(item.name, "")
            if item.kind == "bool":
                _set(body, item.name, raw in ("on", "true", "1"))
                continue
            if raw.strip() == "":
                continue
            _set(body, item.name, _convert(item, raw.strip()))
        return body

    def state(self, data: Mapping[str, str] | None = None) -> FormState:
        values = {f.name: f.default for f in self.fields}
        if data is not None:
            values.update({f.name: str(data.get(f.name, "")) for f in self.fields})
        return FormState(self, values)


class FieldError(InvalidPayload):
    """A value the form itself could not read (JSON that does not parse), before any domain check."""

    def __init__(self, name: str, details: str) -> None:
        super().__init__(f"Property .{name} {details}")


@dataclass
class FormState:
    """What a form shows: the values as typed, and the refusal (beside a field, or at the top)."""

    form: Form
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""  # a refusal that names no field of this form

    @property
    def refused(self) -> bool:
        return bool(self.errors or self.error)

    def refuse(self, error: VoucherdError) -> None:
        text = error.details or error.instance_message or error.message
        target = field_for(self.form, text, self.values)
        if target is None:
            self.error = text
        else:
            self.errors[target] = text


def field_for(form: Form, text: str, values: Mapping[str, str] | None = None) -> str | None:
    """The field of ``form`` that an error message is about: the first path it names that one of the
    fields is, holds (an error about ``.voucher.discount`` goes to its first field) or lies under.

    A path may also be relative to one of the form's ``scopes``. When it fits several fields, the first
    blank one is meant (the domain checks in form order, and most such refusals are about a missing
    value); when none of them is blank, the form cannot tell which one and shows the error at the top."""
    names = [f.name for f in form.fields if f.kind != "hidden"]
    paths = [m.group(1) for m in _PATH.finditer(text)]
    bare = _BARE_PATH.match(text)
    if bare is not None and ("." in bare.group(1) or bare.group(1) in names):
        paths.append(bare.group(1))
    for raw in paths:
        path = re.sub(r"\[(\d+)\]", r".\1", raw)
        found = [
            hit for hit in (_match(names, prefix + path) for prefix in ("", *(s + "." for s in form.scopes))) if hit
        ]
        if not found:
            continue
        if len(found) == 1 or values is None:
            return found[0]
        blank = [name for name in found if not values.get(name, "").strip()]
        return blank[0] if blank else None
    return None


def _match(names: list[str], path: str) -> str | None:
    if path in names:
        return path
    inside = next((n for n in names if n.startswith(path + ".")), None)
    if inside is not None:
        return inside
    around = [n for n in names if path.startswith(n + ".")]
    return max(around, key=len) if around else None


async def posted(request: Request) -> dict[str, str]:
    """The posted form as plain strings (file uploads are not console forms' business)."""
    data: FormData = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def submit(
    request: Request, form: Form, action: Callable[[dict[str, Any]], Awaitable[T]]
) -> tuple[T | None, FormState]:
    """Post ``form`` through ``action`` (the domain call the API handler makes, given the body).
    Returns (the action's result, the form's state); the result is None when the form was refused."""
    data = await posted(request)
    state = form.state(data)
    try:
        body = form.body(data)
        check_shape(body)
        result = await action(body)
    except VoucherdError as error:
        state.refuse(error)
        return None, state
    return result, state


def _convert(item: Field, raw: str) -> Any:
    if item.kind == "int":
        return int(raw) if re.fullmatch(r"-?\d+", raw) else raw
    if item.kind == "number":
        try:
            number = Decimal(raw)
        except InvalidOperation:
            return raw
        return int(number) if number == number.to_integral_value() else float(number)
    if item.kind == "money":
        try:
            amount = Decimal(raw.replace(",", ""))
        except InvalidOperation:
            return raw
        minor = amount * 100
        return int(minor) if minor == minor.to_integral_value() else raw
    if item.kind == "json":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise FieldError(item.name, f"is not valid JSON: {exc}") from None
    return raw


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    """``body[a][b][0][c] = value`` for ``a.b.0.c``, making the dicts and lists on the way."""
    parts = path.split(".")
    node: Any = body
    for part, following in pairwise(parts):
        empty: list[Any] | dict[str, Any] = [] if following.isdigit() else {}
        if isinstance(node, list):
            position = int(part)
            while len(node) <= position:
                node.append(None)
            if node[position] is None:
                node[position] = empty
            node = node[position]
        else:
            node = node.setdefault(part, empty)
    if isinstance(node, list):
        position = int(parts[-1])
        while len(node) <= position:
            node.append(None)
        node[position] = value
    else:
        node[parts[-1]] = value
