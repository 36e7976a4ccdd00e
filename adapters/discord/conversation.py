"""Messages into turns: gateway messages, the thread a mention opens, the typing indicator, the streamed
reply and the rest of the result drawn with the core's presentation.

Translation only: the engine decides what a turn answers, ``bot.presentation`` what is shown and to whom;
this module finds the ``ThreadRef``, calls the engine and draws (threads, embeds, lock/archive).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import discord

from adapters.discord import embeds, posts
from adapters.discord.arrivals import Place
from adapters.discord.inbox import admit
from adapters.discord.render import DiscordRenderer
from adapters.discord.shared import Shared
from adapters.discord.stream import DiscordReplyStream
from adapters.discord.translate import (
    incoming_from_message,
    is_dm,
    is_ignored,
    nonce_for,
    place_locale,
    thread_name,
)
from bot.failures import log_failure, retry_turn
from bot.i18n import strings_for
from bot.notices import TURN_FAILED
from bot.ports import StorageUnavailable
from bot.presentation import render
from bot.types import (
    AdminAlert,
    CrisisCard,
    ForkRequest,
    InboxEntry,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnResult,
    TurnStatus,
)

log = logging.getLogger(__name__)

# A thread started from a message that already has one (a replayed MESSAGE_CREATE).
THREAD_ALREADY_EXISTS = 160004
NO_THREADS_HERE = "Use this in a text channel (or one of my threads there), or in a DM with me."
CANNOT_CREATE_THREAD = (
    "I couldn't start a thread here — I need the **Create Public Threads** and **Send Messages in "
    "Threads** permissions in this channel."
)

Private = Callable[[str], Awaitable[None]]


class TypingIndicator:
    """The typing indicator while the model works, until the reply's first message is posted.

    Failing to show it must never fail the turn; ``stop`` may be called any number of times.
    """

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self._indicator = channel.typing()
        self._active = False

    async def start(self) -> None:
        try:
            await self._indicator.__aenter__()
        except (discord.HTTPException, discord.ClientException):
            return
        self._active = True

    async def stop(self) -> None:
        if self._active:
            self._active = False
            await self._indicator.__aexit__(None, None, None)


class Conversations:
    """Turns and their output; the command parts (``lifecycle``, ``fork``) run their turns through it."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    # -- gateway messages ------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if is_ignored(message, self._shared.bot_id):
            return
        channel = message.channel
        if isinstance(channel, discord.DMChannel):
            key = f"dm:{channel.id}"
        elif isinstance(channel, discord.Thread | discord.PartialMessageable):
            key = f"c:{channel.id}"
        else:
            key = f"c:{message.id}"  # a mention's thread gets the message's id
        place = self._shared.arrivals.enter(key)  # before the first await: the thread's order
        try:
            async with self._shared.working():
                await self._on_message(message, place)
        except Exception as exc:
            log_failure(log, "discord message failed", exc, message_id=message.id)
        finally:
            place.leave()

    async def _on_message(self, message: discord.Message, place: Place) -> None:
        shared = self._shared
        if isinstance(message.channel, discord.PartialMessageable) and message.guild is not None:
            # A thread discord.py has not cached (e.g. unarchived while we were away).
            resolved = await shared.resolve_channel(message.guild, message.channel.id)
            if resolved is None:
                return
            message.channel = resolved
        channel = message.channel
        in_dm = isinstance(channel, discord.DMChannel)
        # Without the database: whether Haven looks at this message at all (a DM's number comes later).
        probe = incoming_from_message(message, shared.bot_id, dm_conversation=0 if in_dm else None)
        if probe is None:
            return
        if await self._told_elsewhere(message, probe):
            return  # a channel where Haven does not answer (``Engine.gate``): no thread, nothing stored
        target: discord.abc.Messageable = channel
        if probe.origin is Origin.MENTION and isinstance(channel, discord.TextChannel):
            # The thread first (Discord alone): a note about the database has a place to go.
            thread = await self._thread_for_mention(message, probe.text)
            if thread is None:
                return
            target = thread
        dm_number = 0

        async def make() -> IncomingMessage | None:
            nonlocal dm_number
            if not in_dm:
                return probe
            dm_number = max(1, await shared.current_dm(channel.id))
            return incoming_from_message(message, shared.bot_id, dm_conversation=dm_number)

        entry = await admit(shared, place, target, make, source=str(message.id))
        if entry is None:
            return
        place.accepted()
        await self.entry_turn(target, entry, place)
        if dm_number:
            shared.remember_dm(channel.id, dm_number)

    async def _told_elsewhere(self, message: discord.Message, probe: IncomingMessage) -> bool:
        try:
            gated = await self._shared.engine.gate(probe)
        except StorageUnavailable:
            # The message waits for the database in ``admit``, whose ``Engine.accept`` applies the same
            # rule once it is back: outside the channels nothing is recorded (silently, this once).
            return False
        if gated is None:
            return False

        async def private(text: str) -> None:
            # Discord has no ephemeral message outside an interaction, and a line in the channel is the
            # noise the admins turned off there: the person reads the note in a DM with Haven instead.
            nonce = nonce_for(str(message.id), "elsewhere")
            await self._shared.send(message.author, content=text, nonce=nonce)

        await self.render(
            message.channel,
            gated,
            source=str(message.id),
            ref=probe.thread,
            user_id=probe.author.id,
            private=private,
        )
        return True

    async def _thread_for_mention(self, message: discord.Message, text: str) -> discord.Thread | None:
        try:
            return await message.create_thread(name=thread_name(text), auto_archive_duration=1440)
        except discord.HTTPException as exc:
            guild = message.guild
            if exc.code == THREAD_ALREADY_EXISTS and guild is not None:
                # A replay: the thread has the message's id. The engine will see the duplicate.
                existing = await self._shared.resolve_channel(guild, message.id)
                return existing if isinstance(existing, discord.Thread) else None
            log.warning(
                "cannot start a thread",
                extra={"guild": guild.id if guild else None, "status": exc.status, "code": exc.code},
            )
            # Tell the person why nothing happens (if Haven may post here at all).
            await self._shared.send(
                message.channel,
                content=strings_for(place_locale(message.channel)).localise(CANNOT_CREATE_THREAD),
                nonce=nonce_for(str(message.id), "no-thread"),
            )
            return None

    # -- turns -----------------------------------------------------------------------------------------

    def stream_for(
        self,
        target: discord.abc.Messageable,
        source: str,
        on_shown: Callable[[], Awaitable[None]] | None = None,
        *,
        on_ref: Callable[[str], Awaitable[None]] | None = None,
        resume: discord.PartialMessage | None = None,
    ) -> DiscordReplyStream:
        """A reply streamed into ``target``; ``source`` keys its nonces (the inbox entry's id for a turn
        with one), ``on_ref`` hears its first message's id, ``resume`` is that message from before."""
        send = self._shared.send

        async def help_first(card: CrisisCard) -> None:
            await send(target, embed=embeds.crisis_embed(card), nonce=nonce_for(source, "crisis"))

        return DiscordReplyStream(
            send,
            target,
            source=source,
            timing=self._shared.timing,
            on_shown=on_shown,
            help_first=help_first,
            on_ref=on_ref,
            resume=resume,
        )

    async def accepted_turn(
        self, target: discord.abc.Messageable, place: Place, incoming: IncomingMessage, *, source: str
    ) -> TurnResult:
        """A command's turn (``/haven new``): recorded in the inbox like a message (waiting out a
        database outage the same way), then answered with its entry. ``place`` is the command's hold."""

        async def make() -> IncomingMessage:
            return incoming

        entry = await admit(self._shared, place, target, make, source=source)
        if entry is None:
            return TurnResult(TurnStatus.DUPLICATE)
        return await self.entry_turn(target, entry)

    async def entry_turn(
        self, target: discord.abc.Messageable, entry: InboxEntry, place: Place | None = None
    ) -> TurnResult:
        """The turn of a message the inbox recorded, after the one before it in its thread (``place``).

        Drawn while the engine holds the conversation (``deliver``), with nonces keyed by the entry, and
        the reply's first message recorded as the entry's reply ref. Not retried here and no failure
        note: what this process cannot finish (a failure, a wait longer than ``lock_wait_seconds``),
        recovery finishes, continuing the reply this turn started rather than posting a second one.
        """
        shared, msg = self._shared, entry.message
        engine = shared.engine
        workspace = msg.thread.workspace
        if place is not None:
            try:
                since = place.accepted_at or time.monotonic()
                await place.after_done(engine.lock_wait_seconds - (time.monotonic() - since))
            except TimeoutError:
                log.info("discord message left to recovery: its thread is busy", extra={"entry": entry.id})
                return TurnResult(TurnStatus.IGNORED)
        indicator = TypingIndicator(target)

        async def on_ref(ref: str) -> None:
            await engine.record_reply_ref(entry.hold, ref)

        stream = self.stream_for(target, entry.id, on_shown=indicator.stop, on_ref=on_ref)

        async def deliver(result: TurnResult) -> None:
            await indicator.stop()
            await self.render(
                target,
                result,
                source=entry.id,
                ref=msg.thread,
                stream=stream,
                user_id=msg.author.id,
                locale=msg.locale,
            )

        try:
            async with shared.working():
                await indicator.start()
                try:
                    result = await engine.handle_message(msg, stream, deliver, entry)
                except Exception as exc:
                    log_failure(log, "discord turn failed; left to recovery", exc, workspace=workspace)
                    return TurnResult(TurnStatus.ERROR)
                finally:
                    await indicator.stop()
        finally:
            stream.stop()  # a no-op after render; stops the background flushes otherwise
        log.info(
            "discord message handled",
            extra={"workspace": workspace, "origin": msg.origin.value, "status": result.status.value},
        )
        return result

    async def turn(
        self,
        target: discord.abc.Messageable,
        incoming: IncomingMessage,
        *,
        fork: ForkRequest | None = None,
        private: Private | None = None,
    ) -> TurnResult:
        """One model turn, its reply streamed into ``target`` as it is written, then the rest rendered."""
        shared = self._shared
        indicator = TypingIndicator(target)
        stream = self.stream_for(target, incoming.message_id, on_shown=indicator.stop)
        try:
            async with shared.working():
                await indicator.start()
                try:
                    if fork is not None:
                        # Not retried: the fork may exist already, and its turn is then a new message.
                        result = await shared.engine.fork(fork, stream)
                    else:
                        result = await retry_turn(
                            lambda _: shared.engine.handle_message(incoming, stream),
                            shown=lambda _: stream.shown,
                            logger=log,
                            event="engine failed",
                            workspace=incoming.thread.workspace,
                        )
                except Exception as exc:
                    log_failure(log, "engine failed", exc, workspace=incoming.thread.workspace)
                    result = TurnResult(TurnStatus.ERROR, error=TURN_FAILED)
                finally:
                    await indicator.stop()
            async with shared.working():
                await self.render(
                    target,
                    result,
                    source=incoming.message_id,
                    ref=incoming.thread,
                    stream=stream,
                    user_id=incoming.author.id,
                    private=private,
                    locale=incoming.locale,
                )
        finally:
            stream.stop()  # a no-op after render; stops the background flushes if the turn was cancelled
        return result

    # -- rendering -------------------------------------------------------------------------------------

    async def render(
        self,
        target: discord.abc.Messageable,
        result: TurnResult,
        *,
        source: str,
        ref: ThreadRef,
        stream: DiscordReplyStream | None = None,
        user_id: str = "",
        private: Private | None = None,
        end_command: bool = False,
        locale: str | None = None,
    ) -> None:
        """Draw a turn's result with the core's presentation (``bot.presentation``); an ended guild
        thread is then locked and archived. The notices are in the language of ``locale`` (the person's,
        from an interaction), else of the server's preferred locale (``translate.place_locale``), else
        (a DM) of the person's latest interaction (``Shared.last_locale``)."""
        stream = stream or self.stream_for(target, source)

        async def alert(alert: AdminAlert) -> None:
            await posts.send_alert(self._shared, alert, source=source)

        async def ended() -> None:
            # Only a thread Haven opened: someone else's thread or forum post goes on without Haven
            # (which stays silent there), and locking it would silence its people too.
            if isinstance(target, discord.Thread) and target.owner_id == self._shared.bot_id:
                await posts.lock_and_archive(self._shared, target)

        renderer = DiscordRenderer(
            self._shared.send, target, stream, source=source, alert=alert, private=private, ended=ended
        )
        strings = strings_for(locale or place_locale(target) or self._shared.last_locale(user_id))
        await render(
            renderer,
            result,
            user_id=user_id,
            hints=embeds.hints(strings, dm=is_dm(ref)),
            strings=strings,
            reply_shown=stream.shown,
            end_command=end_command,
        )
