"""The one place that reads the environment.

``Settings.from_env()`` is called once at each entry point (CLI command, server
factory, worker) and the frozen result is passed down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """An environment variable has a value we cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    # Storage. Empty means "start our own under data_dir" (the launcher fills them in).
    redis_url: str = ""
    database_url: str = ""
    data_dir: Path = field(default_factory=lambda: Path(".voucherd"))
    redis_appendfsync: str = "everysec"

    # HTTP server.
    host: str = "127.0.0.1"
    port: int = 8000
    server_processes: int = 1  # from the environment: one per core unless set
    worker_processes: int = 1
    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 64 << 20

    # Keys of the default project / management key, fixed when set.
    app_id: str = ""
    app_token: str = ""
    management_id: str = ""
    management_token: str = ""

    # Behaviour.
    auth_cache_seconds: float = 10.0
    db_pool_min: int = 1
    db_pool_max: int = 10
    log_level: str = "INFO"
    log_format: str = "auto"  # auto (json; text for `voucherd run`) | json | text
    worker_claim_idle_ms: int = 30_000
    worker_max_tries: int = 5
    worker_linger_ms: int = 20  # after a poll that found few messages, wait for more (larger write-behind batches)
    stream_retention_s: int = 900  # acknowledged stream entries are kept this long, then trimmed
    client_rate_limit: int = 5  # client API requests per IP per window, as Voucherify
    client_rate_window_ms: int = 5_000
    trust_proxy: bool = False  # take the client IP from X-Forwarded-For (only behind your own proxy)
    access_log: bool = True  # one log line per request
    metrics_dir: str = ""  # where server processes share their metrics (set by `voucherd serve`)
    webhook_retry_base_ms: int = 60_000  # first webhook retry after this; each later one waits twice as long
    webhook_max_attempts: int = 12  # a delivery failing this many times is FAILED and its webhook disabled
    loyalty_timer_ms: int = 60_000  # worker wake-up for due pending points and expiring points (0: off)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        cpu = os.cpu_count() or 1
        return cls(
            redis_url=env.get("REDIS_URL", ""),
            database_url=env.get("DATABASE_URL", ""),
            data_dir=Path(env.get("VOUCHERD_DATA_DIR") or ".voucherd"),
            redis_appendfsync=_choice(env, "VOUCHERD_REDIS_APPENDFSYNC", "everysec", ("everysec", "always", "no")),
            host=env.get("VOUCHERD_HOST") or "127.0.0.1",
            port=_int(env, "VOUCHERD_PORT", 8000, minimum=1),
            server_processes=_int(env, "VOUCHERD_SERVER_PROCESSES", cpu, minimum=1),
            worker_processes=_int(env, "VOUCHERD_WORKER_PROCESSES", 1, minimum=0),
            max_body_bytes=_int(env, "VOUCHERD_MAX_BODY_BYTES", 1 << 20, minimum=1024),
            max_upload_bytes=_int(env, "VOUCHERD_MAX_UPLOAD_BYTES", 64 << 20, minimum=1024),
            app_id=env.get("VOUCHERD_APP_ID", ""),
            app_token=env.get("VOUCHERD_APP_TOKEN", ""),
            management_id=env.get("VOUCHERD_MANAGEMENT_ID", ""),
            management_token=env.get("VOUCHERD_MANAGEMENT_TOKEN", ""),
            auth_cache_seconds=_int(env, "VOUCHERD_AUTH_CACHE_SECONDS", 10),
            db_pool_min=_int(env, "VOUCHERD_DB_POOL_MIN", 1),
            db_pool_max=_int(env, "VOUCHERD_DB_POOL_MAX", 10, minimum=1),
            log_level=(env.get("VOUCHERD_LOG_LEVEL") or "INFO").upper(),
            log_format=_choice(env, "VOUCHERD_LOG_FORMAT", "auto", ("auto", "json", "text")),
            worker_claim_idle_ms=_int(env, "VOUCHERD_WORKER_CLAIM_IDLE_MS", 30_000, minimum=1),
            worker_max_tries=_int(env, "VOUCHERD_WORKER_MAX_TRIES", 5, minimum=1),
            worker_linger_ms=_int(env, "VOUCHERD_WORKER_LINGER_MS", 20),
            stream_retention_s=_int(env, "VOUCHERD_STREAM_RETENTION_S", 900),
            client_rate_limit=_int(env, "VOUCHERD_CLIENT_RATE_LIMIT", 5, minimum=1),
            client_rate_window_ms=_int(env, "VOUCHERD_CLIENT_RATE_WINDOW_MS", 5_000, minimum=1),
            trust_proxy=_bool(env, "VOUCHERD_TRUST_PROXY", False),
            access_log=_bool(env, "VOUCHERD_ACCESS_LOG", True),
            metrics_dir=env.get("VOUCHERD_METRICS_DIR", ""),
            webhook_retry_base_ms=_int(env, "VOUCHERD_WEBHOOK_RETRY_BASE_MS", 60_000),
            webhook_max_attempts=_int(env, "VOUCHERD_WEBHOOK_MAX_ATTEMPTS", 12, minimum=1),
            loyalty_timer_ms=_int(env, "VOUCHERD_LOYALTY_TIMER_MS", 60_000),
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The environment that makes ``from_env`` rebuild these settings in a child process."""
        return {
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.database_url,
            "VOUCHERD_DATA_DIR": str(self.data_dir),
            "VOUCHERD_REDIS_APPENDFSYNC": self.redis_appendfsync,
            "VOUCHERD_HOST": self.host,
            "VOUCHERD_PORT": str(self.port),
            "VOUCHERD_SERVER_PROCESSES": str(self.server_processes),
            "VOUCHERD_WORKER_PROCESSES": str(self.worker_processes),
            "VOUCHERD_MAX_BODY_BYTES": str(self.max_body_bytes),
            "VOUCHERD_MAX_UPLOAD_BYTES": str(self.max_upload_bytes),
            "VOUCHERD_APP_ID": self.app_id,
            "VOUCHERD_APP_TOKEN": self.app_token,
            "VOUCHERD_MANAGEMENT_ID": self.management_id,
            "VOUCHERD_MANAGEMENT_TOKEN": self.management_token,
            "VOUCHERD_AUTH_CACHE_SECONDS": str(int(self.auth_cache_seconds)),
            "VOUCHERD_DB_POOL_MIN": str(self.db_pool_min),
            "VOUCHERD_DB_POOL_MAX": str(self.db_pool_max),
            "VOUCHERD_LOG_LEVEL": self.log_level,
            "VOUCHERD_LOG_FORMAT": self.log_format,
            "VOUCHERD_WORKER_CLAIM_IDLE_MS": str(self.worker_claim_idle_ms),
            "VOUCHERD_WORKER_MAX_TRIES": str(self.worker_max_tries),
            "VOUCHERD_WORKER_LINGER_MS": str(self.worker_linger_ms),
            "VOUCHERD_STREAM_RETENTION_S": str(self.stream_retention_s),
            "VOUCHERD_CLIENT_RATE_LIMIT": str(self.client_rate_limit),
            "VOUCHERD_CLIENT_RATE_WINDOW_MS": str(self.client_rate_window_ms),
            "VOUCHERD_TRUST_PROXY": "true" if self.trust_proxy else "false",
            "VOUCHERD_ACCESS_LOG": "true" if self.access_log else "false",
            "VOUCHERD_METRICS_DIR": self.metrics_dir,
            "VOUCHERD_WEBHOOK_RETRY_BASE_MS": str(self.webhook_retry_base_ms),
            "VOUCHERD_WEBHOOK_MAX_ATTEMPTS": str(self.webhook_max_attempts),
            "VOUCHERD_LOYALTY_TIMER_MS": str(self.loyalty_timer_ms),
        }


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw
