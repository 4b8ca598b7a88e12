"""Customers: the list with a search box (name, email or source_id), and a customer's page with their wallet
(the codes, gift cards and loyalty cards they hold, with live balances) and loyalty points."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.console.routing import page
from server.console.templating import render
from server.context import context, project_id
from voucherd.catalog import customer_search
from voucherd.checkout import customer_holdings, pending_parties
from voucherd.platform.errors import NotFound, VoucherdError

PAGE_SIZE = 25


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 7 else 1


async def list_page(request: Request) -> Response:
    text = request.query_params.get("q", "")
    number = _page_number(request)
    values: dict[str, object] = {"q": text, "page": number, "customers": [], "total": 0, "search_error": ""}
    try:
        async with context(request).pool.acquire() as conn:
            items, total = await customer_search.search(
                conn, project_id(request), text, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
            )
    except VoucherdError as error:
        values["search_error"] = error.details or error.message
        return await render(request, "customers/list.html", values, status=error.code)
    pages = max(1, -(-total // PAGE_SIZE))
    values.update(customers=items, total=total, pages=pages)
    return await render(request, "customers/list.html", values)


async def customer_page(request: Request) -> Response:
    ctx = context(request)
    project = project_id(request)
    async with ctx.pool.acquire() as conn:
        # As GET /v1/customers/{id}: a customer a redemption just named is shown before the worker wrote it.
        customer = await pending_parties.get_customer(ctx.redis, conn, project, request.path_params["customerId"])
        try:
            holdings = await customer_holdings.of_customer(conn, ctx.redis, project, customer["id"])
        except NotFound:  # not in PostgreSQL yet: it holds nothing there
            holdings = customer_holdings.Holdings()
    return await render(request, "customers/show.html", {"customer": customer, "holdings": holdings})


routes = [
    page("/customers", GET=list_page),
    page("/customers/{customerId}", GET=customer_page),
]
