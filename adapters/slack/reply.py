"""A reply being written into a Slack thread while the model writes it (the engine's ``ReplyStream``).

The engine hands ``update`` the *whole* reply so far (Markdown), never a delta, and a retried model call
may take text back. Everything is sent as the model wrote it, in standard Markdown, which Slack renders
itself (``markdown_text``); the calls themselves, failure-safe, are ``reply_calls.ReplyCalls``. Two ways to
show it:

- **Streaming** (``chat.startStream`` / ``appendStream`` / ``stopStream`` through slack_sdk's
  ``AsyncChatStream``): the snapshots are turned into deltas.
- **Post + update**: one ``chat.postMessage`` and throttled ``chat.update`` calls (at most one a second),
  when the workspace cannot stream (remembered per workspace for a while), when Slack rate-limits the
  stream's start, or when a stream call fails.

First visible feedback: ``thinking`` (called by the engine just before it asks the model) sets the
thread's "is thinking…" status (``assistant.threads.setStatus``, which Slack allows in channel threads
and DMs with ``chat:write``); Slack clears it when the reply's message appears, so nothing is left
behind. The reply itself appears once it is worth showing (``MIN_CHARS`` or ``INTERVAL`` seconds after
its first text); a short, quick reply costs one ``chat.postMessage`` and nothing else.

Streaming degrades, never stalls (see ``APPEND_EVERY``): appends are batched so that a normal reply costs
at most three stream calls; Slack's rate limits on stream calls are never waited out while the model
writes (``retry.NOT_WAITED``): a rate-limited start turns this reply into post + update, a rate-limited
append pauses the appends (the text waits in ``AsyncChatStream``'s buffer, where a refused call leaves
it) and the next append or the stop catches up. If a snapshot does not extend what was streamed (a retry
took text back), or an append fails in a way that may have shown its text, the stream is stopped and the
same message continues by ``chat.update``, so it never shows text twice or text the reply no longer has.

Stop: when the person presses Stop, Slack ends the stream, and the next stream call answers
``message_not_in_streaming_state``. ``update`` then raises ``ReplyStopped`` with what the person saw
(the engine ends the model call and keeps that text), and nothing is rewritten afterwards. As appends
are seconds apart, the model may finish first: ``settle`` (called by the engine before it stores the
turn) stops the stream then, and raises ``ReplyStopped`` the same way if the person had stopped it.

``finish`` makes the message(s) show exactly the engine's final reply — or, when the turn failed, what
was shown plus the short error note — and posts the overflow of a long reply in further messages (code
blocks closed and reopened at the cut).

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

from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import CALL_FAILED, error_code
from adapters.slack.reply_calls import (
    STREAM_ENDED,
    STREAM_UNAVAILABLE,
    ReplyCalls,
    rate_limited,
)
from adapters.slack.translate import MAX_MARKDOWN_CHARS, escape, split_markdown
from bot.model import ReplyStopped
from bot.text import split_head
from bot.types import CrisisCard

log = logging.getLogger(__name__)

MIN_CHARS = 200  # show the reply once this much text is waiting …
INTERVAL = 1.0  # … or this many seconds after its first text; also the least time between two chat.update
# The least time between two stream calls, growing with each append: the stream starts, its first append
# comes 3 s later at the earliest, the next 6 s after that. A reply the model finishes within 9 s of its
# first words showing (about 2,000 characters at Claude's pace) costs start + one append + stop. Slack
# limits the stream methods per workspace (start and stop to about 20 a minute), so fewer calls per reply
# leave room for more replies; the person reads at the pace of these batches either way.
APPEND_EVERY: tuple[float, ...] = (3.0, 6.0, 12.0)
# What the thread shows while the model thinks (``assistant.threads.setStatus``).
THINKING = "is thinking…"
# Streaming stops this far before the limit, so the cut for the next message can find a line break.
STREAM_HOLDBACK = 1_500


@dataclass
class _Head:
    """The message that shows the start of the reply."""

    ts: str
    mode: str  # "stream" (open stream) or "markdown" (an ordinary message, edited by chat.update)
    shown: str  # the Markdown it shows (a stream: handed to it, including what waits after a 429)
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
        thinking: str | None = THINKING,
    ) -> None:
        self._help_first = help_first
        self._on_ref = on_ref
        self._client = client
        self._calls = ReplyCalls(client, channel=channel, thread_ts=thread_ts, clock=clock)
        self._channel = channel
        self._thread_ts = thread_ts
        self._team = team
        self._user = user
        self._may_stream = stream
        self._unavailable = on_stream_unavailable
        self._clock = clock
        self._max_markdown = max_markdown or MAX_MARKDOWN_CHARS
        self._thinking = thinking
        self._snapshot = ""
        self._first_at: float | None = None
        self._head: _Head | None = None
        self._stream: AsyncChatStream | None = None
        self._appends = 0
        self._held = ""  # the end of head.shown a rate-limited call left in the stream's buffer
        self._stopped = False  # the person stopped the stream: nothing more is sent
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

    @property
    def stopped(self) -> bool:
        """The person stopped this reply (Slack's Stop button): it shows what it showed then."""
        return self._stopped

    # -- while the model writes ---------------------------------------------------------------------

    async def thinking(self) -> None:
        """The model is being asked (``bot.ports.ShowsThinking``): show the thread's status at once."""
        if self._thinking is None or self._head is not None or self._done:
            return
        status, self._thinking = self._thinking, None  # once per reply
        await self._calls.set_status(status)

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
            if self._stopped:
                raise ReplyStopped(head.shown)
        if text.strip() and (head.stale or now - head.last >= INTERVAL) and now >= self._calls.paused_until:
            # An edit the final one makes good anyway: a rate limit pauses the edits, never the model.
            await self._edit(self._head_part(text), now, optional=True)

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
            except CALL_FAILED as exc:
                code = error_code(exc)
                if code in STREAM_UNAVAILABLE and self._unavailable is not None:
                    self._unavailable(code)
                # A rate-limited start is this reply's alone: the next one tries to stream again.
                log.info("slack stream not started; posting instead", extra={"error": code})
            self._may_stream = False
        part = self._head_part(text)
        # Not waited out on a 429 either: the reply is then drawn whole when the turn is done.
        ts = await self._calls.post(part, optional=True)
        if ts:
            self._head = _Head(ts, "markdown", part, self._clock())
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
        gap = APPEND_EVERY[min(self._appends, len(APPEND_EVERY) - 1)]
        if not delta or now < self._calls.paused_until or now - head.last < gap:
            return
        self._appends += 1
        try:
            await stream.append(markdown_text=delta)
        except CALL_FAILED as exc:
            await self._stream_call_failed(exc, delta, now)
            return
        head.shown += delta
        head.last, self._held = now, ""

    async def _stream_call_failed(self, exc: Exception, delta: str, now: float) -> None:
        """An append failed: pause after a rate limit, stop after Stop, else leave the stream."""
        head = self._head
        assert head is not None
        if error_code(exc) == STREAM_ENDED:
            self._stopped = self._done = True
            self._stream = None
            raise ReplyStopped(self._confirmed()) from None
        wait = rate_limited(exc)
        if wait is not None:
            # Slack did nothing, and AsyncChatStream keeps the refused text in its buffer: it goes out
            # with the next append or the stop, which wait for Slack's Retry-After, not the model.
            log.info("slack stream append rate limited; pausing appends", extra={"retry_after": wait})
            head.shown += delta
            self._held += delta
            self._calls.paused_until = now + wait
            return
        # Whether Slack took the text is unknown: never repeat an append; rewrite the message instead.
        log.warning("slack stream append failed", extra={"error": error_code(exc)})
        await self._leave_stream()
        if self._stopped:
            raise ReplyStopped(head.shown)

    def _confirmed(self) -> str:
        """What the person sees in the streamed message: what Slack accepted (not what waits)."""
        head = self._head
        assert head is not None
        return head.shown[: len(head.shown) - len(self._held)]

    async def _leave_stream(self) -> None:
        """Stop the stream where it is; the message goes on as an ordinary one, by ``chat.update`` —
        unless the person had stopped it already (``stopped``): then it keeps what it shows."""
        head = self._head
        assert head is not None
        confirmed = self._confirmed()
        self._stream, self._held = None, ""
        head.mode, head.stale = "markdown", True
        try:
            await self._client.chat_stopStream(channel=self._channel, ts=head.ts)
        except CALL_FAILED as exc:
            if error_code(exc) == STREAM_ENDED:
                self._stopped = self._done = True
                head.shown, head.stale = confirmed, False
                return
            log.warning("slack call failed", extra={"call": "chat.stopStream", "error": error_code(exc)})

    def _head_part(self, text: str) -> str:
        return split_head(text, self._max_markdown)[0] if text.strip() else ""

    async def _edit(self, shown: str, now: float, *, optional: bool = False) -> bool:
        head = self._head
        assert head is not None and head.mode != "stream"
        if shown == head.shown and not head.stale:
            return True
        if self._resumed:
            # The earlier attempt may have left its stream open, and an open stream cannot be edited.
            self._resumed = False
            await self._calls.stop_stream(head.ts)
        if not await self._calls.update(head.ts, shown, optional=optional):
            return False
        head.shown, head.last, head.stale = shown, now, False
        return True

    # -- the end of the turn ------------------------------------------------------------------------

    async def settle(self, text: str) -> None:
        """The model is done and ``text`` is the reply (``bot.ports.Settles``): an open stream is stopped
        now with the rest of its message, before the turn is stored, so that a Stop pressed since the
        last append (they are seconds apart) still decides what is kept: ``ReplyStopped`` then."""
        head = self._head
        if head is None or head.mode != "stream" or self._stopped or not text.startswith(head.shown):
            return  # nothing streams, or ``finish`` has to rewrite it anyway
        self._snapshot = text
        part, _ = split_head(text, self._max_markdown, lo=len(head.shown))
        if await self._stop(part[len(head.shown) :]):
            head.shown = part
            return
        if self._stopped:
            self._done = True
            raise ReplyStopped(self._confirmed())

    async def finish(self, reply: str) -> None:
        """Make the thread show exactly ``reply`` (Markdown): the head, then the overflow as new posts.
        A reply the person stopped keeps what it showed: nothing is rewritten."""
        self._done = True
        head = self._head
        if head is None or self._stopped:
            return
        if not reply.strip():
            await self._retract()
            return
        if head.mode == "stream":
            if reply.startswith(head.shown):
                part, rest = split_head(reply, self._max_markdown, lo=len(head.shown))
                if await self._stop(part[len(head.shown) :]):
                    head.shown = part
                    await self._calls.post_all(_markdown_parts(rest, self._max_markdown))
                    return
                if self._stopped:
                    return
            else:
                await self._leave_stream()
                if self._stopped:
                    return
        part, rest = split_head(reply, self._max_markdown)
        if not await self._edit(part, self._clock()):
            await self._replace(part)
        await self._calls.post_all(_markdown_parts(rest, self._max_markdown))

    async def fail(self, note: str) -> None:
        """The turn failed: end the shown message with what it has and the short note (or post the note)."""
        self._done = True
        head = self._head
        if self._stopped:
            return
        if head is None:
            await self._calls.post(escape(note), markdown=False)
            return
        if head.mode == "stream":
            text = self._snapshot if self._snapshot.startswith(head.shown) else head.shown
            if await self._stop(f"{text[len(head.shown) : self._live_cap]}\n\n{note}"):
                return
            if self._stopped:
                return
        room = self._max_markdown - len(note) - 2
        shown = split_head(self._snapshot, room)[0].rstrip() if self._snapshot.strip() else ""
        text = f"{shown}\n\n{note}" if shown else note
        if not await self._edit(text, self._clock()):
            await self._replace(text)

    async def _stop(self, markdown: str) -> bool:
        """Close the open stream with ``markdown`` as its last text; False (and no stream) on failure."""
        stream, head = self._stream, self._head
        assert stream is not None and head is not None
        self._stream = None
        try:
            # The stream's buffer still holds what a rate-limited append left: the stop sends it first.
            await stream.stop(markdown_text=markdown or None)
        except CALL_FAILED as exc:
            if error_code(exc) == STREAM_ENDED:
                # The person pressed Stop as the model finished: the message keeps what it shows.
                self._stopped = True
                return False
            log.warning("slack stream stop failed", extra={"error": error_code(exc)})
            # Try to close it without text; the message is then rewritten by chat.update.
            await self._calls.stop_stream(head.ts)
            head.mode, head.stale = "markdown", True
            self._held = ""
            return False
        head.shown += markdown
        head.mode, self._held = "markdown", ""
        return True

    async def _replace(self, text: str) -> None:
        """The head could not be updated: post the text anew and take the old message away."""
        head = self._head
        assert head is not None
        ts = await self._calls.post(text)
        if ts is None:
            return
        await self._calls.delete(head.ts)
        head.ts, head.shown, head.stale = ts, text, False
        await self._tell_ref(ts)

    async def _retract(self) -> None:
        """The final reply has no text (all of it was taken back): remove what was shown."""
        head = self._head
        assert head is not None
        if head.mode == "stream":
            await self._calls.stop_stream(head.ts)
        await self._calls.delete(head.ts)


def _markdown_parts(markdown: str, limit: int) -> list[str]:
    return split_markdown(markdown, limit) if markdown.strip() else []
