"""SlackConnector: Haven on Slack via Socket Mode (SLACK_APP_TOKEN) or HTTP (SLACK_SIGNING_SECRET).

Stopping (``disconnect``, on SIGTERM): new work is refused first — HTTP answers ``/slack/events`` with 503,
so Slack delivers the event again (to another process, or to this one after the restart); Socket Mode
disconnects, so Slack redelivers what was not acknowledged. Then the turns already accepted, including
those queued behind another turn of their thread, get ``HAVEN_SHUTDOWN_SECONDS`` to finish; the engine
stops whatever is still answering then, and its thread gets the restart note (``bot.admission``).

The HTTP server is hardened against slow and half-open clients (see the constants below): they are
dropped after ``IDLE_SECONDS``, a body must arrive within ``BODY_SECONDS``, and at most
``HAVEN_HTTP_MAX_CONNECTIONS`` connections stay open, the longest-idle one making room for a new one.

Many workspaces (``Installs``: ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET``) is HTTP mode plus Bolt's
install pages, ``/slack/install`` and ``/slack/oauth_redirect``; there is no bot token to check at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot
from adapters.slack.retry import count_api_errors
from adapters.slack.translate import PLATFORM
from adapters.slack.workspaces import INSTALL_PATH, REDIRECT_PATH, Departed, Installs
from bot.admission import NOTE_SECONDS
from bot.ports import CoreServices, StartupError
from bot.types import Digest

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# aiohttp closes a connection that has not sent a whole request head within keepalive_timeout of
# connecting or of its last response: one clock for the header time-out (a slowloris client that sends
# half a header and stalls) and the idle keep-alive time-out. Slack sends a request at once.
IDLE_SECONDS = 10.0
# A request's body must have arrived this long after its head (Slack's are small and sent at once).
BODY_SECONDS = 10.0
# Slack's event, command and interaction payloads are far smaller; aiohttp answers 413 beyond it.
MAX_BODY_BYTES = 1024 * 1024
# Handlers still running when the server closes (after the drain) are cancelled after this long.
HTTP_CLOSE_SECONDS = 2.0


EventsHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SlackConfigError(StartupError):
    """Slack credentials are missing or rejected; the message says which."""


class SlackConnector:
    name = "slack"

    def __init__(
        self,
        services: CoreServices,
        *,
        client: AsyncWebClient | None = None,
        host: str | None = None,
        port: int | None = None,
        installs: Installs | None = None,
        departed: Departed | None = None,
    ) -> None:
        settings = services.settings
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        self._installs = installs
        if installs is not None:
            # Each workspace's token comes from its installation; the install pages need HTTP.
            if not secret:
                raise SlackConfigError("SLACK_SIGNING_SECRET is not set (installs into many workspaces)")
            self._app_token: str | None = None
            token: str | None = None
        else:
            if settings.slack_bot_token is None:
                raise SlackConfigError("SLACK_BOT_TOKEN is not set")
            self._app_token = (
                settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
            )
            if self._app_token is None and not secret:
                raise SlackConfigError(
                    "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
                )
            token = settings.slack_bot_token.get_secret_value()
        self._client = client or AsyncWebClient(token=token, base_url=settings.slack_api_url)
        # A client of our own gets one keep-alive session at connect (see there); a given one is left as is.
        self._owns_session = client is None
        self._host = host if host is not None else settings.bind_address
        self._port = port if port is not None else settings.port
        # Socket Mode requests carry no signature; HTTP requests must, so the secret is required there.
        # SlackBot installs Haven's retry handlers (429 / 5xx / connection errors) on the client.
        self.bot = SlackBot(
            services, self._client, signing_secret=secret, installs=installs, departed=departed
        )
        count_api_errors(self._client, lambda: services.engine.metrics)
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self._closed = False
        self._accepting = True
        self._services = services
        self._auth: dict[str, Any] | None = None  # the bot token's auth.test, once connected

    @property
    def mode(self) -> str:
        return "socket" if self._app_token else "http"

    async def connect(self) -> None:
        self._stopped = asyncio.Event()
        if self._owns_session and self._client.session is None:
            # Without a session slack_sdk opens and closes a connection for every Web API call (about
            # 1 ms of CPU and 3 ms of wall time each); Bolt's per-request clients take this one too.
            self._client.session = aiohttp.ClientSession()
        if self._installs is not None:
            self._services.engine.attach(PLATFORM, self.bot.recovery)
            await self._serve_http()
            log.info(
                "slack connected",
                extra={"workspace": "many", "mode": self.mode, "api": self._client.base_url},
            )
            return
        try:
            auth = await self._client.auth_test()
        except SlackApiError as exc:
            raise SlackConfigError(f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')})") from None
        self.bot.workspace_url = str(auth.get("url") or "") or None
        self.bot.authorized(auth)
        self._auth = auth.data if isinstance(auth.data, dict) else None
        # Inbox entries whose holder is gone are answered here too (at once, then every few seconds).
        self._services.engine.attach(PLATFORM, self.bot.recovery)
        if self._app_token is not None:
            await self._connect_socket()
        else:
            await self._serve_http()
        log.info(
            "slack connected",
            extra={"workspace": auth.get("team_id"), "mode": self.mode, "api": self._client.base_url},
        )

    async def _connect_socket(self) -> None:
        assert self._app_token is not None
        try:
            # The Socket Mode client retries a rejected token forever; check it once, loudly.
            await self._client.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            raise SlackConfigError(f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error')})") from None
        self._socket = AsyncSocketModeHandler(self.bot.app, self._app_token, web_client=self._client)
        await self._socket.connect_async()

    async def _serve_http(self) -> None:
        web_app = http_app(
            self.bot.app,
            self._port,
            accepting=lambda: self._accepting,
            intake=self._services.engine.admission.intake,
            events=lambda bolt: self.bot.events_handler(bolt, self._auth),
        )
        self._runner = web.AppRunner(
            web_app, access_log=None, shutdown_timeout=HTTP_CLOSE_SECONDS, keepalive_timeout=IDLE_SECONDS
        )
        await self._runner.setup()
        assert self._runner.server is not None
        ConnectionCap(self._services.settings.http_max_connections).install(self._runner.server)
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("slack http mode listening", extra={"port": self._port, "path": EVENTS_PATH})

    async def listen(self) -> None:
        assert self._stopped is not None, "connect() first"
        await self._stopped.wait()

    async def disconnect(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stopped is not None:
            self._stopped.set()
        # Refuse new work first: it is Slack's to deliver again, not ours to drop.
        self._accepting = False
        if self._socket is not None:
            await self._socket.close_async()
        seconds = self._services.settings.shutdown_seconds
        self._services.engine.begin_shutdown(seconds)
        # Turns finish (or are stopped with a note at the deadline); the notes then get NOTE_SECONDS.
        await self.bot.drain(seconds + NOTE_SECONDS)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._owns_session and self._client.session is not None:
            await self._client.session.close()
            self._client.session = None
        log.info("slack disconnected")

    async def ready(self) -> bool:
        """``bot.ports.Connector.ready``: HTTP mode while serving and accepting; Socket Mode while the
        socket is connected (the Socket Mode client reconnects by itself; not ready meanwhile)."""
        if self._closed or not self._accepting:
            return False
        if self._socket is not None:
            return bool(await self._socket.client.is_connected())
        return self._runner is not None

    async def send_digest(self, digest: Digest) -> None:
        """``bot.ports.DigestSink``: the scheduler's weekly digest, posted to the alert channel."""
        await self.bot.send_digest(digest)


def http_app(
    app: AsyncApp,
    port: int,
    *,
    accepting: Callable[[], bool] | None = None,
    intake: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    events: Callable[[EventsHandler], EventsHandler] | None = None,
) -> web.Application:
    """Bolt's aiohttp app for ``/slack/events``, plus a health check and guards: against bad payloads,
    slow bodies, and (once ``accepting()`` says no) new work while Haven stops. ``events``, given Bolt's
    handler for ``/slack/events``, returns the one to serve it (``SlackBot.events_handler``)."""
    bolt = AsyncSlackAppServer(port=port, path=EVENTS_PATH, app=app)  # Bolt's own request handling
    web_app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            _refuse_when_stopping(accepting or (lambda: True)),
            _acknowledging(intake or contextlib.nullcontext),
            _read_body,
            _reject_unparseable,
        ],
    )
    web_app.router.add_post(
        EVENTS_PATH, events(bolt.handle_post_requests) if events is not None else bolt.handle_post_requests
    )
    if app.oauth_flow is not None:
        # Many workspaces: Bolt's install page, and the redirect Slack sends the installer back to.
        web_app.router.add_get(INSTALL_PATH, bolt.handle_get_requests)
        web_app.router.add_get(REDIRECT_PATH, bolt.handle_get_requests)
    web_app.router.add_get(HEALTH_PATH, _health)
    return web_app


def _refuse_when_stopping(accepting: Callable[[], bool]) -> Any:
    @web.middleware
    async def refuse(request: web.Request, handler: Any) -> web.StreamResponse:
        # 503 makes Slack deliver the event again later (to another process, or to this one restarted);
        # a 200 now would be a promise the stopping process could not keep.
        if request.path == EVENTS_PATH and not accepting():
            return web.json_response(
                {"ok": False, "error": "shutting_down"}, status=503, headers={"Retry-After": "5"}
            )
        response: web.StreamResponse = await handler(request)
        return response

    return refuse


def _acknowledging(intake: Callable[[], contextlib.AbstractContextManager[None]]) -> Any:
    @web.middleware
    async def acknowledging(request: web.Request, handler: Any) -> web.StreamResponse:
        # Each event is an acknowledgement in progress until its response: turns about to start wait
        # for them (bot.admission), so a burst of new threads is acknowledged within Slack's 3 s first.
        if request.path != EVENTS_PATH:
            response: web.StreamResponse = await handler(request)
            return response
        with intake():
            response = await handler(request)
        return response

    return acknowledging


@web.middleware
async def _read_body(request: web.Request, handler: Any) -> web.StreamResponse:
    # aiohttp reads a body only when the handler asks, with no time limit: read it here, within
    # BODY_SECONDS (it is cached for Bolt), so a client that stalls mid-body cannot hold a handler.
    if request.can_read_body:
        try:
            async with asyncio.timeout(BODY_SECONDS):
                await request.read()
        except TimeoutError:
            log.info("slack request body too slow", extra={"path": request.path})
            return web.json_response({"ok": False, "error": "timeout"}, status=408)
    response: web.StreamResponse = await handler(request)
    return response


@web.middleware
async def _reject_unparseable(request: web.Request, handler: Any) -> web.StreamResponse:
    # Bolt parses the body before it checks the signature, and a field of an unexpected type makes that
    # parsing raise: answer 400 and log the error's type only (the body may hold people's words).
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception as exc:
        log.warning("slack request rejected", extra={"error": type(exc).__name__, "path": request.path})
        return web.json_response({"ok": False, "error": "bad_request"}, status=400)


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


class ConnectionCap:
    """At most ``limit`` open connections on an aiohttp ``web.Server`` (aiohttp has no such cap).

    A connection past the limit closes the longest-open connection that has no request in progress
    (typically a half-open or stalled client) to make room, so idle clients cannot keep signed traffic
    out; when every connection is busy, the new one is closed instead.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.evicted = 0
        self.refused = 0
        self._open: dict[object, asyncio.Transport] = {}  # in the order they connected

    def install(self, server: web.Server) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._open[handler] = transport
            if len(self._open) > self.limit:
                self._make_room(handler)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._open.pop(handler, None)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _make_room(self, newest: object) -> None:
        for handler, transport in self._open.items():
            # aiohttp's flag for "a request is being handled"; unknown (another aiohttp) counts as busy.
            if handler is not newest and not getattr(handler, "_request_in_progress", True):
                self.evicted += 1
                self._open.pop(handler)
                transport.close()
                return
        self.refused += 1
        self._open.pop(newest).close()
        log.warning("slack http connection refused: every connection is busy", extra={"limit": self.limit})
