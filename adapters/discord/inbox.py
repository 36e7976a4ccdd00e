"""The durable inbox on Discord: a person's message is recorded (``Engine.accept``) before its turn runs.

Discord never delivers a gateway message again: there is no acknowledgement to withhold. So when the
database is away, ``admit`` keeps the message in memory and tries to record it again, backing off from
``ACCEPT_FIRST_DELAY`` to ``ACCEPT_MAX_DELAY`` seconds, for at most ``ACCEPT_WAIT_SECONDS`` after it
arrived (earlier at shutdown, ``Shared.begin_stop``). A thread's messages are recorded in the order they
arrived (``arrivals.Place``). When the bound is reached, the thread gets the failure note: never silence.
Once recorded, the turn runs with its entry; whatever this process cannot finish, recovery finishes (in
this process or another).

``DiscordRecovery`` is Discord's ``bot.ports.RecoverySink``: a recovered turn writes into the entry's
thread (or DM) with the nonces its first attempt used (keyed by the entry's id), and continues the
message that attempt left (``entry.reply_ref``) instead of posting a second one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord.arrivals import Place
from adapters.discord.shared import Shared
from adapters.discord.stream import DiscordReplyStream
from adapters.discord.translate import nonce_for, target_channel_id
from bot.failures import log_failure
from bot.notices import TURN_FAILED
from bot.ports import ReplyStream, StorageUnavailable
from bot.types import Accepted, InboxEntry, IncomingMessage, TurnResult

if TYPE_CHECKING:
    from adapters.discord.conversation import Conversations

log = logging.getLogger(__name__)

# How long a message Haven could not record waits in memory for the database. A database restart or a
# fail-over takes seconds to a few minutes; ten minutes rides those out, while a person still expects an
# answer (or an honest note) to the message they just wrote. Past it the thread gets the failure note.
ACCEPT_WAIT_SECONDS = 600.0
# The pauses between tries: short at first (most outages are a restart), doubling up to a cap so that a
# long outage is not hammered by every waiting message.
ACCEPT_FIRST_DELAY = 0.5
ACCEPT_MAX_DELAY = 10.0

MakeIncoming = Callable[[], Awaitable[IncomingMessage | None]]


async def admit(
    shared: Shared, place: Place, target: discord.abc.Messageable, make: MakeIncoming, *, source: str
) -> InboxEntry | None:
    """Record a message in the inbox, after the one before it in its thread; its entry, or None when
    there is nothing to answer (a duplicate, not Haven's, no words). ``make`` builds the message (it may
    need the database too, e.g. a DM's conversation number); it is called again on every try.

    While the database is away the message waits (see ``ACCEPT_WAIT_SECONDS``); when the bound is reached
    the failure note is posted in ``target`` (its nonce keyed by ``source``, the Discord message's id)."""
    await place.after_accepted()
    delay, tries = ACCEPT_FIRST_DELAY, 0
    while True:
        try:
            incoming = await make()
            if incoming is None:
                return None
            accepted, entry = await shared.engine.accept(incoming)
            if accepted is Accepted.NOT_OURS and place.behind_running:
                # A reply written in a new thread before its first turn made the conversation.
                await place.after_done()
                continue
        except StorageUnavailable as exc:
            tries += 1
            left = shared.wait_until(place.since + ACCEPT_WAIT_SECONDS) - time.monotonic()
            channel = getattr(target, "id", None)
            if left <= 0:
                event = "discord message not recorded: database unavailable"
                log_failure(log, event, exc, channel=channel, tries=tries)
                await shared.send(target, content=TURN_FAILED, nonce=nonce_for(source, "not-recorded"))
                return None
            if tries == 1:
                log_failure(
                    log, "discord message waits for the database", exc, level=logging.WARNING, channel=channel
                )
            await shared.pause(min(delay, left))
            delay = min(delay * 2, ACCEPT_MAX_DELAY)
            continue
        if tries:
            log.info("discord message recorded after the database returned", extra={"tries": tries + 1})
        if accepted is Accepted.DUPLICATE:
            log.info("discord duplicate delivery dropped", extra={"workspace": incoming.thread.workspace})
        return entry


class DiscordRecovery:
    """Discord's ``bot.ports.RecoverySink``: answers recovered inbox entries in their threads and DMs."""

    def __init__(self, shared: Shared, conversations: Conversations) -> None:
        self._shared = shared
        self._conversations = conversations

    def reply_stream(self, entry: InboxEntry, on_ref: Callable[[str], Awaitable[None]]) -> ReplyStream:
        return self._stream(self._channel(entry), entry, on_ref)

    async def message(self, entry: InboxEntry) -> IncomingMessage:
        return entry.message  # a gateway message names its author: recorded with it

    async def draw(self, entry: InboxEntry, result: TurnResult, stream: ReplyStream | None) -> None:
        thread = entry.message.thread
        target = await self._resolve(entry)
        if target is None:
            log.warning("discord recovered turn not drawn: its channel is gone", extra={"entry": entry.id})
            return  # nobody can see it any more; trying again would not change that
        live = stream if isinstance(stream, DiscordReplyStream) else self._stream(target, entry, None)
        await self._conversations.render(
            target,
            result,
            source=entry.id,
            ref=thread,
            stream=live,
            user_id=entry.message.author.id,
            locale=entry.message.locale,
        )
        log.info(
            "discord recovered turn drawn",
            extra={
                "workspace": thread.workspace,
                "status": result.status.value,
                "updated": bool(entry.reply_ref),
            },
        )

    def _stream(
        self,
        target: discord.abc.Messageable,
        entry: InboxEntry,
        on_ref: Callable[[str], Awaitable[None]] | None,
    ) -> DiscordReplyStream:
        resume = None
        if entry.reply_ref and entry.reply_ref.isdigit():
            resume = _partial_message(target, int(entry.reply_ref))
        return self._conversations.stream_for(target, entry.id, on_ref=on_ref, resume=resume)

    def _channel(self, entry: InboxEntry) -> discord.abc.Messageable:
        """The entry's channel from the cache, else a handle to it by id (no call to Discord)."""
        client = self._shared.client
        channel_id = target_channel_id(entry.message.thread)
        found: Any = client.get_channel(channel_id)
        if isinstance(found, discord.abc.Messageable):
            return found
        workspace = entry.message.thread.workspace
        guild_id = int(workspace) if workspace.isdigit() else None
        return client.get_partial_messageable(channel_id, guild_id=guild_id)

    async def _resolve(self, entry: InboxEntry) -> discord.abc.Messageable | None:
        """The entry's channel itself (a thread can then be locked when the turn ended it); None when it is
        gone or not Haven's to see. Another failure is raised: recovery tries again."""
        client = self._shared.client
        channel_id = target_channel_id(entry.message.thread)
        found: Any = client.get_channel(channel_id)
        if found is None:
            try:
                found = await client.fetch_channel(channel_id)
            except (discord.NotFound, discord.Forbidden):
                return None
        return found if isinstance(found, discord.abc.Messageable) else None


def _partial_message(target: discord.abc.Messageable, message_id: int) -> discord.PartialMessage | None:
    get = getattr(target, "get_partial_message", None)
    return get(message_id) if callable(get) else None
