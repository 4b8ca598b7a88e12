"""The console's mount: its pages, its static files, and the login check around them.

Adding a page: a module in ``server/console/`` exporting ``routes`` (built with ``routing.page``), one
line in ``PAGES`` below, and its nav entry in ``templating.NAV``.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from server.console import (
    async_actions,
    campaigns,
    codes,
    customers,
    exports,
    live,
    login,
    validation_rules,
    webhooks,
)
from server.console.guard import SessionGuard
from server.console.routing import page
from server.console.templating import HERE
from voucherd.platform.errors import NotFound

# One line per page module, so that parallel additions do not collide.
PAGES: list[BaseRoute] = [
    *login.routes,
    *campaigns.routes,
    *codes.routes,
    *validation_rules.routes,
    *customers.routes,
    *async_actions.routes,
    *exports.routes,
    *webhooks.routes,
    *live.routes,
]


async def not_found(request: Request) -> Response:
    raise NotFound(f"There is no console page at {request.url.path}.")


routes: list[BaseRoute] = [
    Mount(
        "/console",
        routes=[
            *PAGES,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            page("/{path:path}", GET=not_found),  # an HTML 404 (behind the login check) instead of the API's JSON
        ],
        middleware=[Middleware(SessionGuard)],
    )
]
