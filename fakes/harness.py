"""Build real Haven services for tests: real storage (migrated), real SDK against the fake server."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

from bot.app import Services, initialize
from bot.config import Settings

TEST_MODEL = "claude-sonnet-4-6"


def make_settings(database_url: str, anthropic_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for a test; an ``anthropic_url`` means a real SDK client pointed at the fake server.

    Retries are kept but made fast (base delay 0), so outage tests still exercise the retry loop.
    ``_env_file=None`` keeps a developer's .env out of the tests.
    """
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "HAVEN_MODEL": TEST_MODEL,
        "HAVEN_RETRY_BASE_SECONDS": 0.0,
        "HAVEN_RETRY_MAX_SECONDS": 0.0,
        "HAVEN_MODEL_TIMEOUT": 5.0,
        "ANTHROPIC_API_KEY": "test-key" if anthropic_url else None,
        "ANTHROPIC_BASE_URL": anthropic_url,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def sqlite_copy(template: Path, directory: Path) -> str:
    """The URL of a new SQLite file ``haven.db`` in ``directory`` holding what ``template`` holds (tests
    copy one database migrated once rather than migrate each of their own)."""
    target = directory / "haven.db"
    # SQLite's backup API rather than a file copy: it copies a consistent database whatever its journal.
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"


@asynccontextmanager
async def services_for(settings: Settings) -> AsyncIterator[Services]:
    services = await initialize(settings)
    # A process imports the Anthropic SDK on its first model call (bot.claude); here it is imported now,
    # so that a test's deadlines time its turns and not a 1.5-2.5 s import (test_lightness covers that).
    client = getattr(services.model, "client", None)
    if client is not None:
        await client()
    try:
        yield services
    finally:
        await services.aclose()
