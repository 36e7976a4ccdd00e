"""Structured one-line-per-event logging.

Callers log an event name plus ids and counts as ``extra`` fields; message text and secrets are never
passed in, so nothing sensitive can reach INFO.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# Libraries that log request lines or payloads at INFO/DEBUG.
_NOISY = (
    "httpx",
    "httpx2",
    "httpcore",
    "anthropic",
    "slack_bolt",
    "slack_sdk",
    "discord",
    "aiohttp.access",
    "apscheduler",
    "alembic",
)


def utc_timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-12-02T04:33:10.123Z``."""
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            utc_timestamp(record),
            record.levelname,
            record.name,
            record.getMessage(),
        ]
        parts += [f"{k}={v}" for k, v in _fields(record).items()]
        line = " ".join(str(p) for p in parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": utc_timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        # Capped at WARNING unless Haven runs at DEBUG: then every library says everything too.
        logging.getLogger(name).setLevel(
            logging.NOTSET if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
        )
