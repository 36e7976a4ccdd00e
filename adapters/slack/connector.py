"""SlackConnector: Haven on Slack via Socket Mode (SLACK_APP_TOKEN) or HTTP (SLACK_SIGNING_SECRET)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot
from bot.ports import CoreServices, StartupError
from bot.types import Digest

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# In-flight turns get this long to post their replies when Haven stops.
DRAIN_SECONDS = 10.0


class SlackConfigError(StartupError):
    """Slack credentials are missing or rejected; the message says which."""


class SlackConnector:
    name = "slack"

    def __init__(
        self,
        services: CoreServices,
        *,
        client: AsyncWebClient | None = None,
        host: str = "0.0.0.0",
        port: int | None = None,
    ) -> None:
        settings = services.settings
        if settings.slack_bot_token is None:
            raise SlackConfigError("SLACK_BOT_TOKEN is not set")
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        if self._app_token is None and not secret:
            raise SlackConfigError("set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)")
        self._client = client or AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
        self._host = host
        self._port = port if port is not None else settings.port
        # Socket Mode requests carry no signature; HTTP requests must, so the secret is required there.
        # SlackBot installs Haven's retry handlers (429 / 5xx / connection errors) on the client.
        self.bot = SlackBot(services, self._client, signing_secret=secret)
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self._closed = False

    @property
    def mode(self) -> str:
        return "socket" if self._app_token else "http"

    async def connect(self) -> None:
        self._stopped = asyncio.Event()
        try:
            auth = await self._client.auth_test()
        except SlackApiError as exc:
            raise SlackConfigError(f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')})") from None
        self.bot.workspace_url = str(auth.get("url") or "") or None
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
        web_app = http_app(self.bot.app, self._port)
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
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
        if self._socket is not None:
            await self._socket.close_async()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.bot.drain(DRAIN_SECONDS)
        log.info("slack disconnected")

    async def send_digest(self, digest: Digest) -> None:
        """``bot.ports.DigestSink``: the scheduler's weekly digest, posted to the alert channel."""
        await self.bot.send_digest(digest)


def http_app(app: AsyncApp, port: int) -> web.Application:
    """Bolt's aiohttp app for ``/slack/events``, plus a health check and a guard against bad payloads."""
    bolt = AsyncSlackAppServer(port=port, path=EVENTS_PATH, app=app)  # Bolt's own request handling
    web_app = web.Application(middlewares=[_reject_unparseable])
    web_app.router.add_post(EVENTS_PATH, bolt.handle_post_requests)
    web_app.router.add_get(HEALTH_PATH, _health)
    return web_app


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
