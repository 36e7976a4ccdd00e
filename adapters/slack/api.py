"""The thin wrapper around the Slack Web API that every listener shares.

Each call is failure-safe: a failed call is logged (its error code only, never the text) and reported
as None/False, so one missing message never fails a turn. It also knows the two lookups listeners ask
for again and again: who a person is (``person``, briefly cached) and where a message lives
(``permalink`` / ``thread_link``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.models.metadata import Metadata
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack import blocks as bk
from adapters.slack.translate import is_workspace_admin, user_display
from bot.types import Author

# The name these lines have always been logged under, kept so log queries keep finding them.
log = logging.getLogger("adapters.slack.app")

USER_CACHE_SECONDS = 60.0
# A recovered turn's look for what an earlier drawing already posted reads this many pages of 200.
REPLIES_PAGES = 5
_USER_CACHE_MAX = 5000

# What a failed Web API call raises: Slack's error answer, a request that could not be made, the network.
CALL_FAILED = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)


def error_code(exc: Exception) -> str:
    """What is logged of a failed call: Slack's error code (never the text sent), else the type."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"http_{exc.response.status_code}")
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class Person:
    """Who wrote or clicked something, as the core needs them, and the locale Slack has for them."""

    author: Author
    locale: str | None


class SlackApi:
    def __init__(self, client: AsyncWebClient, *, user_cache_seconds: float = USER_CACHE_SECONDS) -> None:
        self._client = client
        self._cache_seconds = user_cache_seconds
        self._people: dict[tuple[str, str], tuple[float, Person]] = {}
        # From auth.test (the connector learns it at startup): thread links without chat.getPermalink.
        self.workspace_url: str | None = None

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client itself, for what this wrapper does not cover (``LiveReply``'s streams)."""
        return self._client

    async def safe(self, what: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse | None:
        """One Web API call; a failure is logged (the error code only) and reported as None."""
        try:
            return await call
        except CALL_FAILED as exc:
            log.warning("slack call failed", extra={"call": what, "error": error_code(exc)})
        return None

    # -- messages -------------------------------------------------------------------------------------

    async def post(
        self,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: bk.Blocks | None = None,
        metadata: Metadata | None = None,
    ) -> str | None:
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if blocks:
            kwargs["blocks"] = blocks
        if metadata is not None:
            kwargs["metadata"] = metadata
        resp = await self.safe("chat.postMessage", self._client.chat_postMessage(**kwargs))
        return str(resp["ts"]) if resp is not None and resp.get("ts") else None

    async def post_markdown(
        self, channel: str, markdown: str, *, thread_ts: str | None = None, metadata: Metadata | None = None
    ) -> str | None:
        """Standard Markdown, rendered by Slack (``markdown_text``, at most 12,000 characters). Slack takes
        it without ``text`` or ``blocks`` and derives the notification text itself."""
        kwargs: dict[str, Any] = {
            "channel": channel,
            "markdown_text": markdown,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if metadata is not None:
            kwargs["metadata"] = metadata
        resp = await self.safe("chat.postMessage", self._client.chat_postMessage(**kwargs))
        return str(resp["ts"]) if resp is not None and resp.get("ts") else None

    async def ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        blocks: bk.Blocks | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if blocks:
            kwargs["blocks"] = blocks
        return await self.safe("chat.postEphemeral", self._client.chat_postEphemeral(**kwargs)) is not None

    async def tell(self, user: str, channel: str | None, text: str) -> None:
        """Tell one person something privately: in the channel if Haven is there, else by DM."""
        if channel and await self.ephemeral(channel, user, text):
            return
        opened = await self.safe("conversations.open", self._client.conversations_open(users=user))
        dm = (opened.get("channel") or {}).get("id") if opened is not None else None
        if dm:
            await self.post(dm, text)

    async def thread_replies(self, channel: str, thread_ts: str, oldest: str) -> list[dict[str, Any]] | None:
        """The thread's messages from ``oldest`` on, with their metadata (at most ``REPLIES_PAGES``
        pages); None when Slack could not be asked. Never per turn: recovery's look before redrawing."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(REPLIES_PAGES):
            call = self._client.conversations_replies(
                channel=channel,
                ts=thread_ts,
                oldest=oldest,
                inclusive=True,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            resp = await self.safe("conversations.replies", call)
            if resp is None:
                return None
            messages.extend(m for m in resp.get("messages") or [] if isinstance(m, dict))
            cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return messages

    async def delete(self, channel: str, ts: str) -> None:
        await self.safe("chat.delete", self._client.chat_delete(channel=channel, ts=ts))

    async def open(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self.safe("views.open", self._client.views_open(trigger_id=trigger_id, view=view))

    # -- links ----------------------------------------------------------------------------------------

    async def permalink(self, channel: str, ts: str) -> str | None:
        resp = await self.safe(
            "chat.getPermalink", self._client.chat_getPermalink(channel=channel, message_ts=ts)
        )
        return str(resp["permalink"]) if resp is not None and resp.get("permalink") else None

    async def thread_link(self, channel: str, ts: str) -> str | None:
        """A link to a message: built from the workspace URL when known (no call), else asked for."""
        if self.workspace_url:
            return f"{self.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
        return await self.permalink(channel, ts)

    # -- people ---------------------------------------------------------------------------------------

    def known_person(self, team: str, user_id: str) -> Person | None:
        """Who this is when the cache knows (no call): for an acknowledgement, which must not wait for a
        ``users.info`` round trip, nor spend Slack's rate limit on it in a burst of new people."""
        hit = self._people.get((team, user_id))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def person(self, team: str, user_id: str, *, fresh: bool = False) -> Person:
        """Who this is, and are they an admin of this workspace?

        Cached briefly per (team, user) for conversation turns; ``fresh`` (admin commands) always asks
        Slack, so a demoted admin loses access at once.
        """
        if not fresh and (known := self.known_person(team, user_id)) is not None:
            return known
        key, now = (team, user_id), time.monotonic()
        resp = await self.safe("users.info", self._client.users_info(user=user_id, include_locale=True))
        user = resp.get("user") if resp is not None else None
        if not isinstance(user, dict):
            # Not cached: a passing failure must not refuse an admin for the whole TTL.
            return Person(Author(user_id, user_id), None)
        locale = user.get("locale")
        person = Person(
            Author(user_id, user_display(user), is_workspace_admin(user, team)),
            str(locale) if locale else None,
        )
        if len(self._people) >= _USER_CACHE_MAX:
            live = [(k, v) for k, v in self._people.items() if v[0] > now]
            self._people = dict(live[-_USER_CACHE_MAX // 2 :])
        self._people[key] = (now + self._cache_seconds, person)
        return person
