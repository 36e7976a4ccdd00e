"""The Slack Web API calls Haven makes, each failure-safe: a failed call is logged (its error code only,
never the text) and reported as None/False, so one missing message never fails a turn."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack import blocks as bk

log = logging.getLogger("adapters.slack.app")


class SlackApi:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def safe(self, what: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse | None:
        """One Web API call; a failure is logged (the error code only) and reported as None."""
        try:
            return await call
        except SlackApiError as exc:
            log.warning("slack call failed", extra={"call": what, "error": exc.response.get("error")})
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack call failed", extra={"call": what, "error": type(exc).__name__})
        return None

    async def post(
        self, channel: str, text: str, *, thread_ts: str | None = None, blocks: bk.Blocks | None = None
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

    async def permalink(self, channel: str, ts: str) -> str | None:
        resp = await self.safe(
            "chat.getPermalink", self._client.chat_getPermalink(channel=channel, message_ts=ts)
        )
        return str(resp["permalink"]) if resp is not None and resp.get("permalink") else None

    async def open(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self.safe("views.open", self._client.views_open(trigger_id=trigger_id, view=view))
