"""The ops endpoint: ``/healthz``, ``/readyz`` and ``/metrics`` on ``HAVEN_OPS_PORT`` in every ``haven run``
mode (Slack Socket Mode or HTTP, Discord, both), bound to ``HAVEN_BIND_ADDRESS``; not for the terminal.

One small aiohttp server of its own, in every mode, rather than extra routes on Slack's HTTP server: the
same port and answers whatever the platforms, and ``/metrics`` never shares the port that faces Slack
(keep the ops port private). Slack's ``PORT`` keeps its own ``/healthz`` (the process is alive).

- ``/healthz``: 200 while the process runs its event loop.
- ``/readyz``: 200 only when the database answers ``SELECT 1`` within ``DB_TIMEOUT``, every connector
  says it is ready (``Connector.ready``) and the model was reachable within ``HAVEN_READY_MODEL_MINUTES``
  (``bot.metrics.ModelHealth``; a process that has not called it yet counts as reachable); else 503,
  with a JSON body naming each check and the failing ones.
- ``/metrics``: Prometheus text format from ``bot.metrics.Metrics``' registry; the inbox depth is read
  from the database as it is scraped.

If the port cannot be bound (another process on the host has it), Haven logs a warning and keeps
answering people without the endpoint: the ops port must not take the chat down.

Composition root (see ``bot.app``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import Metrics
from bot.ports import Connector

if TYPE_CHECKING:
    from bot.app import Services
    from bot.config import Settings

log = logging.getLogger(__name__)

DB_TIMEOUT = 2.0  # seconds for the readiness query and for the inbox depth at scrape time
CONNECTOR_TIMEOUT = 1.0


class Readiness:
    """The checks behind ``/readyz``. At most one database probe runs at a time: a hung database costs
    one worker thread, however often the orchestrator asks."""

    def __init__(
        self,
        database: Callable[[], Awaitable[object]],
        connectors: Sequence[Connector],
        metrics: Metrics,
        *,
        model_window_seconds: float,
    ) -> None:
        self._database = database
        self._connectors = list(connectors)
        self._metrics = metrics
        self._window = model_window_seconds
        self._probe: asyncio.Future[object] | None = None

    async def _database_ok(self) -> bool:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._database())
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), DB_TIMEOUT)
        except Exception as exc:  # unreachable, refused, timed out: all mean "not ready"
            log.debug("readiness: database check failed", extra={"error": type(exc).__name__})
            return False
        return True

    async def _connector_ok(self, connector: Connector) -> bool:
        try:
            return bool(await asyncio.wait_for(connector.ready(), CONNECTOR_TIMEOUT))
        except Exception as exc:
            log.debug("readiness: connector check failed", extra={"connector": connector.name, "error": exc})
            return False

    async def check(self) -> dict[str, bool]:
        """Each check's name and whether it passes: ``database``, one per connector, ``model``."""
        names = ["database", *(c.name for c in self._connectors)]
        results = await asyncio.gather(
            self._database_ok(), *(self._connector_ok(c) for c in self._connectors)
        )
        checks = dict(zip(names, results, strict=True))
        checks["model"] = self._metrics.model_health.reachable(self._window)
        for name, ok in checks.items():
            self._metrics.ready.labels(name).set(1.0 if ok else 0.0)
        return checks


class OpsServer:
    """The aiohttp server for the three routes; ``start`` binds, ``stop`` closes (safe twice)."""

    def __init__(
        self,
        readiness: Readiness,
        metrics: Metrics,
        *,
        host: str,
        port: int,
        inbox_depth: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.readiness = readiness
        self.metrics = metrics
        self.host = host
        self.port = port
        self._inbox_depth = inbox_depth
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> bool:
        """Bind and serve; False (and a warning) when the address cannot be bound."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.warning(
                "ops endpoint not started: cannot listen; set HAVEN_OPS_PORT to a free port "
                "(one per process on a host)",
                extra={"host": self.host, "port": self.port, "error": exc.strerror or type(exc).__name__},
            )
            return False
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])
        log.info("ops endpoint listening", extra={"host": self.host, "port": self.port})
        return True

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, _: web.Request) -> web.Response:
        checks = await self.readiness.check()
        failing = [name for name, ok in checks.items() if not ok]
        body: dict[str, Any] = {
            "ok": not failing,
            "checks": {name: "ok" if ok else "failing" for name, ok in checks.items()},
        }
        if failing:
            body["failing"] = failing
        return web.json_response(body, status=503 if failing else 200)

    async def _metrics(self, _: web.Request) -> web.Response:
        if self._inbox_depth is not None:
            try:
                depth = float(await asyncio.wait_for(self._inbox_depth(), DB_TIMEOUT))
            except Exception:
                depth = float("nan")  # unknown while the database is away; never a stale number
            self.metrics.inbox_pending.set(depth)
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def database_probe(services: Services) -> Callable[[], Awaitable[object]]:
    """``SELECT 1`` on a worker thread of the repository's database."""
    from sqlalchemy import text

    database = services.repo.database

    def ping() -> object:
        with database.read() as conn:
            return conn.execute(text("SELECT 1")).scalar()

    return lambda: database.run(ping)


def ops_server(
    settings: Settings,
    services: Services,
    connectors: Sequence[Connector],
    metrics: Metrics,
    *,
    port: int | None = None,
) -> OpsServer:
    """The ops server of ``haven run``: the database of ``services``, ``connectors`` (unwrapped),
    ``metrics``; turns in flight from the engine's admission."""
    admission = services.engine.admission
    metrics.watch(in_flight=lambda: admission.running, waiting=lambda: admission.waiting)
    readiness = Readiness(
        database_probe(services),
        connectors,
        metrics,
        model_window_seconds=settings.ready_model_minutes * 60,
    )
    return OpsServer(
        readiness,
        metrics,
        host=settings.bind_address,
        port=settings.ops_port if port is None else port,
        inbox_depth=services.engine.pending,
    )
