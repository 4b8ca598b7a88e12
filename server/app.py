"""Builds the ASGI application. ``create_app`` is granian's factory target."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from server.auth import AuthMiddleware
from server.client_api import ClientApiMiddleware
from server.console import site as console
from server.context import AppContext
from server.errors import UNAVAILABLE, handle_http_exception, handle_unavailable, handle_voucherd_error
from server.middleware import RequestContextMiddleware
from server.nulls import contract_shapes
from server.resources.catalog import customers, locations, orders, products, publications, segments
from server.resources.checkout import client, qualifications, redemptions, validations, voucher_checkout
from server.resources.definitions import (
    campaign_transactions,
    campaigns,
    categories,
    metadata_schemas,
    promotions,
    stacking_rules,
    templates,
    trash_bin,
    validation_rules,
    vouchers,
)
from server.resources.jobs import async_actions, exports, imports, webhooks
from server.resources.loyalty import events, loyalties, points_expiration, referrals, rewards
from server.resources.platform import floor, health, metrics, openapi, projects
from server.telemetry import TelemetryMiddleware
from voucherd.checkout.hot_definitions import DefinitionsCache
from voucherd.checkout.service import Services
from voucherd.platform.auth import KeyCache
from voucherd.platform.db import create_pool
from voucherd.platform.errors import VoucherdError
from voucherd.platform.logs import configure_logging
from voucherd.platform.messages import StreamAnnouncer
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings

# How long a stopping process lets in-flight requests return their database connections.
SHUTDOWN_GRACE_SECONDS = 5

# Starlette tries routes in order, about a microsecond each, so the checkout calls come first:
# at the end of the list, matching cost more CPU than the floor endpoint's whole request.
# One line per resource module, so parallel additions do not collide.
ROUTES = [
    *validations.routes,
    *redemptions.routes,
    *voucher_checkout.routes,
    *qualifications.routes,
    *client.routes,
    *floor.routes,
    *health.routes,
    *openapi.routes,  # issue 11
    *projects.routes,
    *categories.routes,
    *async_actions.routes,
    *imports.routes,  # issue 7; before the routes whose {param} would take /import, /bulk, …
    *exports.routes,  # issue 17; before /v1/orders/{orderId} and the like
    *templates.routes,  # issue 17
    *trash_bin.routes,  # issue 17
    *locations.routes,  # issue 17
    *points_expiration.routes,  # issue 17
    *campaign_transactions.routes,  # issue 17
    *webhooks.routes,  # issue 7
    *metrics.routes,  # issue 7
    *customers.routes,
    *segments.routes,
    *products.routes,
    *orders.routes,
    *events.routes,
    *metadata_schemas.routes,
    *publications.routes,
    *loyalties.routes,  # issue 9
    *rewards.routes,  # issue 9
    *referrals.routes,  # issue 9
    *validation_rules.routes,
    *promotions.routes,
    *stacking_rules.routes,
    *campaigns.routes,
    *vouchers.routes,
    *console.routes,  # issue 19: the admin console (HTML, its own login), last: no API request pays for it
]


def build_app(settings: Settings, routes: list[BaseRoute] | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        contract_shapes()  # compiled here, so that no request waits for it
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        redis = create_redis(settings.redis_url)
        scripts = scripts_for(redis)
        app.state.ctx = AppContext(
            settings=settings,
            pool=pool,
            redis=redis,
            scripts=scripts,
            keys=KeyCache(pool, settings.auth_cache_seconds),
            checkout=Services(redis, scripts, pool, DefinitionsCache(pool), StreamAnnouncer(redis)),
        )
        try:
            yield
        finally:
            await redis.aclose()
            # A graceful close waits for every connection to come back; one stuck on an
            # unreachable database would hold the shutdown forever.
            try:
                await asyncio.wait_for(pool.close(), SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                pool.terminate()

    return Starlette(
        routes=ROUTES if routes is None else routes,
        middleware=[
            Middleware(RequestContextMiddleware),
            Middleware(TelemetryMiddleware),
            Middleware(ClientApiMiddleware),
            Middleware(AuthMiddleware),
        ],
        exception_handlers={
            VoucherdError: handle_voucherd_error,
            HTTPException: handle_http_exception,
            **dict.fromkeys(UNAVAILABLE, handle_unavailable),
        },
        lifespan=lifespan,
    )


def create_app() -> Starlette:
    """Entry point of each server process: settings come from the environment here, once."""
    settings = Settings.from_env()
    configure_logging(settings)
    return build_app(settings)
