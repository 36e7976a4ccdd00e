"""Haven's Slack app: one Bolt ``AsyncApp`` whose listeners translate Slack ⇄ engine and nothing else.

Policy lives in the engine and ``bot.admin``; the listeners parse Slack payloads (via ``translate``),
ask the core, and render the answer with Block Kit (via ``blocks``). A person's message is recorded in
the durable inbox before Slack is acknowledged (``listeners.inbox``), and every listener acknowledges
before its turn, so in HTTP mode Slack gets its 200 long before a model call finishes.

This module only composes the app, along Bolt's grain:

- ``api.SlackApi``: the thin Web API wrapper (failure-safe calls, permalinks, the person cache);
- ``listeners.context``: a global middleware that resolves the workspace and the requester once;
- ``listeners.inbox``: a global middleware that accepts messages into the inbox (503 when it cannot),
  and ``SlackRecovery``, which answers the entries recovery takes over;
- ``listeners.conversation`` / ``fork`` / ``feedback`` / ``admin`` / ``home`` (the App Home tab): one
  listener group per concern, each registering itself the way Bolt's ``Assistant`` groups its listeners;
- ``workspaces``: many workspaces (Bolt's OAuth flow, each workspace's token, uninstalls), when
  ``Installs`` are given; otherwise the one bot token of the client;
- ``on_error``: the one error handler for whatever a listener lets escape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.api import USER_CACHE_SECONDS, SlackApi
from adapters.slack.digest import post_digest
from adapters.slack.files import SlackFiles
from adapters.slack.intake import EarlyAccept, Handler
from adapters.slack.listeners.admin import COMMAND, Commands
from adapters.slack.listeners.assistant import EVENTS as ASSISTANT_EVENTS
from adapters.slack.listeners.assistant import AssistantThreads
from adapters.slack.listeners.context import WorkspaceContext, workspace_of
from adapters.slack.listeners.conversation import EVENTS, Conversation
from adapters.slack.listeners.feedback import Feedback
from adapters.slack.listeners.fork import SHORTCUT_EDIT_FORK, Fork
from adapters.slack.listeners.home import HOME_EVENTS, Home
from adapters.slack.listeners.inbox import AcceptMessages, SlackRecovery
from adapters.slack.listeners.shared import Shared
from adapters.slack.retry import install_retry_handlers
from adapters.slack.translate import PLATFORM
from adapters.slack.workspaces import (
    INSTALL_EVENTS,
    Departed,
    Installs,
    TeamClient,
    Uninstalls,
    WorkspaceTokens,
    acting_for,
    oauth_settings,
)
from bot.failures import log_failure, where
from bot.ports import CoreServices
from bot.types import Digest

log = logging.getLogger(__name__)

# What the app registers; manifest.yml must declare the same (a test checks both directions).
__all__ = [
    "ASSISTANT_EVENTS",
    "COMMAND",
    "EVENTS",
    "HOME_EVENTS",
    "INSTALL_EVENTS",
    "SHORTCUT_EDIT_FORK",
    "SlackBot",
    "bolt_logger",
    "build_app",
]


class _NoPayloads(logging.Filter):
    """Bolt puts request bodies (people's words) into a few log lines; keep only what happened."""

    _REWRITES = (
        ("Invalid request signature", "Invalid request signature detected (request refused)"),
        ("Unhandled request", "Unhandled request (no listener matched; payload not logged)"),
        # Bolt's OAuth flow quotes the one-time code Slack handed the installer's browser.
        (
            "Failed to fetch oauth.v2.access result",
            "Failed to fetch oauth.v2.access result (install refused)",
        ),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if "`token` will be unused" in message:
            return False  # Bolt reads SLACK_BOT_TOKEN itself; we hand it the client that uses it
        for start, replacement in self._REWRITES:
            if message.startswith(start):
                record.msg, record.args = replacement, ()
        return True


def bolt_logger() -> logging.Logger:
    """The base logger Bolt derives its component loggers from (they copy its filters)."""
    logger = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _NoPayloads) for f in logger.filters):
        logger.addFilter(_NoPayloads())
    return logger


async def on_error(error: Exception, context: AsyncBoltContext) -> None:
    """``app.error``: a listener (or middleware) failed. Bolt's own handler would log the exception's
    text, which can carry people's words (a database error quotes its parameters): log its type and
    where it happened instead. Bolt then answers Slack 500, or nothing if the listener had acknowledged."""
    log_failure(
        log,
        f"listener failed: {type(error).__name__} at {where(error)}",
        error,
        workspace=workspace_of(context),
    )


def _single_token(client: AsyncWebClient) -> Callable[[str], Awaitable[str | None]]:
    async def token(_team: str) -> str | None:
        return client.token

    return token


def build_app(
    services: CoreServices,
    client: AsyncWebClient,
    *,
    signing_secret: str = "",
    process_before_response: bool = False,
    user_cache_seconds: float = USER_CACHE_SECONDS,
    streaming: bool = True,
    inbox: bool = True,
    installs: Installs | None = None,
    departed: Departed | None = None,
) -> AsyncApp:
    """The Bolt app for ``services``; ``client`` decides where Web API calls go (Slack, GovSlack, a mock).
    ``installs``: many workspaces through OAuth (``client`` then has no token); ``departed`` records an
    uninstall in single-token mode (with ``installs`` the installation store does)."""
    return SlackBot(
        services,
        client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        user_cache_seconds=user_cache_seconds,
        streaming=streaming,
        inbox=inbox,
        installs=installs,
        departed=departed,
    ).app


class SlackBot:
    """The composed app, plus what the connector needs of it: ``drain`` and ``send_digest``."""

    def __init__(
        self,
        services: CoreServices,
        client: AsyncWebClient,
        *,
        signing_secret: str = "",
        process_before_response: bool = False,
        user_cache_seconds: float = USER_CACHE_SECONDS,
        streaming: bool = True,
        inbox: bool = True,
        installs: Installs | None = None,
        departed: Departed | None = None,
    ) -> None:
        # 429s (after Retry-After), 5xx and dropped connections are retried where that cannot post twice.
        client = install_retry_handlers(client)
        self.tokens = WorkspaceTokens(installs.installations) if installs is not None else None
        # Many workspaces: Haven's own calls carry the token of the workspace they are made for.
        api_client = TeamClient(client, self.tokens) if self.tokens is not None else client
        self.api = SlackApi(api_client, user_cache_seconds=user_cache_seconds)
        # Files people share are read with the token of the workspace they were shared in.
        token_for = self.tokens.token if self.tokens is not None else _single_token(client)
        services.engine.attach_files(PLATFORM, SlackFiles(token_for, services.settings.slack_file_origins))
        self._shared = Shared(services, self.api, streaming=streaming)
        self.app = AsyncApp(
            name="haven",
            logger=bolt_logger(),
            client=client,
            signing_secret=signing_secret,
            process_before_response=process_before_response,
            oauth_settings=oauth_settings(installs, bolt_logger()) if installs is not None else None,
        )
        self.app.use(WorkspaceContext(self.api))
        self._signing_secret = signing_secret
        self._accept = AcceptMessages(self._shared) if inbox else None
        if self._accept is not None:
            # After the workspace is known and before Bolt acknowledges: record messages in the inbox
            # (``listeners.inbox``). Without it (tests of the old path only), a turn that fails is
            # retried in memory and then noted, and a crash loses it.
            self.app.use(self._accept)
        self.app.error(on_error)
        self.recovery = SlackRecovery(self._shared)
        fork = Fork(self._shared)
        conversation = Conversation(self._shared, on_edit=fork.offer_on_edit)
        conversation.register(self.app)
        # After AcceptMessages (middleware run in order): an assistant thread's message is recorded first.
        AssistantThreads(self._shared, conversation).register(self.app)
        fork.register(self.app)
        Feedback(self._shared).register(self.app)
        Commands(self._shared, start=conversation.start, fork=fork.from_command).register(self.app)
        Home(self._shared).register(self.app)
        store = installs.installations if installs is not None else None
        Uninstalls(tokens=self.tokens, store=store, departed=departed).register(self.app)

    def authorized(self, auth: AsyncSlackResponse) -> None:
        """Hand Bolt the ``auth.test`` the connector made at connect. Bolt's single-workspace
        authorization otherwise makes its own at the first request, and every request that arrives
        before that call answered makes one more (a burst of first events: hundreds of calls and
        connections, each inside an acknowledgement). Bolt offers no public way to pass it; without the
        middleware found, Bolt simply calls ``auth.test`` itself, as before."""
        for middleware in getattr(self.app, "_async_middleware_list", ()):
            if isinstance(middleware, AsyncSingleTeamAuthorization) and middleware.auth_test_result is None:
                middleware.auth_test_result = auth

    def events_handler(self, bolt: Handler, auth: Mapping[str, Any] | None) -> Handler:
        """HTTP mode's ``/slack/events`` handler, given Bolt's: for one workspace (``auth``: its
        ``auth.test``) with the inbox, ``intake.EarlyAccept`` records a person's message before Bolt's
        dispatch; otherwise Bolt's own."""
        if self._accept is None or self.tokens is not None or not auth or not self._signing_secret:
            return bolt
        early = EarlyAccept(
            self.app,
            self._accept,
            signing_secret=self._signing_secret,
            auth=auth,
            bolt=bolt,
            after_intake=self._shared.engine.admission.after_intake,
            track=self._shared.track,
        )
        return early.handle

    @property
    def workspace_url(self) -> str | None:
        """From auth.test (the connector sets it): links in the digest without chat.getPermalink."""
        return self.api.workspace_url

    @workspace_url.setter
    def workspace_url(self, url: str | None) -> None:
        self.api.workspace_url = url

    async def drain(self, seconds: float) -> None:
        """Let the listeners still running finish their replies, for at most ``seconds``."""
        await self._shared.drain(seconds)

    async def send_digest(self, digest: Digest) -> None:
        with acting_for(self.api.client, digest.workspace):
            await post_digest(self.api, digest)
