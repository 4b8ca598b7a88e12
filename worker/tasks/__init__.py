"""One module per stream; the module name is the stream name."""

from __future__ import annotations

import importlib
import pkgutil

from worker.base import REGISTRY, Registry


def discover() -> Registry:
    """Import every ``worker.tasks`` module; each registers its task on import."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY
