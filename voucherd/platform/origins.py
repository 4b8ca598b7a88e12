"""Which web origins may call a project's client API (``client_trusted_domains``)."""

from __future__ import annotations

from urllib.parse import urlsplit


def _host(value: str) -> str:
    parts = urlsplit(value if "://" in value else f"//{value}")
    return (parts.netloc or parts.path).lower().rstrip("/")


def allowed(origin: str | None, trusted: list[str] | None) -> bool:
    """``*`` allows any origin (for development); otherwise the origin's host must be listed."""
    domains = trusted or []
    if "*" in domains:
        return True
    if not origin:
        return False
    host = _host(origin)
    return any(host == _host(domain) for domain in domains if domain)
