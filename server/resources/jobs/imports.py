"""The asynchronous imports and bulk updates: each answers at once with ``{"async_action_id"}``.

JSON arrays and CSV files may be up to ``max_upload_bytes``; a CSV comes as ``multipart/form-data`` with the
field ``file`` and is checked (UTF-8, header, required columns, shape) before it is accepted, then kept in the
async action row until a worker has run it. Status codes follow the Voucherify spec (202, or 200 where it says so).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from server.body import decode_for, read_object
from server.context import context, project_id
from server.errors import request_id_of
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.definitions import campaigns
from voucherd.jobs import bulk, imports
from voucherd.platform import async_actions
from voucherd.platform.errors import InvalidPayload, UnsupportedMediaType


async def _read_capped(request: Request) -> bytes:
    limit = context(request).settings.max_upload_bytes
    declared = request.headers.get("content-length")
    too_large = f"The upload is larger than the limit of {limit} bytes."
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise InvalidPayload(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + 64 * 1024:  # room for the multipart framing around a file at the limit
            raise InvalidPayload(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_csv_upload(request: Request, kind: str) -> bytes:
    """The bytes of the ``file`` field of a multipart upload, checked as a CSV of this kind."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidPayload("Send the CSV file as multipart/form-data with the field 'file'.")
    raw = await _read_capped(request)

    async def replay() -> Any:
        yield raw

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=1, max_fields=20).parse()
    except MultiPartException as exc:
        raise InvalidPayload(f"The multipart body is malformed: {exc.message}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidPayload("The multipart body has no file in the field 'file'.")
    data = await upload.read()
    await upload.close()
    limit = context(request).settings.max_upload_bytes
    if len(data) > limit:
        raise InvalidPayload(f"The file is larger than the limit of {limit} bytes.")
    imports.read_csv(data, kind)  # a malformed file is refused now, with the reason
    return data


async def read_array(request: Request, name: str) -> list[Any]:
    """A JSON array body of up to ``max_upload_bytes``; an empty body is an empty array."""
    raw = await _read_capped(request)
    if not raw.strip():
        return []
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower():
        raise UnsupportedMediaType(f"Send the body as application/json, not {content_type}.")
    return bulk.check_list(decode_for(request, raw), name)


async def _enqueue(
    request: Request, action_type: str, params: dict[str, Any], *, upload: bytes | None = None, status: int = 202
) -> ORJSONResponse:
    ctx = context(request)
    async with ctx.pool.acquire() as conn:
        answer = await async_actions.enqueue(
            conn, ctx.redis, project_id(request), action_type, params, upload=upload, request_id=request_id_of(request)
        )
    return ORJSONResponse(answer, status_code=status)


async def _campaign_id(request: Request) -> str:
    async with context(request).pool.acquire() as conn:
        row = await campaigns.fetch_row(conn, project_id(request), request.path_params["campaignId"])
    return str(row["id"])


async def campaign_import(request: Request) -> ORJSONResponse:
    items = await read_array(request, "vouchers")
    return await _enqueue(
        request, "CAMPAIGN.VOUCHERS_IMPORT", {"campaign_id": await _campaign_id(request), "items": items}
    )


async def campaign_import_csv(request: Request) -> ORJSONResponse:
    campaign_id = await _campaign_id(request)
    data = await read_csv_upload(request, "campaign_vouchers")
    return await _enqueue(
        request, "CAMPAIGN.VOUCHERS_IMPORT_CSV", {"campaign_id": campaign_id}, upload=data, status=200
    )


async def vouchers_import(request: Request) -> ORJSONResponse:
    return await _enqueue(request, "VOUCHERS.IMPORT", {"items": await read_array(request, "vouchers")})


async def vouchers_import_csv(request: Request) -> ORJSONResponse:
    return await _enqueue(request, "VOUCHERS.IMPORT_CSV", {}, upload=await read_csv_upload(request, "vouchers"))


async def vouchers_bulk(request: Request) -> ORJSONResponse:
    return await _enqueue(request, "VOUCHERS.BULK_UPDATE", {"items": await read_array(request, "vouchers")})


async def vouchers_metadata(request: Request) -> ORJSONResponse:
    params = bulk.check_metadata_update(await read_object(request, required=False), "codes")
    return await _enqueue(request, "VOUCHERS.METADATA_UPDATE", params)


async def customers_import_csv(request: Request) -> ORJSONResponse:
    return await _enqueue(request, "CUSTOMERS.IMPORT_CSV", {}, upload=await read_csv_upload(request, "customers"))


async def customers_bulk(request: Request) -> ORJSONResponse:
    return await _enqueue(request, "CUSTOMERS.BULK_UPDATE", {"items": await read_array(request, "customers")})


async def customers_metadata(request: Request) -> ORJSONResponse:
    params = bulk.check_metadata_update(await read_object(request, required=False), "source_ids")
    return await _enqueue(request, "CUSTOMERS.METADATA_UPDATE", params)


async def products_import_csv(request: Request) -> ORJSONResponse:
    data = await read_csv_upload(request, "products")
    return await _enqueue(request, "PRODUCTS.IMPORT_CSV", {}, upload=data, status=200)


async def products_bulk(request: Request) -> ORJSONResponse:
    return await _enqueue(request, "PRODUCTS.BULK_UPDATE", {"items": await read_array(request, "products")})


async def products_metadata(request: Request) -> ORJSONResponse:
    params = bulk.check_metadata_update(await read_object(request, required=False), "source_ids")
    return await _enqueue(request, "PRODUCTS.METADATA_UPDATE", params)


async def skus_import_csv(request: Request) -> ORJSONResponse:
    data = await read_csv_upload(request, "skus")
    return await _enqueue(request, "SKUS.IMPORT_CSV", {}, upload=data, status=200)


async def orders_import(request: Request) -> ORJSONResponse:
    items = await read_array(request, "orders")
    return await _enqueue(request, "ORDERS.IMPORT", {"items": items}, status=200)


# These must come before the resource routes with a path parameter at the same depth (``/v1/vouchers/{code}``
# takes POST too): app.py lists this module first.
routes = [
    resource("/v1/campaigns/{campaignId}/import", POST=campaign_import),
    resource("/v1/campaigns/{campaignId}/importCSV", POST=campaign_import_csv),
    resource("/v1/vouchers/import", POST=vouchers_import),
    resource("/v1/vouchers/importCSV", POST=vouchers_import_csv),
    resource("/v1/vouchers/bulk/async", POST=vouchers_bulk),
    resource("/v1/vouchers/metadata/async", POST=vouchers_metadata),
    resource("/v1/customers/importCSV", POST=customers_import_csv),
    resource("/v1/customers/bulk/async", POST=customers_bulk),
    resource("/v1/customers/metadata/async", POST=customers_metadata),
    resource("/v1/products/importCSV", POST=products_import_csv),
    resource("/v1/products/bulk/async", POST=products_bulk),
    resource("/v1/products/metadata/async", POST=products_metadata),
    resource("/v1/skus/importCSV", POST=skus_import_csv),
    resource("/v1/orders/import", POST=orders_import),
]
