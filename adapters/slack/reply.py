"""A reply being written into a Slack thread while the model writes it (the engine's ``ReplyStream``).

The engine hands ``update`` the *whole* reply so far (Markdown), never a delta, and a retried model call
may take text back. Two ways to show it:

- **Streaming** (``chat.startStream`` / ``appendStream`` / ``stopStream`` through slack_sdk's
  ``AsyncChatStream``). Streams are append-only and carry standard Markdown (``markdown_text``), so the
  snapshots are turned into deltas and sent as they are; Slack renders the Markdown itself.
- **Fallback**: one ``chat.postMessage`` and throttled ``chat.update`` calls (at most one a second) with
  the reply converted to mrkdwn, when the workspace cannot stream (remembered per workspace for a while)
  or a stream call fails.

Nothing is shown until the reply is worth showing (``MIN_CHARS`` or ``INTERVAL`` seconds after its first
text): a short, quick reply costs one ``chat.postMessage`` and nothing else. While streaming, appends are
batched the same way. If a snapshot does not extend what was streamed (a retry took text back), the
stream is stopped and the same message continues by ``chat.update``, so it never keeps text the reply
no longer has. ``finish`` makes the message(s) show exactly the engine's final reply — or, when the turn
failed, what was shown plus the short error note — and posts the overflow of a long reply in further
messages (code blocks closed and reopened at the cut).

The durable inbox: ``on_ref`` hears the message's ts as soon as the reply exists in Slack (the engine
records it with the inbox entry), and a recovered turn passes that ts back as ``reply_ts``: the reply
then continues in that message (a stream left open is stopped, the text rewritten by ``chat.update``)
instead of a second one being posted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.translate import MAX_MESSAGE_CHARS, escape, markdown_to_mrkdwn, split_message
from bot.types import CrisisCard

log = logging.getLogger(__name__)

MIN_CHARS = 200  # show / append once this much new text is waiting …
INTERVAL = 1.0  # … or this many seconds have passed; also the least time between two chat.update calls
# Markdown in a message is limited to 12,000 characters (markdown_text, markdown blocks).
MAX_MARKDOWN_CHARS = 11_000
# Streaming stops this far before the limit, so the cut for the next message can find a line break.
STREAM_HOLDBACK = 1_500
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
_FENCE = "```"

_CallFailed = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)


def _error_code(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"http_{exc.response.status_code}")
    return type(exc).__name__


def split_head(text: str, limit: int, lo: int = 0) -> tuple[str, str]:
    """Markdown → (the part for one message, the rest), cutting at a boundary at or after ``lo``.

    The head is a prefix of ``text`` (plus a closing fence when the cut falls inside a code block; the
    rest then reopens it), so a head can finish a stream that already sent ``text[:lo]``.
    """
    if len(text) <= limit:
        return text, ""
    room = limit - len("\n" + _FENCE)
    floor = max(lo, room // 3)
    window = text[:room]
    cut = -1
    for sep in ("\n\n", "\n", " "):
        at = window.rfind(sep)
        if at >= floor:
            cut = at
            break
    if cut < 0:
        cut = max(room, lo)
        while cut > floor and text[cut - 1] == "`" and cut < len(text) and text[cut] == "`":
            cut -= 1
    head, rest = text[:cut], text[cut:]
    if head.count(_FENCE) % 2:
        return head + "\n" + _FENCE, _FENCE + "\n" + rest.lstrip("\n")
    return head, rest.strip()


@dataclass
class _Head:
    """The message that shows the start of the reply."""

    ts: str
    mode: str  # "stream" (open stream), "markdown" (edited, Markdown), "mrkdwn" (edited, mrkdwn)
    shown: str  # what it shows now: Markdown sent to the stream, or the text of the last update
    last: float  # monotonic time of the last call that changed it
    stale: bool = False  # shows text the reply no longer has: update at the next chance


class LiveReply:
    """One reply in one thread; ``update`` while the engine works, then ``finish`` or ``fail``."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        team: str,
        user: str,
        stream: bool = True,
        on_stream_unavailable: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_markdown: int | None = None,
        help_first: Callable[[CrisisCard], Awaitable[None]] | None = None,
        reply_ts: str | None = None,
        on_ref: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._help_first = help_first
        self._on_ref = on_ref
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._team = team
        self._user = user
        self._may_stream = stream
        self._unavailable = on_stream_unavailable
        self._clock = clock
        self._max_markdown = max_markdown or MAX_MARKDOWN_CHARS
        self._snapshot = ""
        self._first_at: float | None = None
        self._head: _Head | None = None
        self._stream: AsyncChatStream | None = None
        self._done = False
        self._gave_up = False  # the first post failed: leave the reply to the final rendering
        # A message an earlier attempt of this reply left (perhaps an open stream): rewritten, not doubled.
        self._resumed = bool(reply_ts)
        if reply_ts:
            self._head = _Head(reply_ts, "markdown", "", clock(), stale=True)

    @property
    def started(self) -> bool:
        """Something of this reply is visible in Slack (or was attempted and must be finished)."""
        return self._head is not None

    @property
    def has_text(self) -> bool:
        """The model has written some of this reply (so this process is answering the message)."""
        return bool(self._snapshot.strip()) or self._head is not None

    @property
    def mode(self) -> str | None:
        return self._head.mode if self._head else None

    # -- while the model writes ---------------------------------------------------------------------

    async def crisis_card(self, card: CrisisCard) -> bool:
        """The crisis resources before the reply (``bot.ports.HelpFirst``), while nothing is shown."""
        if self._help_first is None or self._head is not None:
            return False
        await self._help_first(card)
        return True

    async def update(self, text: str) -> None:
        if self._done:
            return
        self._snapshot = text
        head, now = self._head, self._clock()
        if head is None:
            if self._gave_up or not text.strip():
                return
            if self._first_at is None:
                self._first_at = now
            if len(text) >= MIN_CHARS or now - self._first_at >= INTERVAL:
                await self._open(text)
            return
        if head.mode == "stream":
            if text.startswith(head.shown):
                await self._append(text, now)
                return
            await self._leave_stream()  # a retry took text back
        if text.strip() and (head.stale or now - head.last >= INTERVAL):
            await self._edit(self._head_part(text), now)

    async def _open(self, text: str) -> None:
        if self._may_stream:
            try:
                live = text[: self._live_cap]
                stream = await self._client.chat_stream(
                    channel=self._channel,
                    thread_ts=self._thread_ts,
                    recipient_team_id=self._team,
                    recipient_user_id=self._user,
                    buffer_size=1,  # Haven batches; every append goes out at once
                )
                await stream.append(markdown_text=live)
                if stream.ts:
                    self._stream = stream
                    self._head = _Head(str(stream.ts), "stream", live, self._clock())
                    await self._tell_ref(str(stream.ts))
                    return
            except _CallFailed as exc:
                code = _error_code(exc)
                if code in STREAM_UNAVAILABLE and self._unavailable is not None:
                    self._unavailable(code)
                log.info("slack streaming unavailable; posting instead", extra={"error": code})
            self._may_stream = False
        part = self._head_part(text, mode="mrkdwn")
        ts = await self._call("chat.postMessage", self._post_kwargs(part))
        if ts:
            self._head = _Head(ts, "mrkdwn", part, self._clock())
            await self._tell_ref(ts)
        else:
            self._gave_up = True

    async def _tell_ref(self, ts: str) -> None:
        if self._on_ref is not None:
            await self._on_ref(ts)

    @property
    def _live_cap(self) -> int:
        return self._max_markdown - STREAM_HOLDBACK

    async def _append(self, text: str, now: float) -> None:
        head, stream = self._head, self._stream
        assert head is not None and stream is not None
        delta = text[len(head.shown) : self._live_cap]
        if not delta or (len(delta) < MIN_CHARS and now - head.last < INTERVAL):
            return
        try:
            await stream.append(markdown_text=delta)
        except _CallFailed as exc:
            # Whether Slack took the text is unknown: never repeat an append; rewrite the message instead.
            log.warning("slack stream append failed", extra={"error": _error_code(exc)})
            await self._leave_stream()
            return
        head.shown += delta
        head.last = now

    async def _leave_stream(self) -> None:
        """Stop the stream where it is; the message goes on as an ordinary one, by ``chat.update``."""
        head = self._head
        assert head is not None
        await self._call("chat.stopStream", {"channel": self._channel, "ts": head.ts})
        self._stream = None
        head.mode, head.stale = "markdown", True

    def _head_part(self, text: str, mode: str | None = None) -> str:
        mode = mode or (self._head.mode if self._head else "mrkdwn")
        if mode == "mrkdwn":
            return split_message(markdown_to_mrkdwn(text))[0] if text.strip() else ""
        return split_head(text, self._max_markdown)[0]

    async def _edit(self, shown: str, now: float) -> bool:
        head = self._head
        assert head is not None and head.mode != "stream"
        if shown == head.shown and not head.stale:
            return True
        if self._resumed:
            # The earlier attempt may have left its stream open, and an open stream cannot be edited.
            self._resumed = False
            await self._call("chat.stopStream", {"channel": self._channel, "ts": head.ts})
        kwargs: dict[str, Any] = {"channel": self._channel, "ts": head.ts}
        if head.mode == "markdown":
            kwargs["markdown_text"] = shown
        else:
            kwargs["text"] = shown
        if await self._call("chat.update", kwargs) is None:
            return False
        head.shown, head.last, head.stale = shown, now, False
        return True

    # -- the end of the turn ------------------------------------------------------------------------

    async def finish(self, reply: str) -> None:
        """Make the thread show exactly ``reply`` (Markdown): the head, then the overflow as new posts."""
        self._done = True
        head = self._head
        if head is None:
            return
        if not reply.strip():
            await self._retract()
            return
        rest_parts: list[str]
        if head.mode == "stream":
            if reply.startswith(head.shown):
                part, rest = split_head(reply, self._max_markdown, lo=len(head.shown))
                if await self._stop(part[len(head.shown) :]):
                    head.shown = part
                    await self._post_all(_mrkdwn_parts(rest))
                    return
            else:
                await self._leave_stream()
        if head.mode == "markdown":
            part, rest = split_head(reply, self._max_markdown)
            rest_parts = _mrkdwn_parts(rest)
        else:
            part, *rest_parts = split_message(markdown_to_mrkdwn(reply))
        if not await self._edit(part, self._clock()):
            await self._replace(part)
        await self._post_all(rest_parts)

    async def fail(self, note: str) -> None:
        """The turn failed: end the shown message with what it has and the short note (or post the note)."""
        self._done = True
        head = self._head
        if head is None:
            await self._call("chat.postMessage", self._post_kwargs(escape(note)))
            return
        if head.mode == "stream":
            text = self._snapshot if self._snapshot.startswith(head.shown) else head.shown
            if await self._stop(f"{text[len(head.shown) : self._live_cap]}\n\n{note}"):
                return
        room = (self._max_markdown if head.mode == "markdown" else MAX_MESSAGE_CHARS) - len(note) - 2
        if not self._snapshot.strip():
            shown = ""
        elif head.mode == "markdown":
            shown = split_head(self._snapshot, room)[0].rstrip()
        else:
            shown = split_message(markdown_to_mrkdwn(self._snapshot), room)[0]
        if head.mode == "mrkdwn":
            note = escape(note)
        text = f"{shown}\n\n{note}" if shown else note
        if not await self._edit(text, self._clock()):
            await self._replace(text)

    async def _stop(self, markdown: str) -> bool:
        """Close the open stream with ``markdown`` as its last text; False (and no stream) on failure."""
        stream, head = self._stream, self._head
        assert stream is not None and head is not None
        self._stream = None
        try:
            if markdown:
                await stream.stop(markdown_text=markdown)
            else:
                await self._client.chat_stopStream(channel=self._channel, ts=head.ts)
        except _CallFailed as exc:
            log.warning("slack stream stop failed", extra={"error": _error_code(exc)})
            # Try to close it without text; the message is then rewritten by chat.update.
            await self._call("chat.stopStream", {"channel": self._channel, "ts": head.ts})
            head.mode, head.stale = "markdown", True
            return False
        head.shown += markdown
        head.mode = "markdown"
        return True

    async def _replace(self, text: str) -> None:
        """The head could not be updated: post the text anew and take the old message away."""
        head = self._head
        assert head is not None
        kwargs = self._post_kwargs(text)
        if head.mode == "markdown":
            kwargs.pop("text")
            kwargs["markdown_text"] = text
        ts = await self._call("chat.postMessage", kwargs)
        if ts is None:
            return
        await self._call("chat.delete", {"channel": self._channel, "ts": head.ts})
        head.ts, head.shown, head.stale = ts, text, False
        await self._tell_ref(ts)

    async def _retract(self) -> None:
        """The final reply has no text (all of it was taken back): remove what was shown."""
        head = self._head
        assert head is not None
        if head.mode == "stream":
            await self._call("chat.stopStream", {"channel": self._channel, "ts": head.ts})
        await self._call("chat.delete", {"channel": self._channel, "ts": head.ts})

    async def _post_all(self, parts: list[str]) -> None:
        for part in parts:
            await self._call("chat.postMessage", self._post_kwargs(part))

    # -- calls --------------------------------------------------------------------------------------

    def _post_kwargs(self, text: str) -> dict[str, Any]:
        return {
            "channel": self._channel,
            "thread_ts": self._thread_ts,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }

    async def _call(self, method: str, kwargs: dict[str, Any]) -> str | None:
        """One Web API call; the message ts it answered (or "" when none), None when it failed."""
        try:
            resp = await self._client.api_call(method, json=kwargs)
        except _CallFailed as exc:
            log.warning("slack call failed", extra={"call": method, "error": _error_code(exc)})
            return None
        return str(resp.get("ts") or "")


def _mrkdwn_parts(markdown: str) -> list[str]:
    return split_message(markdown_to_mrkdwn(markdown)) if markdown.strip() else []
