"""The official Python SDK drives customers, catalog, orders, segments, events and metadata schemas."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import voucherify

from tests.conftest import LiveServer, ProjectKeys

pytestmark = pytest.mark.slow


def sdk_client(
    server: LiveServer, project: ProjectKeys, management: dict[str, str] | None = None
) -> voucherify.ApiClient:
    keys = {"X-App-Id": project.app_id, "X-App-Token": project.app_token, **(management or {})}
    return voucherify.ApiClient(voucherify.Configuration(host=server.url, api_key=keys))


def test_customers_segments_and_events(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        api = voucherify.CustomersApi(api_client)
        created = api.create_customer(
            voucherify.CustomersCreateRequestBody(
                source_id="sdk-1",
                name="Sdk One",
                email="one@example.com",
                birthdate="1990-02-03",
                address=voucherify.CustomersCreateRequestBodyAddress(city="Berlin", country="DE"),
                metadata={"tier": "gold"},
            )
        )
        assert created.id.startswith("cust_") and created.object == "customer"
        assert created.summary.orders.total_count == 0 and created.loyalty.points == 0
        assert str(created.birthdate) == "1990-02-03" and created.address.city == "Berlin"
        assert api.get_customer("sdk-1").id == created.id

        updated = api.update_customer(created.id, voucherify.CustomersUpdateRequestBody(name="Sdk Uno"))
        assert updated.name == "Sdk Uno" and updated.updated_at is not None

        segments = voucherify.SegmentsApi(api_client)
        segment = segments.create_segment(
            voucherify.SegmentsCreateRequestBody(
                name="Gold", type="auto-update", filter={"metadata.tier": {"conditions": {"$is": "gold"}}}
            )
        )
        assert segment.id.startswith("seg_") and segment.type == "auto-update"
        assert segments.get_segment(segment.id).initial_sync_status == "DONE"
        assert [s.id for s in api.list_customer_segments(created.id).data] == [segment.id]

        event = voucherify.EventsApi(api_client).track_custom_event(
            voucherify.EventsCreateRequestBody(
                event="sdk_event", customer=voucherify.Customer(source_id="sdk-1"), metadata={"k": 1}
            )
        )
        assert event.object == "event" and event.type == "sdk_event" and event.customer.id == created.id

        activity = api.list_customer_activity(created.id, limit=2)
        assert activity.has_more is True and len(activity.data) == 2
        assert activity.data[0].type == "customer.custom_event"
        rest = api.list_customer_activity(created.id, starting_after_id=activity.more_starting_after)
        assert rest.data and rest.has_more is False

        api.create_customer(voucherify.CustomersCreateRequestBody(source_id="sdk-2", name="Sdk Two"))
        listing = api.list_customers(limit=1, order="source_id")
        assert listing.data_ref == "customers" and listing.total == 2 and listing.has_more is True
        assert [c.source_id for c in listing.customers] == ["sdk-1"]
        soon = datetime.now(UTC) + timedelta(minutes=1)
        assert api.list_customers(created_at_before=soon).total == 2
        assert api.list_customers(segment_id=segment.id).total == 1

        segments.delete_segment(segment.id)
        with pytest.raises(voucherify.ApiException) as missing_segment:
            segments.get_segment(segment.id)
        assert missing_segment.value.status == 404

        api.delete_customer("sdk-2")
        with pytest.raises(voucherify.ApiException) as missing:
            api.get_customer("sdk-2")
        assert missing.value.status == 404
        deletion = api.customer_permanently_deletion(created.id)
        assert deletion.status == "DONE" and deletion.related_object_id == created.id


def test_products_skus_and_collections(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        api = voucherify.ProductsApi(api_client)
        product = api.create_product(voucherify.ProductsCreateRequestBody(name="Chair", price=45000))
        assert product.id.startswith("prod_") and product.skus.total == 0
        assert api.get_product(product.id).name == "Chair"
        assert api.update_product(product.id, voucherify.ProductsUpdateRequestBody(price=55000)).price == 55000
        assert len(api.list_products().products) >= 2  # the chair and the built-in shipping product

        sku = api.create_sku(product.id, voucherify.ProductsSkusCreateRequestBody(price=5000))
        assert sku.id.startswith("sku_") and sku.product_id == product.id
        assert api.update_sku(product.id, sku.id, voucherify.ProductsSkusUpdateRequestBody(price=2000)).price == 2000
        assert api.get_sku(sku.id).price == 2000
        assert [s.id for s in api.list_skus_in_product(product.id).skus] == [sku.id]

        collections = voucherify.ProductCollectionsApi(api_client)
        static = collections.create_product_collection(
            voucherify.ProductCollectionsCreateRequestBody(
                type="STATIC",
                name="Chairs",
                products=[
                    voucherify.ProductCollectionsCreateRequestBodyProductsItem(id=product.id, object="product"),
                    voucherify.ProductCollectionsCreateRequestBodyProductsItem(id=sku.id, object="sku"),
                ],
            )
        )
        assert static.object == "products_collection" and len(static.products) == 2
        members = collections.list_products_in_collection(static.id)
        assert [m.object for m in members.data] == ["product", "sku"]
        assert collections.list_product_collections().total == 1
        assert collections.get_product_collection(static.id).name == "Chairs"
        collections.delete_product_collection(static.id)

        api.delete_sku(product.id, sku.id)
        with pytest.raises(voucherify.ApiException):
            api.get_sku(sku.id)
        api.delete_product(product.id)
        with pytest.raises(voucherify.ApiException):
            api.get_product(product.id)


def test_orders(live_server: LiveServer, project: ProjectKeys) -> None:
    with sdk_client(live_server, project) as api_client:
        voucherify.ProductsApi(api_client).create_product(
            voucherify.ProductsCreateRequestBody(source_id="lamp", name="Lamp", price=1500)
        )
        api = voucherify.OrdersApi(api_client)
        order = api.create_order(
            voucherify.OrdersCreateRequestBody(
                source_id="sdk-order",
                customer=voucherify.Customer(name="Buyer", email="buyer@example.com"),
                items=[voucherify.OrderItem(source_id="lamp", related_object="product", quantity=2)],
            )
        )
        assert order.id.startswith("ord_") and order.status == "CREATED" and order.amount == 3000
        assert order.items[0].product.name == "Lamp" and order.items[0].price == 1500
        assert api.get_order(order.id).source_id == "sdk-order"
        assert api.update_order(order.id, voucherify.OrdersUpdateRequestBody(status="PAID")).status == "PAID"
        listing = api.list_orders(limit=10)
        assert listing.data_ref == "orders" and [o.id for o in listing.orders] == [order.id]


def test_metadata_schemas(live_server: LiveServer, project: ProjectKeys, management_headers: dict[str, str]) -> None:
    with sdk_client(live_server, project, management_headers) as api_client:
        management = voucherify.ManagementApi(api_client)
        created = management.create_metadata_schema(
            project.project_id,
            voucherify.ManagementProjectsMetadataSchemasCreateRequestBody(
                related_object="customer",
                allow_defined_only=False,
                properties={"Test": {"type": "string", "array": False, "optional": True, "eq": ["a", "b"]}},
            ),
        )
        assert created.id.startswith("ms_") and created.allow_defined_only is False
        assert [s.id for s in management.list_metadata_schemas1(project.project_id).data] == [created.id]
        management.update_metadata_schema(
            project.project_id,
            created.id,
            voucherify.ManagementProjectsMetadataSchemasUpdateRequestBody(
                allow_defined_only=True, properties={"Test": {"type": "string"}}
            ),
        )
        assert management.get_metadata_schema1(project.project_id, created.id).allow_defined_only is True

        schemas = voucherify.MetadataSchemasApi(api_client)
        assert [s.id for s in schemas.list_metadata_schemas().schemas] == [created.id]
        assert schemas.get_metadata_schema("customer").related_object == "customer"

        customers = voucherify.CustomersApi(api_client)
        with pytest.raises(voucherify.ApiException) as rejected:
            customers.create_customer(voucherify.CustomersCreateRequestBody(source_id="m", metadata={"Other": 1}))
        assert rejected.value.status == 400 and "metadata_validation_failed" in str(rejected.value.body)

        management.delete_metadata_schema(project.project_id, created.id)
        with pytest.raises(voucherify.ApiException) as gone:
            management.get_metadata_schema1(project.project_id, created.id)
        assert gone.value.status == 404


def test_publications(live_server: LiveServer, project: ProjectKeys) -> None:
    campaign = {
        "name": "Sdk auto",
        "type": "AUTO_UPDATE",
        "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}},
    }
    request = urllib.request.Request(
        f"{live_server.url}/v1/campaigns",
        data=json.dumps(campaign).encode(),
        headers={**project.headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    with sdk_client(live_server, project) as api_client:
        api = voucherify.PublicationsApi(api_client)
        publication = api.create_publication(
            join_once=True,
            publications_create_request_body=voucherify.PublicationsCreateRequestBody(
                campaign=voucherify.CreatePublicationCampaign(name="Sdk auto"),
                customer=voucherify.Customer(email="pub@example.com"),
            ),
        )
        assert publication.id.startswith("pub_") and publication.result == "SUCCESS"
        assert publication.voucher.holder_id == publication.customer_id
        code = publication.voucher.code
        again = api.create_publication(
            join_once=False,
            publications_create_request_body=voucherify.PublicationsCreateRequestBody(
                voucher=code, customer=voucherify.Customer(id=publication.customer_id), metadata=None, channel=None
            ),
        )
        assert again.voucher.code == code
        listing = api.list_publications(customer=publication.customer_id)
        assert listing.total == 2 and all(p.vouchers == [code] for p in listing.publications)
