"""Every request model of the official Python SDK, built with ``from_dict`` and sent through the SDK.

``from_dict`` sets every field a model has, so each nullable field it was not given goes out as an
explicit ``null``. For each SDK operation with a request body on an endpoint voucherd serves, the
sweep builds the smallest body the contract (``voucherd/openapi.json``) calls valid, turns it into
the SDK's model, sends it with the SDK's ``ApiClient`` to a live server, and checks that no answer
is a 400 about a field that went out as ``null`` (a 400 or 404 for another reason is fine: the
sweep's ids and values are only plausible) and that nothing answers 500.
"""

from __future__ import annotations

import inspect
import re
import typing
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx
import orjson
import pydantic
import pytest
import voucherify
from voucherify import api as sdk_api

from scripts import api_compat
from server.nulls import route_shape
from tests.conftest import LiveServer, ProjectKeys, drain_worker
from voucherd.platform.settings import Settings

pytestmark = pytest.mark.slow

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ORIGIN = "https://shop.example"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The sweep calls the client API more often than its per-address rate limit allows by default."""
    return settings.with_(client_rate_limit=10_000)


@dataclass(frozen=True)
class Operation:
    api: str  # the SDK's API class
    name: str  # its method
    method: str
    path: str  # the SDK's resource path, with {placeholders}
    body_param: str
    model: type[pydantic.BaseModel]
    is_list: bool  # the body is an array of the model
    path_params: tuple[str, ...]  # the method's required arguments other than the body


class _Recorder:
    """Stands in for the SDK's ApiClient to learn an operation's method and path from its serializer."""

    def param_serialize(self, method: str, resource_path: str, **_: Any) -> tuple[str, str]:
        return method, resource_path

    def select_header_accept(self, accepts: list[str]) -> str | None:
        return accepts[0] if accepts else None

    def select_header_content_type(self, types: list[str]) -> str | None:
        return types[0] if types else None


def _models(annotation: Any) -> list[type[pydantic.BaseModel]]:
    found = []
    if inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def sdk_operations() -> list[Operation]:
    """Every SDK method that sends a request body model to an endpoint voucherd serves."""
    served = api_compat.served()
    operations = []
    for api_name in sorted(dir(sdk_api)):
        cls = getattr(sdk_api, api_name)
        if not (inspect.isclass(cls) and api_name.endswith("Api")):
            continue
        recorder = cls.__new__(cls)
        recorder.api_client = _Recorder()
        for name, function in inspect.getmembers(cls, inspect.isfunction):
            serializer = getattr(cls, f"_{name}_serialize", None)
            if name.startswith("_") or serializer is None:
                continue
            arguments = [p for p in inspect.signature(serializer).parameters if p != "self"]
            method, path = serializer(recorder, **dict.fromkeys(arguments))
            if method not in BODY_METHODS or method not in served.get(api_compat._shape(path), set()):
                continue
            hints = typing.get_type_hints(function, include_extras=True)
            parameters = {
                p: v for p, v in inspect.signature(function).parameters.items() if p != "self" and not p.startswith("_")
            }
            bodies = [(p, _models(hints[p])) for p in parameters if _models(hints[p])]
            if not bodies:
                continue
            [(body_param, [model])] = bodies
            is_list = typing.get_origin(_unwrap(hints[body_param])) is list
            required = tuple(
                p
                for p, v in parameters.items()
                if p != body_param and (v.default is inspect.Parameter.empty or p == "origin")
            )
            operations.append(Operation(api_name, name, method, path, body_param, model, is_list, required))
    return operations


def _unwrap(annotation: Any) -> Any:
    """``Annotated[Optional[List[X]], ...]`` -> ``List[X]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


class Contract:
    """The smallest value each contract schema calls valid: required properties only, first branch of a choice."""

    def __init__(self) -> None:
        self.document = orjson.loads(resources.files("voucherd").joinpath("openapi.json").read_bytes())
        self.schemas = self.document["components"]["schemas"]
        self.by_route = {
            (method.upper(), route_shape(path)): operation
            for path, item in self.document["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict) and "requestBody" in operation
        }

    def body_schema(self, method: str, path: str) -> Any:
        operation = self.by_route.get((method, route_shape(path)))
        if operation is None:
            return None
        content = operation["requestBody"].get("content", {})
        return next((media["schema"] for kind, media in content.items() if "json" in kind), None)

    def _resolve(self, node: Any) -> dict[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            node = self.schemas[node["$ref"].rsplit("/", 1)[-1]]
        return node if isinstance(node, dict) else {}

    def minimal(self, node: Any, depth: int = 0) -> Any:
        node = self._resolve(node)
        for choice in ("oneOf", "anyOf"):
            if node.get(choice):
                return self.minimal({**{k: v for k, v in node.items() if k != choice}, "allOf": [node[choice][0]]})
        parts = [node, *[self._resolve(p) for p in node.get("allOf", ())]]
        merged: dict[str, Any] = {}
        for part in parts:
            if part is not node and ("allOf" in part or "oneOf" in part or "anyOf" in part):
                sub = self.minimal(part, depth + 1)
                if isinstance(sub, dict):
                    merged.setdefault("__value", {}).update(sub)
                continue
            for key in ("enum", "type", "items", "minItems", "format"):
                if key in part:
                    merged.setdefault(key, part[key])
            merged.setdefault("properties", {}).update(part.get("properties", {}))
            merged.setdefault("required", []).extend(part.get("required", []))
        if merged.get("enum"):
            return merged["enum"][0]
        kind = merged.get("type") or ("object" if merged.get("properties") or "__value" in merged else None)
        if kind == "object" or kind is None:
            value = dict(merged.get("__value", {}))
            if depth < 8:
                for name in dict.fromkeys(merged["required"]):
                    value[name] = self.minimal(merged["properties"].get(name, {}), depth + 1)
            return value
        if kind == "array":
            return [self.minimal(merged.get("items", {}), depth + 1)] if merged.get("minItems") else []
        if kind == "string":
            return "2030-01-01T00:00:00Z" if merged.get("format") == "date-time" else "sweep"
        if kind in ("integer", "number"):
            return 1
        if kind == "boolean":
            return True
        return {}


@dataclass
class Sent:
    body: Any = None
    status: int = 0
    answer: str = ""


class RecordingClient(voucherify.ApiClient):  # type: ignore[misc]
    """The SDK's own client; it also keeps the body it sent last, as the SDK serialized it."""

    last = Sent()

    def call_api(
        self, method: str, url: str, header_params: Any = None, body: Any = None, *rest: Any, **kw: Any
    ) -> Any:
        self.last = Sent(body=body)
        return super().call_api(method, url, header_params, body, *rest, **kw)


def null_paths(value: Any, where: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                yield f"{where}.{key}"
            else:
                yield from null_paths(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from null_paths(item, f"{where}[{index}]")


@dataclass
class World:
    """Real resources for the sweep's path parameters, so updates reach the service and not a 404."""

    ids: dict[str, str]

    def path_value(self, operation: Operation, param: str) -> str:
        if param == "campaign_id":
            for prefix, key in (
                ("/v1/loyalties", "loyalty"),
                ("/v1/promotions", "promotion"),
                ("/v1/referrals", "referral"),
            ):
                if operation.path.startswith(prefix):
                    return self.ids[key]
            return self.ids["campaign"]
        if param == "member_id":
            return self.ids["referral_code" if operation.path.startswith("/v1/referrals") else "loyalty_card"]
        if param == "code":
            return self.ids["voucher"] if operation.method == "PUT" or "balance" in operation.path else "SWEEP-NEW"
        if param == "origin":
            return ORIGIN
        return self.ids.get(param, f"unknown_{param}")


def seed(server: LiveServer, project: ProjectKeys, management: dict[str, str]) -> World:
    http = httpx.Client(base_url=server.url, headers=project.headers, timeout=30)

    def post(path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        response = http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201, 202), f"seeding {path}: {response.status_code} {response.text}"
        return response.json()

    discount = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}}
    campaign = post("/v1/campaigns", {"name": "sweep", "type": "AUTO_UPDATE", "voucher": discount})
    voucher = post("/v1/vouchers/SWEEP-1", discount)
    loyalty = post(
        "/v1/loyalties",
        {
            "name": "sweep-loyalty",
            "type": "AUTO_UPDATE",
            "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}},
        },
    )
    customer = post("/v1/customers", {"source_id": "sweep-customer", "name": "Sweep"})
    card = post(f"/v1/loyalties/{loyalty['id']}/members", {"customer": {"id": customer["id"]}})
    referral = post(
        "/v1/campaigns",
        {
            "name": "sweep-referral",
            "campaign_type": "REFERRAL_PROGRAM",
            "type": "AUTO_UPDATE",
            "voucher": discount,
            "referral_program": {"conversion_event_type": "redemption"},
        },
    )
    referral_code = post(
        "/v1/publications", {"campaign": {"name": "sweep-referral"}, "customer": {"id": customer["id"]}}
    )["voucher"]["code"]
    promotion = post(
        "/v1/campaigns",
        {
            "name": "sweep-promotion",
            "campaign_type": "PROMOTION",
            "promotion": {"tiers": [{"name": "tier", "action": {"discount": discount["discount"]}}]},
        },
    )
    product = post("/v1/products", {"name": "sweep-product", "source_id": "sweep-product", "price": 1000})
    sku = post(f"/v1/products/{product['id']}/skus", {"sku": "sweep-sku", "source_id": "sweep-sku", "price": 1000})
    category = post("/v1/categories", {"name": "sweep-category", "hierarchy": 1})
    rule = post("/v1/validation-rules", {"name": "sweep-rule", "type": "basic", "rules": {"logic": ""}})
    reward = post(
        "/v1/rewards", {"name": "sweep-reward", "type": "MATERIAL", "parameters": {"product": {"id": product["id"]}}}
    )
    order = post("/v1/orders", {"source_id": "sweep-order", "amount": 1000})
    earning = post(
        f"/v1/loyalties/{loyalty['id']}/earning-rules",
        [{"event": "order.paid", "loyalty": {"type": "FIXED", "points": 1}}],
    )
    webhook = post(
        f"/management/v1/projects/{project.project_id}/webhooks",
        {"target_url": "https://hooks.example/sweep", "events": ["voucher.created"], "active": False},
        management,
    )
    redemption = post(
        "/v1/redemptions", {"redeemables": [{"object": "voucher", "id": "SWEEP-1"}], "order": {"amount": 5000}}
    )
    tiers = promotion["promotion"]["tiers"]
    stacked = post(
        "/v1/redemptions",
        {
            "redeemables": [{"object": "voucher", "id": "SWEEP-1"}, {"object": "promotion_tier", "id": tiers[0]["id"]}],
            "order": {"amount": 5000},
        },
    )
    stack = post(
        f"/v1/promotions/{promotion['id']}/stacks", {"name": "sweep-stack", "tiers": {"ids": [tiers[0]["id"]]}}
    )
    assignment = post(
        f"/v1/loyalties/{loyalty['id']}/rewards", [{"reward": reward["id"], "parameters": {"loyalty": {"points": 10}}}]
    )[0]
    management_path = f"/management/v1/projects/{project.project_id}"
    schema = post(
        f"{management_path}/metadata-schemas",
        {"related_object": "campaign", "properties": {"tier": {"type": "string"}}},
        management,
    )
    stacking = post(f"{management_path}/stacking-rules", {"redeemables_application_mode": "ALL"}, management)
    configured = http.put(
        management_path,
        json={"client_trusted_domains": [ORIGIN], "client_redeem_enabled": True},
        headers=management,
    )
    assert configured.status_code == 200, configured.text
    http.close()
    drain_worker(server.settings)  # the redemption is in PostgreSQL, for the rollbacks
    return World(
        {
            "campaign": campaign["id"],
            "voucher": voucher["code"],
            "loyalty": loyalty["id"],
            "loyalty_card": card["code"],
            "referral": referral["id"],
            "referral_code": referral_code,
            "promotion": promotion["id"],
            "promotion_tier_id": tiers[0]["id"],
            "customer_id": customer["id"],
            "product_id": product["id"],
            "sku_id": sku["id"],
            "category_id": category["id"],
            "validation_rule_id": rule["id"],
            "reward_id": reward["id"],
            "order_id": order["id"],
            "earning_rule_id": earning[0]["id"],
            "webhook_id": webhook["id"],
            "stack_id": stack["id"],
            "assignment_id": assignment["id"],
            "metadata_schema_id": schema["id"],
            "stacking_rules_id": stacking["id"],
            "redemption_id": redemption["redemptions"][0]["id"],
            "parent_redemption_id": stacked["parent_redemption"]["id"],
            "project_id": project.project_id,
        }
    )


def nested(model: type[pydantic.BaseModel], depth: int = 0) -> dict[str, Any]:
    """``{}`` for every field typed by another SDK model that needs no field of its own, all the way down:
    ``from_dict`` then builds each nested model, and each sends its own nullable fields as null."""
    out: dict[str, Any] = {}
    if depth > 4:
        return out
    for name, info in model.model_fields.items():
        inner = _models(info.annotation)
        if inner and not any(field.is_required() for field in inner[0].model_fields.values()):
            value = nested(inner[0], depth + 1)
            out[info.alias or name] = [value] if typing.get_origin(_unwrap(info.annotation)) is list else value
    return out


def voucherd_needs(world: World) -> dict[str, dict[str, Any]]:
    """What voucherd needs beyond the contract's ``required`` lists (a name, an event, a discount, a reward
    to redeem), so that most sweep requests get past validation and the nulls meet the services."""
    ids = world.ids
    discount = {"type": "AMOUNT", "amount_off": 100}
    checkout = {"redeemables": [{"object": "voucher", "id": ids["voucher"]}], "order": {"amount": 5000}}
    hook = {"target_url": "https://hooks.example/sweep-2", "events": ["voucher.created"]}
    return {
        "CampaignsCreateRequestBody": {"name": "sweep-new", "campaign_type": "PROMOTION"},
        "CategoriesCreateRequestBody": {"name": "sweep-new", "hierarchy": 1},
        "EventsCreateRequestBody": {"event": "sweep", "customer": {"source_id": "sweep-customer"}},
        "ClientEventsCreateRequestBody": {"event": "sweep", "customer": {"source_id": "sweep-customer"}},
        "LoyaltiesCreateCampaignRequestBody": {"name": "sweep-new-loyalty"},
        "LoyaltiesMembersBalanceUpdateRequestBody": {"points": 10},
        "LoyaltiesMembersPendingPointsBalanceRequestBody": {"points": 1},
        "LoyaltiesMembersRedemptionRedeemRequestBody": {"reward": {"id": ids["reward_id"]}},
        "LoyaltiesEarningRulesCreateRequestBodyItem": {
            "event": "order.paid",
            "loyalty": {"type": "FIXED", "points": 1},
        },
        "LoyaltiesTransferPoints": {"code": ids["loyalty_card"], "points": 1},
        "LoyaltiesRewardsCreateAssignmentItemRequestBody": {
            "reward": ids["reward_id"],
            "parameters": {"loyalty": {"points": 5}},
        },
        "LoyaltiesTiersCreateInBulkRequestBodyItem": {"name": "sweep-tier", "points": {"from": 0, "to": 100}},
        "ProductCollectionsCreateRequestBody": {
            "name": "sweep-collection",
            "type": "STATIC",
            "products": [{"id": ids["product_id"], "object": "product"}],
        },
        "PromotionsStacksCreateRequestBody": {"name": "sweep-stack-2", "tiers": {"ids": [ids["promotion_tier_id"]]}},
        "PromotionsTiersCreateRequestBody": {"name": "sweep-tier-2", "action": {"discount": discount}},
        "PublicationsCreateRequestBody": {"campaign": {"name": "sweep"}, "customer": {"source_id": "sweep-customer"}},
        "RedemptionsRedeemRequestBody": checkout,
        "ClientRedemptionsRedeemRequestBody": checkout,
        "ValidationsValidateRequestBody": checkout,
        "ClientValidationsValidateRequestBody": checkout,
        "ReferralsMembersHoldersCreateInBulkRequestBody": {"holders": [{"source_id": "sweep-holder"}]},
        "RewardsCreateRequestBody": {"name": "sweep-reward-2", "parameters": {"product": {"id": ids["product_id"]}}},
        "RewardsAssignmentsCreateRequestBody": {"campaign": ids["loyalty"], "parameters": {"loyalty": {"points": 3}}},
        "SegmentsCreateRequestBody": {"name": "sweep-segment", "type": "static", "customers": [ids["customer_id"]]},
        "ValidationRulesAssignmentsCreateRequestBody": {
            "related_object_type": "campaign",
            "related_object_id": ids["campaign"],
        },
        "VouchersCreateRequestBody": {"type": "DISCOUNT_VOUCHER", "discount": discount},
        "VouchersCreateWithSpecificCodeRequestBody": {"type": "DISCOUNT_VOUCHER", "discount": discount},
        "ManagementProjectsWebhooksCreateRequestBody": hook,
        "ManagementProjectsWebhooksUpdateRequestBody": hook,
    }


def build(operation: Operation, contract: Contract, needs: dict[str, Any], *, deep: bool) -> Any:
    """The model (or list of models) ``from_dict`` makes of the contract's smallest valid body and what
    voucherd needs besides; with ``deep``, every nested model is there too."""
    schema = contract.body_schema(operation.method, operation.path)
    value = contract.minimal(schema) if schema is not None else ([{}] if operation.is_list else {})
    items = (value if isinstance(value, list) and value else [{}]) if operation.is_list else [value]
    models = []
    for item in items:
        given = {**(item if isinstance(item, dict) else {}), **needs.get(operation.model.__name__, {})}
        models.append(operation.model.from_dict({**nested(operation.model), **given} if deep else given))
    return models if operation.is_list else models[0]


def without_nulls(value: Any, *, keep_top: bool) -> Any:
    """The body as the SDK would send it had it left out every null (an update's top-level ones kept)."""
    if isinstance(value, dict):
        return {k: without_nulls(v, keep_top=False) for k, v in value.items() if v is not None or keep_top}
    if isinstance(value, list):
        return [without_nulls(v, keep_top=False) for v in value]
    return value


def test_every_sdk_request_model_survives_its_explicit_nulls(
    live_server: LiveServer, project: ProjectKeys, management_headers: dict[str, str]
) -> None:
    world = seed(live_server, project, management_headers)
    needs = voucherd_needs(world)
    contract = Contract()
    operations = sdk_operations()
    keys = {"X-App-Id": project.app_id, "X-App-Token": project.app_token}
    client_keys = {"X-Client-Application-Id": project.client_id, "X-Client-Token": project.client_token}
    config = voucherify.Configuration(host=live_server.url, api_key={**keys, **client_keys, **management_headers})
    failures: list[str] = []
    with_nulls: set[str] = set()
    statuses: dict[int, int] = {}
    with RecordingClient(config) as client, httpx.Client(base_url=live_server.url, timeout=30) as http:
        for operation, deep in [(operation, deep) for deep in (False, True) for operation in operations]:
            arguments = {p: world.path_value(operation, p) for p in operation.path_params}
            arguments[operation.body_param] = build(operation, contract, needs, deep=deep)
            if operation.path.startswith("/client"):
                arguments["_headers"] = {"Origin": ORIGIN}
            api = getattr(sdk_api, operation.api)(client)
            try:
                with warnings.catch_warnings():  # some operations are deprecated in the SDK, still in the API
                    warnings.simplefilter("ignore", DeprecationWarning)
                    getattr(api, f"{operation.name}_with_http_info")(**arguments)
                status, answer = 200, ""
            except voucherify.ApiException as exc:
                status, answer = exc.status, str(exc.body)
            except pydantic.ValidationError:
                status, answer = 200, ""  # the SDK could not read a 2xx answer: not this sweep's concern
            statuses[status] = statuses.get(status, 0) + 1
            sent = client.last.body
            if any(True for _ in null_paths(sent)):
                with_nulls.add(operation.model.__name__)
            label = f"{operation.method} {operation.path} ({operation.model.__name__}{', nested' if deep else ''})"
            if status >= 500 or "should not be null" in answer:
                failures.append(f"{label}: {status} {answer}")
            elif status == 400:
                # The same body without its nulls must get the same answer: then the nulls were not the cause.
                path = operation.path
                for name, value in arguments.items():
                    path = path.replace("{" + re.sub(r"_(\w)", lambda m: m[1].upper(), name) + "}", str(value))
                headers = (
                    management_headers
                    if path.startswith("/management")
                    else {**client_keys, "origin": ORIGIN}
                    if path.startswith("/client")
                    else keys
                )
                replay = http.request(
                    operation.method,
                    path,
                    json=without_nulls(sent, keep_top=operation.method == "PUT"),
                    headers=headers,
                )
                if replay.status_code != 400 or replay.json().get("details") != orjson.loads(answer).get("details"):
                    failures.append(f"{label}: 400 with its nulls, {replay.status_code} without: {answer}")
    models = {operation.model.__name__ for operation in operations}
    print(
        f"\nnull sweep: {len(operations)} operations, {len(models)} request models, "
        f"{len(with_nulls)} of them sent explicit nulls; statuses {sorted(statuses.items())}"
    )
    assert len(models) >= 70, "the sweep found the SDK's request models"
    assert len(with_nulls) >= 60, "from_dict sends explicit nulls"
    assert not failures, "\n".join(failures)
