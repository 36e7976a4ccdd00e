"""Haven in many Slack workspaces: the OAuth install flow, each workspace's own token, and uninstalls.

With ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` Haven runs Bolt's OAuth v2 flow (``/slack/install``
→ Slack → ``/slack/oauth_redirect``), and keeps each workspace's installation in the installation store
it is handed (``Installs``; Haven's own database, see ``storage.slack_installations``). Bolt then
authorizes every request with the token of the workspace it came from; a request from a workspace
without an installation stops there, before Haven's middleware records anything.

Haven's own Web API calls go through one ``SlackApi`` shared by every listener, so the workspace is
chosen per call: ``TeamClient`` is an ``AsyncWebClient`` that signs each call with the token of the
workspace in scope. The scope is a context variable (one per client), set around each request by the
workspace middleware and by recovery and the digest, which draw without a request; tasks a listener
starts inherit it. In single-token mode (``SLACK_BOT_TOKEN``) none of this exists and the client is
the one it always was.

``app_uninstalled`` and ``tokens_revoked`` remove the installation (Bolt's own revocation handlers) and
record the workspace as departed, so ``haven admin purge`` may delete its data.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import FormData
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.translate import PLATFORM

log = logging.getLogger(__name__)

# The bot scopes an installation asks for: manifest.yml's, exactly (tests/slack/test_manifest.py).
BOT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "chat:write",
    "commands",
    "files:read",
    "groups:history",
    "im:history",
    "im:write",
    "mpim:history",
    "users:read",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# What the app registers for the installation's lifecycle; manifest.yml subscribes to both.
INSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")
# A workspace's token is looked up again after this long (another process may have seen it uninstalled).
TOKEN_SECONDS = 60.0

# Records a workspace as departed: (platform, workspace, reason). The composition root supplies it.
Departed = Callable[[str, str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Installs:
    """What the OAuth flow needs: the app's credentials and where installations and states are kept."""

    client_id: str
    client_secret: str
    installations: AsyncInstallationStore
    states: AsyncOAuthStateStore
    # Slack's Web API base URL (``SLACK_API_URL``): the authorize page lives next to it (GovSlack too).
    api_url: str = "https://slack.com/api/"
    # The redirect URL registered with the app; None lets Slack use the one it has.
    redirect_uri: str | None = None


def authorize_url(api_url: str) -> str:
    """Slack's authorize page next to a Web API base URL (``…/api/`` → ``…/oauth/v2/authorize``)."""
    base = api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/oauth/v2/authorize"


def oauth_settings(installs: Installs, logger: logging.Logger) -> AsyncOAuthSettings:
    settings = AsyncOAuthSettings(
        client_id=installs.client_id,
        client_secret=installs.client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=installs.redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=authorize_url(installs.api_url),
        installation_store=BoltLookups(installs.installations),
        # Haven acts as its bot only; one lookup (the bot token) per request instead of two.
        installation_store_bot_only=True,
        state_store=installs.states,
        logger=logger,
    )
    # Bolt asks auth.test about a workspace's token on every request unless it caches the answer (by
    # token: the installation is still looked up each time, so an uninstalled workspace stays refused).
    if isinstance(settings.authorize, AsyncInstallationStoreAuthorize):
        settings.authorize.cache_enabled = True
    return settings


class BoltLookups(AsyncInstallationStore):
    """The installation store as Bolt's authorization sees it: a request from a workspace without an
    installation is not answered (Bolt stops it), and Haven's log says which workspace and why."""

    def __init__(self, inner: AsyncInstallationStore) -> None:
        self._inner = inner

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        bot = await self._inner.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if bot is None:
            log.warning(
                "slack request from a workspace with no installation (uninstalled, its token revoked,"
                " or never installed): not answered",
                extra={"workspace": team_id, "enterprise": enterprise_id},
            )
        return bot

    async def async_save(self, installation: Installation) -> None:
        await self._inner.async_save(installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await self._inner.async_save_bot(bot)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await self._inner.async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._inner.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await self._inner.async_delete_installation(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._inner.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)


class WorkspaceTokens:
    """Each workspace's bot token from the installation store, kept for ``TOKEN_SECONDS``."""

    def __init__(self, installations: AsyncInstallationStore, *, seconds: float = TOKEN_SECONDS) -> None:
        self._installations = installations
        self._seconds = seconds
        self._known: dict[str, tuple[float, str]] = {}

    def remember(self, team: str, token: str) -> None:
        """A token Bolt has just authorized a request with: no lookup needed."""
        self._known[team] = (time.monotonic() + self._seconds, token)

    def forget(self, team: str) -> None:
        self._known.pop(team, None)

    async def token(self, team: str) -> str | None:
        hit = self._known.get(team)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        bot = await self._installations.async_find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            self.forget(team)
            log.warning(
                "slack workspace has no installation: call sent without a token", extra={"workspace": team}
            )
            return None
        self.remember(team, bot.bot_token)
        return bot.bot_token


class TeamClient(AsyncWebClient):
    """An ``AsyncWebClient`` (same URL, session and retry handlers as ``base``) whose calls carry the
    token of the workspace in scope (``acting_for``); a call that brings its own token keeps it."""

    def __init__(self, base: AsyncWebClient, tokens: WorkspaceTokens) -> None:
        self._base = base
        super().__init__(
            base_url=base.base_url,
            timeout=base.timeout,
            ssl=base.ssl,
            proxy=base.proxy,
            session=base.session,
            trust_env_in_session=base.trust_env_in_session,
            headers=base.headers,
            logger=base.logger,
            retry_handlers=base.retry_handlers,  # the same handlers: Haven's retries and error counts
        )
        self.tokens = tokens
        # Per client, not per module: two apps in one process (the tests build several) never mix.
        self._team: ContextVar[str | None] = ContextVar(f"haven_slack_team_{id(self)}", default=None)

    @property  # type: ignore[override]  # slack_sdk's plain attribute, read through
    def session(self) -> aiohttp.ClientSession | None:
        """``base``'s keep-alive session, which its owner (the connector) opens and closes."""
        return self._base.session

    @session.setter
    def session(self, value: aiohttp.ClientSession | None) -> None:
        pass  # the base client's owner manages it (slack_sdk's __init__ assigns it once)

    @property
    def team(self) -> str | None:
        return self._team.get()

    @contextlib.contextmanager
    def acting_for(self, team: str) -> Iterator[None]:
        reset = self._team.set(team or None)
        try:
            yield
        finally:
            self._team.reset(reset)

    def act_for(self, team: str) -> None:
        """Scope the rest of the current task to ``team`` (recovery: one task per thread)."""
        self._team.set(team or None)

    async def api_call(  # type: ignore[override]  # slack_sdk's signature, untyped dicts included
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | FormData | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> AsyncSlackResponse:
        team = self._team.get()
        if team and not _own_token(params, json, data, headers, auth):
            token = await self.tokens.token(team)
            if token:
                headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        return await super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
        )


def act_for(client: AsyncWebClient, team: str, token: str | None = None) -> None:
    """Serving many workspaces (``client`` is a ``TeamClient``), the rest of the current task's calls,
    and those of tasks it starts, use ``team``'s token (``token``: one Bolt just authorized it with).
    Set where a request or a recovered entry starts; a single-token client is left alone."""
    if isinstance(client, TeamClient):
        if token:
            client.tokens.remember(team, token)
        client.act_for(team)


@contextlib.contextmanager
def acting_for(client: AsyncWebClient, team: str) -> Iterator[None]:
    """``act_for`` for the calls within (the digest, sent from the scheduler's task)."""
    if not isinstance(client, TeamClient):
        yield
        return
    with client.acting_for(team):
        yield


def _own_token(*parts: Any) -> bool:
    params, json, data, headers, auth = parts
    if auth is not None or (headers and "Authorization" in headers):
        return True
    return any(isinstance(p, dict) and "token" in p for p in (params, json, data))


class Uninstalls:
    """``app_uninstalled`` and ``tokens_revoked``: the installation goes (OAuth mode, through Bolt's own
    handlers), the workspace is recorded as departed, and the log says which workspace, never a token."""

    def __init__(
        self,
        *,
        tokens: WorkspaceTokens | None,
        store: AsyncInstallationStore | None,
        departed: Departed | None,
    ) -> None:
        self._tokens = tokens
        self._revocations = AsyncTokenRevocationListeners(store) if store is not None else None
        self._departed = departed

    def register(self, app: AsyncApp) -> None:
        app.event("app_uninstalled")(self.on_uninstalled)
        app.event("tokens_revoked")(self.on_revoked)

    async def on_uninstalled(self, context: AsyncBoltContext) -> None:
        team = str(context.team_id or "")
        if self._revocations is not None:
            # Deletes the installation and its bot token; the store records the departure.
            await self._revocations.handle_app_uninstalled_events(context)
        elif self._departed is not None and team:
            await self._departed(PLATFORM, team, "app_uninstalled")
        if self._tokens is not None:
            self._tokens.forget(team)
        log.info("slack app uninstalled: installation removed", extra={"workspace": team})

    async def on_revoked(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        team = str(context.team_id or "")
        tokens = event.get("tokens") or {}
        bot = bool(tokens.get("bot"))
        if self._revocations is not None:
            await self._revocations.handle_tokens_revoked_events(event, context)
        elif bot and self._departed is not None and team:
            await self._departed(PLATFORM, team, "tokens_revoked")
        if bot and self._tokens is not None:
            self._tokens.forget(team)
        log.info(
            "slack tokens revoked",
            extra={"workspace": team, "bot": bot, "users": len(tokens.get("oauth") or [])},
        )
