"""Logging configuration: JSON lines in production, readable text for ``make run``."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import orjson

from voucherd.platform.settings import Settings


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "project_id", "route", "status", "duration_ms", "task", "stream"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(settings: Settings) -> None:
    formatter = "text" if settings.log_format == "text" else "json"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {"()": JSONFormatter},
                "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
            },
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": formatter}},
            "root": {"handlers": ["stderr"], "level": settings.log_level},
            "loggers": {"asyncio": {"level": "WARNING"}},
        }
    )
