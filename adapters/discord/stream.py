"""A reply written into Discord while the model writes it: the engine's ``bot.ports.ReplyStream``.

The engine hands ``update`` the *whole* reply so far, never a delta, and a retried model call may take
text back, so every flush lays the latest snapshot out afresh with ``split_message`` (the same split the
non-streaming path uses) and reconciles it with the messages already posted: a chunk that changed is
edited, a new chunk is posted. Nothing is shown until the reply is worth showing (``first_words`` words,
or ``first_wait`` seconds after its first text), so a short, quick reply costs a single create. After
that a background task flushes at most once per ``interval`` seconds, always with the newest snapshot
(updates in between are coalesced), so the model's stream never waits for Discord.

When the reply outgrows a message, the message ends at a line break (a code block open there is closed
and reopened in the next message) and the reply continues in a new one. While streaming, the last
message closes an open code block so it renders as code.

``finish`` stops the background task and makes the messages show exactly the final text — the engine's
reply, or, for a turn that failed half-way, what was streamed plus the short error note — in exactly the
layout ``split_message`` gives (editing what differs, posting what is missing, deleting what a retry made
superfluous). Creates carry the same nonces as the non-streaming path, so a retried create is posted once.

The durable inbox: ``source`` is then the inbox entry's id, so a recovered turn's creates carry the very
nonces its first attempt used, and Discord (``enforce_nonce``, which discord.py sends with every nonce)
answers a create it already made with that message instead of a second one; such a message is edited to
the text wanted now. ``on_ref`` hears the id of the reply's first message as soon as it exists (the engine
records it with the entry), and a recovered turn passes it back as ``resume``: that message is edited,
never posted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from adapters.discord.translate import FENCE, MESSAGE_LIMIT, nonce_for, split_message
from bot.failures import log_failure
from bot.types import CrisisCard

log = logging.getLogger(__name__)

_NO_MENTIONS = discord.AllowedMentions.none()


class SendFn(Protocol):
    async def __call__(
        self, target: discord.abc.Messageable, *, nonce: str, content: str | None = None
    ) -> discord.Message | None: ...


@dataclass(frozen=True, slots=True)
class StreamTiming:
    interval: float = 1.0  # least time between two flushes (Discord allows about 5 edits in 5 s)
    first_wait: float = 1.0  # a reply still shorter than first_words is shown this long after its first text
    first_words: int = 5


def close_fence(text: str) -> str:
    """``text`` with a code block that is still open at its end closed."""
    return text + "\n" + FENCE if text.count(FENCE) % 2 == 1 else text


def interim_chunks(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The messages a snapshot is shown as while streaming: the final split, open code block closed."""
    chunks = split_message(text, limit)
    if chunks:
        last = close_fence(chunks[-1])
        if len(last) <= limit:
            chunks[-1] = last
    return chunks


def final_text(reply: str, error: str | None, partial: str) -> str:
    """What a turn ends as: its reply; after a failure, what was streamed (if any) plus the error note."""
    if not error:
        return reply
    body = reply or partial
    return "\n\n".join(t for t in (close_fence(body.rstrip()) if body.strip() else "", error) if t)


def _words(text: str) -> int:
    return len(text.split())


class DiscordReplyStream:
    """One reply's messages in one channel; ``source`` keys the nonces (the message being answered)."""

    def __init__(
        self,
        send: SendFn,
        target: discord.abc.Messageable,
        *,
        source: str,
        timing: StreamTiming | None = None,
        on_shown: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        help_first: Callable[[CrisisCard], Awaitable[None]] | None = None,
        on_ref: Callable[[str], Awaitable[None]] | None = None,
        resume: discord.PartialMessage | None = None,
    ) -> None:
        self._help_first = help_first
        self._on_ref = on_ref
        self._send = send
        self._target = target
        self._source = source
        self._timing = timing or StreamTiming()
        self._on_shown = on_shown
        self._clock = clock
        self._latest = ""
        self._first_text_at: float | None = None
        self._messages: list[discord.Message | discord.PartialMessage] = []
        self._shown: list[str | None] = []  # None: what an earlier attempt left there is not known
        if resume is not None:
            self._messages.append(resume)
            self._shown.append(None)
        self._dirty = False  # the newest snapshot is not shown yet
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pump: asyncio.Task[None] | None = None
        self._last_flush = float("-inf")
        self._closed = False
        self._broken = False  # a Discord call failed while streaming: wait for ``finish``
        self.creates = 0
        self.edits = 0

    @property
    def shown(self) -> bool:
        return bool(self._messages)

    # -- the engine's side ----------------------------------------------------------------------------

    async def crisis_card(self, card: CrisisCard) -> bool:
        """The crisis resources before the reply (``bot.ports.HelpFirst``), while nothing is shown."""
        if self._help_first is None or self._messages:
            return False
        await self._help_first(card)
        return True

    async def update(self, text: str) -> None:
        if self._closed:
            return
        self._latest = text
        self._dirty = True
        if self._first_text_at is None and text.strip():
            self._first_text_at = self._clock()
        self._wake.set()
        if self._pump is None and not self._broken:
            self._pump = asyncio.create_task(self._run(), name="discord-reply-stream")

    def _due_at(self) -> float | None:
        """When the newest snapshot should be shown; None while there is nothing to show."""
        if self._messages:
            return self._last_flush + self._timing.interval
        if self._first_text_at is None or not self._latest.strip():
            return None
        if _words(self._latest) >= self._timing.first_words:
            return self._clock()
        return self._first_text_at + self._timing.first_wait

    async def _sleep(self, seconds: float | None) -> None:
        """Until ``update`` or ``finish`` wakes us, or at most ``seconds``."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _run(self) -> None:
        """Flush the newest snapshot whenever one is due. Never cancelled by ``finish``: it returns by
        itself once ``_closed`` is set, so a Discord call is never cut off half-way."""
        try:
            while not self._closed and not self._broken:
                if not self._dirty:
                    await self._sleep(None)
                    continue
                due = self._due_at()
                wait = None if due is None else due - self._clock()
                if wait is None or wait > 0:
                    await self._sleep(wait)
                    continue
                async with self._lock:
                    if self._closed:
                        return
                    self._dirty = False
                    await self._show(interim_chunks(self._latest), final=False)
        except Exception as exc:
            self._broken = True
            log_failure(log, "discord reply stream failed; the reply is posted when the turn ends", exc)

    # -- the adapter's side ---------------------------------------------------------------------------

    async def finish(self, reply: str, error: str | None = None) -> None:
        """Show the final text (see ``final_text``) in exactly its ``split_message`` layout."""
        self._closed = True
        self._wake.set()
        pump, self._pump = self._pump, None
        if pump is not None:
            await asyncio.gather(pump, return_exceptions=True)  # at most its current flush
        async with self._lock:
            text = final_text(reply, error, self._latest if self._messages else "")
            await self._show(split_message(text), final=True)
        if self.edits or len(self._messages) > 1:
            log.info(
                "discord reply streamed",
                extra={"messages": len(self._messages), "creates": self.creates, "edits": self.edits},
            )

    def stop(self) -> None:
        """Stop streaming and leave the messages as they are (a cancelled turn, a duplicate)."""
        self._closed = True
        self._wake.set()
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()

    async def _show(self, chunks: list[str], *, final: bool) -> None:
        """Make the posted messages show ``chunks``; a failed Discord call stops the interim updates."""
        if not chunks and not final:
            return  # a retry took the text back: keep what is shown until there is new text
        for index, chunk in enumerate(chunks):
            if index < len(self._messages):
                if self._shown[index] != chunk and not await self._edit(index, chunk):
                    self._broken = True
                continue
            sent = await self._send(
                self._target, content=chunk, nonce=nonce_for(self._source, "reply", index)
            )
            if sent is None:
                self._broken = True
                break  # later chunks would come out of order
            self.creates += 1
            self._messages.append(sent)
            # An earlier attempt's message, answered again for the same nonce, may say something else.
            self._shown.append(chunk if sent.content == chunk else None)
            if self._shown[index] is None and not await self._edit(index, chunk):
                self._broken = True
            if index == 0:
                await self._first(sent)
        if final:
            # A retry's reply can be shorter than what was streamed before it.
            while len(self._messages) > len(chunks):
                await self._delete(len(self._messages) - 1)
        self._last_flush = self._clock()

    async def _first(self, sent: discord.Message) -> None:
        if self._on_shown is not None:
            await self._on_shown()
        if self._on_ref is not None:
            await self._on_ref(str(sent.id))

    async def _edit(self, index: int, content: str) -> bool:
        try:
            self._messages[index] = await self._messages[index].edit(
                content=content, allowed_mentions=_NO_MENTIONS
            )
        except discord.HTTPException as exc:
            _warn("discord edit failed", self._messages[index], exc)
            return False
        self._shown[index] = content
        self.edits += 1
        return True

    async def _delete(self, index: int) -> None:
        message = self._messages.pop(index)
        self._shown.pop(index)
        try:
            await message.delete()
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            _warn("discord delete failed", message, exc)


def _warn(what: str, message: discord.Message | discord.PartialMessage, exc: discord.HTTPException) -> None:
    extra: dict[str, Any] = {"channel": message.channel.id, "status": exc.status, "code": exc.code}
    log.warning(what, extra=extra)
