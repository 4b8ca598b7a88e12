"""What every handler of one server process shares: settings and open connections."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from starlette.requests import Request

from voucherd.checkout.service import Services
from voucherd.platform.auth import KeyCache
from voucherd.platform.scripts import Scripts
from voucherd.platform.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    scripts: Scripts
    keys: KeyCache
    checkout: Services


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def project_id(request: Request) -> str:
    """The project the request's key opened (set by the authentication middleware)."""
    return str(request.scope["state"]["project_id"])
