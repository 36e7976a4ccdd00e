"""Composition root: build Settings-driven services once and hand them to the connectors.

With ``cli``, ``connectors`` and ``scheduler``, the only modules of ``bot/`` that may import ``storage``
and ``adapters``; the rest of ``bot/`` is the core (``tests/test_import_rules.py``).

Explicit lifecycle (after python-telegram-bot): ``initialize`` (database, migrations, model),
``run`` (connect and listen on every connector in one event loop), ``shutdown`` (close everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from bot.admin import Admin
from bot.config import Settings
from bot.engine import Engine, EngineOptions
from bot.files import FileLimits
from bot.home import Home
from bot.model import ModelClient
from bot.ports import Connector
from bot.rehearsal import RehearsalModel
from bot.scheduler import holder_id
from storage.db import open_database, upgrade
from storage.repository import Repository

log = logging.getLogger(__name__)

# The cyclic garbage collector's first threshold for a running server (CPython's default is 700
# allocations). In a burst every accepted event keeps its request, context and waiting turn alive, so
# the heap grows by a few hundred thousand objects within seconds, and at the default each 25 % of
# growth set off a full collection of everything: bench/burst.py measured about 0.85 s of collections
# (three full ones of 80-250 ms each, in the middle of the acknowledgements) among 4.5 s of them, and
# none, with 0.3 s of young collections, at this threshold.
GC_FIRST_THRESHOLD = 10_000


@dataclass
class Services:
    settings: Settings
    repo: Repository
    model: ModelClient
    engine: Engine
    admin: Admin
    home: Home

    async def aclose(self) -> None:
        # The engine first: it releases this process's unfinished inbox entries to recovery.
        await self.engine.aclose()
        await self.model.aclose()
        await self.repo.close()


def file_limits(settings: Settings) -> FileLimits:
    return FileLimits(
        max_files=settings.files_max_count,
        max_file_bytes=settings.file_max_bytes,
        max_total_bytes=settings.files_max_total_bytes,
        max_pdf_pages=settings.pdf_max_pages,
        max_text_chars=settings.text_file_max_chars,
        timeout_seconds=settings.file_timeout_seconds,
    )


def build_model(settings: Settings) -> ModelClient:
    if settings.rehearsal:
        return RehearsalModel()
    from bot.claude import AnthropicModel

    return AnthropicModel(settings)


async def initialize(
    settings: Settings, *, model: ModelClient | None = None, migrate: bool = True
) -> Services:
    if migrate:
        await upgrade(settings.database_url)
    repo = Repository(open_database(settings.database_url), lock_idle_seconds=settings.lock_idle_seconds)
    model = model or build_model(settings)
    engine = Engine(
        repo,
        model,
        EngineOptions(
            max_output_tokens=settings.max_output_tokens,
            context_budget_tokens=settings.context_budget_tokens,
            max_concurrent_turns=settings.max_concurrent_turns,
            turn_deadline_seconds=settings.turn_deadline_seconds,
            inbox_lease_seconds=settings.inbox_lease_seconds,
            lock_wait_seconds=settings.lock_wait_seconds,
            recovery_seconds=settings.recovery_seconds,
            files=file_limits(settings),
        ),
        # The repository is the inbox too; the owner id names this process in it (and in the logs).
        inbox=repo,
        owner=holder_id(),
    )
    log.info(
        "haven initialized", extra={"rehearsal": model.rehearsal, "database": repo.database.dialect.name}
    )
    return Services(settings, repo, model, engine, Admin(repo), Home(repo))


def settle_heap() -> None:
    """Once start-up is done, before the connectors take traffic: the objects made so far (modules,
    settings, the apps) live as long as the process, so the collector stops scanning them
    (``gc.freeze``), and it runs less often (``GC_FIRST_THRESHOLD``). Only for the process that serves:
    it changes the interpreter's collector for everything in it."""
    gc.collect()  # what start-up left behind goes now, not into the frozen set for good
    gc.freeze()
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])


async def run_connectors(connectors: Sequence[Connector]) -> None:
    """Connect all, listen on all; the first to finish (or SIGINT/SIGTERM) stops the rest."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    try:
        for c in connectors:
            await c.connect()
            log.info("connector connected", extra={"connector": c.name})
        tasks = [asyncio.create_task(c.listen(), name=f"listen:{c.name}") for c in connectors]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for t in done:
            if t is not stopper and (exc := t.exception()) is not None:
                raise exc
    finally:
        # Together: each connector lets its turns finish within the same HAVEN_SHUTDOWN_SECONDS.
        await asyncio.gather(*(c.disconnect() for c in connectors), return_exceptions=True)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
