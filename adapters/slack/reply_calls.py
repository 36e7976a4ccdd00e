"""The Web API calls of one reply (``reply.LiveReply``) in its thread, and what Slack's answers to them
mean for the reply.

Each call is failure-safe: a failure is logged by its error code (never the text) and reported as None,
so the reply decides what to do next. A call made while the model writes that a later one makes good is
``optional``: a 429 on it is not waited out (``retry.NO_WAIT``) but pauses such calls for Slack's
Retry-After (``paused_until``), so a rate limit holds up the edits, never the reading of the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import CALL_FAILED, error_code
from adapters.slack.retry import NO_WAIT, retry_after_of

# The reply's lines have always been logged under this name; kept so log queries keep finding them.
log = logging.getLogger("adapters.slack.reply")

# startStream errors that mean "this workspace cannot stream": remembered, and posts are used instead.
STREAM_UNAVAILABLE = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "not_allowed_token_type",
        "method_deprecated",
        "feature_not_enabled",
        "not_enabled",
        "missing_scope",
        "no_permission",
        "team_access_not_granted",
        "not_supported",
    }
)
# A stream call's answer when the stream is no longer open: the person pressed Stop (or Slack closed it).
STREAM_ENDED = "message_not_in_streaming_state"


def rate_limited(exc: Exception) -> float | None:
    """Seconds Slack asked to wait when ``exc`` is a 429 (Slack did nothing with the call), else None."""
    if isinstance(exc, SlackApiError) and exc.response.status_code == 429:
        wait = retry_after_of(exc.response.headers)
        return 1.0 if wait is None else wait
    return None


class ReplyCalls:
    """The calls of one reply in one thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self._clock = clock
        self.paused_until = 0.0  # no optional call (or stream append) before this: Slack's Retry-After

    def post_kwargs(self, text: str, *, markdown: bool = True) -> dict[str, Any]:
        """A post in the thread: Markdown for Slack to render (without ``text``, which Slack does not
        take beside it), or plain ``text`` (already escaped) for a note."""
        kwargs: dict[str, Any] = {
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        kwargs["markdown_text" if markdown else "text"] = text
        return kwargs

    async def call(self, method: str, kwargs: dict[str, Any], *, optional: bool = False) -> str | None:
        """One Web API call; the message ts it answered (or "" when none), None when it failed."""
        try:
            resp = await self.client.api_call(method, json=kwargs, headers=NO_WAIT if optional else None)
        except CALL_FAILED as exc:
            wait = rate_limited(exc) if optional else None
            if wait is not None:
                self.paused_until = self._clock() + wait
            log.warning("slack call failed", extra={"call": method, "error": error_code(exc)})
            return None
        return str(resp.get("ts") or "")

    async def post(self, text: str, *, markdown: bool = True, optional: bool = False) -> str | None:
        return await self.call(
            "chat.postMessage", self.post_kwargs(text, markdown=markdown), optional=optional
        )

    async def post_all(self, parts: list[str]) -> None:
        for part in parts:
            await self.post(part)

    async def update(self, ts: str, markdown: str, *, optional: bool = False) -> bool:
        kwargs = {"channel": self.channel, "ts": ts, "markdown_text": markdown}
        return await self.call("chat.update", kwargs, optional=optional) is not None

    async def stop_stream(self, ts: str) -> None:
        await self.call("chat.stopStream", {"channel": self.channel, "ts": ts})

    async def delete(self, ts: str) -> None:
        await self.call("chat.delete", {"channel": self.channel, "ts": ts})

    async def set_status(self, status: str) -> None:
        """The thread's status line ("is thinking…"); feedback only: the reply still comes."""
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=self.channel, thread_ts=self.thread_ts, status=status
            )
        except CALL_FAILED as exc:
            # Older workspaces may lack the method.
            log.info("slack thinking status not shown", extra={"error": error_code(exc)})
