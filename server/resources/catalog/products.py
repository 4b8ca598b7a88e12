"""``/v1/products``, ``/v1/skus`` and ``/v1/product-collections``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.body import read_object
from server.context import context, project_id
from server.responses import ORJSONResponse
from server.routing import resource
from voucherd.catalog import products


async def list_products(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await products.list_products(conn, project_id(request), request.query_params)
    return ORJSONResponse(body)


async def create_product(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        product = await products.create_product(conn, project_id(request), body)
    return ORJSONResponse(product)


async def get_product(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        product = await products.get_product(conn, project_id(request), request.path_params["productId"])
    return ORJSONResponse(product)


async def update_product(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        product = await products.update_product(conn, project_id(request), request.path_params["productId"], body)
    return ORJSONResponse(product)


async def delete_product(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        await products.delete_product(conn, project_id(request), request.path_params["productId"])
    return Response(status_code=204)


async def list_skus(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await products.list_skus(
            conn, project_id(request), request.path_params["productId"], request.query_params
        )
    return ORJSONResponse(body)


async def create_sku(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        sku = await products.create_sku(conn, project_id(request), request.path_params["productId"], body)
    return ORJSONResponse(sku)


async def get_product_sku(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        sku = await products.get_sku(
            conn, project_id(request), request.path_params["skuId"], request.path_params["productId"]
        )
    return ORJSONResponse(sku)


async def update_sku(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        sku = await products.update_sku(conn, project_id(request), params["productId"], params["skuId"], body)
    return ORJSONResponse(sku)


async def delete_sku(request: Request) -> Response:
    params = request.path_params
    async with context(request).pool.acquire() as conn:
        await products.delete_sku(conn, project_id(request), params["productId"], params["skuId"])
    return Response(status_code=204)


async def get_sku(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        sku = await products.get_sku(conn, project_id(request), request.path_params["skuId"])
    return ORJSONResponse(sku)


async def list_collections(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await products.list_collections(conn, project_id(request), request.query_params)
    return ORJSONResponse(body)


async def create_collection(request: Request) -> ORJSONResponse:
    body = await read_object(request)
    async with context(request).pool.acquire() as conn:
        collection = await products.create_collection(conn, project_id(request), body)
    return ORJSONResponse(collection)


async def get_collection(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        collection = await products.get_collection(
            conn, project_id(request), request.path_params["productCollectionId"]
        )
    return ORJSONResponse(collection)


async def delete_collection(request: Request) -> Response:
    async with context(request).pool.acquire() as conn:
        await products.delete_collection(conn, project_id(request), request.path_params["productCollectionId"])
    return Response(status_code=204)


async def list_collection_products(request: Request) -> ORJSONResponse:
    async with context(request).pool.acquire() as conn:
        body = await products.list_collection_products(
            conn, project_id(request), request.path_params["productCollectionId"], request.query_params
        )
    return ORJSONResponse(body)


routes = [
    resource("/v1/products", GET=list_products, POST=create_product),
    resource("/v1/products/{productId}", GET=get_product, PUT=update_product, DELETE=delete_product),
    resource("/v1/products/{productId}/skus", GET=list_skus, POST=create_sku),
    resource("/v1/products/{productId}/skus/{skuId}", GET=get_product_sku, PUT=update_sku, DELETE=delete_sku),
    resource("/v1/skus/{skuId}", GET=get_sku),
    resource("/v1/product-collections", GET=list_collections, POST=create_collection),
    resource("/v1/product-collections/{productCollectionId}", GET=get_collection, DELETE=delete_collection),
    resource("/v1/product-collections/{productCollectionId}/products", GET=list_collection_products),
]
