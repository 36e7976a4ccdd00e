"""The Discord side of every Haven action: gateway messages and interactions in, engine calls, Discord out.

Translation only: who may end, warn or fork is decided by the engine and ``bot.admin``; this module finds
the right ``ThreadRef``, calls the core, and renders its result (threads, embeds, modals, lock/archive).

DM conversations are numbered per DM channel (``translate.dm_thread``). The current one is the highest
number the core knows (``Engine.latest_numbered``: a few look-ups, as numbers are contiguous), and a
per-process hint makes the usual case two look-ups. Nothing else is kept, so it survives restarts and
several processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord

from adapters.discord import embeds
from adapters.discord.render import DiscordRenderer
from adapters.discord.stream import DiscordReplyStream, StreamTiming
from adapters.discord.translate import (
    DM_WORKSPACE,
    PLATFORM,
    author_of,
    dm_thread,
    guild_thread,
    incoming_from_message,
    is_dm,
    is_ignored,
    jump_url,
    nonce_for,
    parse_message_link,
    split_message,
    thread_name,
)
from adapters.discord.views import (
    FeedbackModal,
    ForkModal,
    NewConversationModal,
    ResourcesModal,
)
from bot.admin import BadSetting, NotAllowed
from bot.failures import log_failure, retry_turn
from bot.locks import KeyedLocks
from bot.notices import (
    ADMIN_ONLY,
    ALREADY_ENDED,
    DEFAULT_CRISIS_MESSAGE,
    FEEDBACK_THANKS,
    NOT_AUTHOR,
    NOT_IN_CONVERSATION,
    TURN_FAILED,
    crisis_card,
)
from bot.ports import CoreServices
from bot.presentation import render
from bot.types import (
    AdminAlert,
    Author,
    ConversationStatus,
    CrisisCard,
    Digest,
    ForkRequest,
    ForkSource,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnResult,
    TurnStatus,
)

log = logging.getLogger(__name__)

# A thread started from a message that already has one (a replayed MESSAGE_CREATE).
THREAD_ALREADY_EXISTS = 160004
NOT_FORKABLE = "I can only fork messages that are part of a Haven conversation in this server or DM."
NO_THREADS_HERE = "Use this in a text channel (or one of my threads there), or in a DM with me."
CANNOT_CREATE_THREAD = (
    "I couldn't start a thread here — I need the **Create Public Threads** and **Send Messages in "
    "Threads** permissions in this channel."
)
# How far back a DM fork looks for the conversation that holds the picked message.
DM_FORK_LOOKBACK = 50
_DM_HINTS_MAX = 10_000
_NO_MENTIONS = discord.AllowedMentions.none()


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


def workspace_of(interaction: discord.Interaction[Any]) -> str:
    return str(interaction.guild_id) if interaction.guild_id else DM_WORKSPACE


def interaction_author(interaction: discord.Interaction[Any]) -> Author:
    # In a guild, Discord resolves the member's permissions for this channel into the payload.
    perms = interaction.permissions if interaction.guild_id else None
    return author_of(interaction.user, permissions=perms)


async def _ephemeral(interaction: discord.Interaction[Any], content: str | None, **kwargs: Any) -> None:
    """Answer only the person who acted, whether or not the interaction was deferred."""
    kwargs.update(ephemeral=True, allowed_mentions=_NO_MENTIONS)
    if content is not None:
        kwargs["content"] = content
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


class DiscordHandler:
    def __init__(self, services: CoreServices, *, stream_timing: StreamTiming | None = None) -> None:
        self._engine = services.engine
        self._timing = stream_timing or StreamTiming()
        self._admin = services.admin
        self._client: discord.Client | None = None
        # Per-conversation FIFO locks: taken before the first await, so replies keep arrival order.
        self._lock = KeyedLocks()
        self._dm_hints: dict[int, int] = {}
        self._warned_no_manage_threads: set[int] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def bind(self, client: discord.Client) -> None:
        self._client = client

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise RuntimeError("handler is not bound to a client")
        return self._client

    @property
    def bot_id(self) -> int:
        user = self.client.user
        return user.id if user else 0

    @contextlib.asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        """Count work in flight, so a shutdown can let a half-posted reply finish."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def drain(self, within: float) -> None:
        """Wait (at most ``within`` seconds) until no message or command is being handled."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)

    # -- gateway messages ------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if is_ignored(message, self.bot_id):
            return
        channel = message.channel
        if isinstance(channel, discord.DMChannel):
            key = f"dm:{channel.id}"
        elif isinstance(channel, discord.Thread | discord.PartialMessageable):
            key = f"c:{channel.id}"
        else:
            key = f"c:{message.id}"  # a mention's thread gets the message's id
        async with self._working(), self._lock(key):
            try:
                await self._on_message(message)
            except Exception as exc:
                log_failure(log, "discord message failed", exc, message_id=message.id)

    async def _on_message(self, message: discord.Message) -> None:
        if isinstance(message.channel, discord.PartialMessageable) and message.guild is not None:
            # A thread discord.py has not cached (e.g. unarchived while we were away).
            resolved = await self._resolve_channel(message.guild, message.channel.id)
            if resolved is None:
                return
            message.channel = resolved
        dm_number: int | None = None
        if isinstance(message.channel, discord.DMChannel):
            dm_number = max(1, await self.current_dm(message.channel.id))
        incoming = incoming_from_message(message, self.bot_id, dm_conversation=dm_number)
        if incoming is None:
            return
        target: discord.abc.Messageable = message.channel
        if incoming.origin is Origin.MENTION:
            thread = await self._thread_for_mention(message, incoming.text)
            if thread is None:
                return
            target = thread
        await self._turn(target, incoming)
        if dm_number is not None:
            self._remember_dm(message.channel.id, dm_number)

    async def _resolve_channel(self, guild: discord.Guild, channel_id: int) -> Any:
        found = guild.get_channel_or_thread(channel_id)
        if found is not None:
            return found
        try:
            return await self.client.fetch_channel(channel_id)
        except discord.HTTPException:
            log.warning("channel not resolvable", extra={"guild": guild.id, "channel": channel_id})
            return None

    async def _thread_for_mention(self, message: discord.Message, text: str) -> discord.Thread | None:
        try:
            return await message.create_thread(name=thread_name(text), auto_archive_duration=1440)
        except discord.HTTPException as exc:
            guild = message.guild
            if exc.code == THREAD_ALREADY_EXISTS and guild is not None:
                # A replay: the thread has the message's id. The engine will see the duplicate.
                existing = await self._resolve_channel(guild, message.id)
                return existing if isinstance(existing, discord.Thread) else None
            log.warning(
                "cannot start a thread",
                extra={"guild": guild.id if guild else None, "status": exc.status, "code": exc.code},
            )
            # Tell the person why nothing happens (if Haven may post here at all).
            await self._send(
                message.channel, content=CANNOT_CREATE_THREAD, nonce=nonce_for(str(message.id), "no-thread")
            )
            return None

    def _stream(
        self,
        target: discord.abc.Messageable,
        source: str,
        on_shown: Callable[[], Awaitable[None]] | None = None,
    ) -> DiscordReplyStream:
        async def help_first(card: CrisisCard) -> None:
            await self._send(target, embed=embeds.crisis_embed(card), nonce=nonce_for(source, "crisis"))

        return DiscordReplyStream(
            self._send, target, source=source, timing=self._timing, on_shown=on_shown, help_first=help_first
        )

    async def _turn(
        self,
        target: discord.abc.Messageable,
        incoming: IncomingMessage,
        *,
        fork: ForkRequest | None = None,
        private: Callable[[str], Awaitable[None]] | None = None,
    ) -> TurnResult:
        """One model turn, its reply streamed into ``target`` as it is written, then the rest rendered."""
        indicator = TypingIndicator(target)
        stream = self._stream(target, incoming.message_id, on_shown=indicator.stop)
        try:
            async with self._working():
                await indicator.start()
                try:
                    if fork is not None:
                        # Not retried: the fork may exist already, and its turn is then a new message.
                        result = await self._engine.fork(fork, stream)
                    else:
                        result = await retry_turn(
                            lambda _: self._engine.handle_message(incoming, stream),
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
            async with self._working():
                await self.render(
                    target,
                    result,
                    source=incoming.message_id,
                    ref=incoming.thread,
                    stream=stream,
                    user_id=incoming.author.id,
                    private=private,
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
        private: Callable[[str], Awaitable[None]] | None = None,
        end_command: bool = False,
    ) -> None:
        """Draw a turn's result with the core's presentation (``bot.presentation``); an ended guild
        thread is then locked and archived."""
        stream = stream or self._stream(target, source)

        async def alert(alert: AdminAlert) -> None:
            await self.send_alert(alert, source=source)

        async def ended() -> None:
            if isinstance(target, discord.Thread):
                await self.lock_and_archive(target)

        renderer = DiscordRenderer(
            self._send, target, stream, source=source, alert=alert, private=private, ended=ended
        )
        hints = embeds.DM_HINTS if is_dm(ref) else embeds.GUILD_HINTS
        await render(
            renderer, result, user_id=user_id, hints=hints, reply_shown=stream.shown, end_command=end_command
        )

    async def _send(
        self,
        target: discord.abc.Messageable,
        *,
        nonce: str,
        content: str | None = None,
        embed: discord.Embed | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message | None:
        kwargs: dict[str, Any] = {"nonce": nonce, "allowed_mentions": _NO_MENTIONS}
        if embed is not None:
            kwargs["embed"] = embed
        if view is not None:
            kwargs["view"] = view
        try:
            return await target.send(content, **kwargs)
        except discord.HTTPException as exc:
            log.warning(
                "discord send failed",
                extra={"channel": getattr(target, "id", None), "status": exc.status, "code": exc.code},
            )
            return None

    async def lock_and_archive(self, thread: discord.Thread) -> None:
        guild = thread.guild
        me = guild.me
        try:
            allowed = me is not None and thread.permissions_for(me).manage_threads
        except discord.ClientException:
            allowed = False  # parent channel not cached; Discord would refuse anyway
        if not allowed:
            if guild.id not in self._warned_no_manage_threads:
                self._warned_no_manage_threads.add(guild.id)
                log.warning(
                    "ended threads stay open: Haven lacks Manage Threads in this server",
                    extra={"guild": guild.id},
                )
            return
        try:
            await thread.edit(locked=True, archived=True, reason="Haven ended this conversation")
        except discord.HTTPException as exc:
            log.warning("lock/archive failed", extra={"guild": guild.id, "status": exc.status})

    async def send_alert(self, alert: AdminAlert, *, source: str) -> None:
        if is_dm(alert.thread):
            return
        guild = self.client.get_guild(int(alert.thread.workspace))
        channel = (
            guild.get_channel_or_thread(int(alert.channel)) if guild and alert.channel.isdigit() else None
        )
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            log.warning("alert channel not found", extra={"guild": alert.thread.workspace})
            return
        await self._send(
            channel, content=embeds.alert_text(alert), nonce=nonce_for(source, f"alert:{alert.kind}")
        )

    async def _channel_in(self, workspace: str, channel_id: str) -> Any:
        """A guild's channel from the cache or, when another process runs that guild's shard, by REST."""
        if not (workspace.isdigit() and channel_id.isdigit()):
            return None
        guild = self.client.get_guild(int(workspace))
        if guild is not None:
            return guild.get_channel_or_thread(int(channel_id))
        try:
            channel = await self.client.fetch_channel(int(channel_id))
        except discord.HTTPException:
            return None
        # Only ever the workspace's own channel.
        guild_id = getattr(getattr(channel, "guild", None), "id", None)
        return channel if guild_id == int(workspace) else None

    async def send_digest(self, digest: Digest) -> None:
        # The scheduler runs in one process per deployment, which need not run this guild's shard.
        channel = await self._channel_in(digest.workspace, digest.channel)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            log.warning("digest channel not found", extra={"guild": digest.workspace})
            return
        source = f"digest:{digest.workspace}:{digest.since.isoformat()}"
        for index, chunk in enumerate(split_message(embeds.digest_text(digest))):
            await self._send(channel, content=chunk, nonce=nonce_for(source, "digest", index))

    # -- DM conversations ------------------------------------------------------------------------------

    async def current_dm(self, channel_id: int) -> int:
        """The number of this DM channel's current conversation, 0 when there is none yet."""
        hint = self._dm_hints.get(channel_id, 0)
        number = await self._engine.latest_numbered(functools.partial(dm_thread, channel_id), hint)
        if number and number != hint:
            self._remember_dm(channel_id, number)
        return number

    def _remember_dm(self, channel_id: int, number: int) -> None:
        if len(self._dm_hints) >= _DM_HINTS_MAX:
            self._dm_hints.clear()
        self._dm_hints[channel_id] = number

    async def _interaction_ref(self, interaction: discord.Interaction[Any]) -> ThreadRef | None:
        """The conversation of the channel an interaction came from, if it is a Haven conversation."""
        channel = interaction.channel
        if interaction.guild_id is None:
            if interaction.channel_id is None:
                return None
            number = await self.current_dm(interaction.channel_id)
            return dm_thread(interaction.channel_id, number) if number else None
        if isinstance(channel, discord.Thread) and channel.parent_id is not None:
            return guild_thread(interaction.guild_id, channel.parent_id, channel.id)
        return None

    def _messageable(self, interaction: discord.Interaction[Any]) -> discord.abc.Messageable:
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        return self.client.get_partial_messageable(interaction.channel_id or 0)

    # -- /haven new ------------------------------------------------------------------------------------

    async def new_conversation(self, interaction: discord.Interaction[Any], prompt: str | None) -> None:
        if prompt and prompt.strip():
            await self._start_new(interaction, prompt.strip())
            return
        # A conversation starts with a message; ask for it rather than open an empty thread.
        await interaction.response.send_modal(NewConversationModal(self._start_new))

    def _parent_for_new(self, interaction: discord.Interaction[Any]) -> discord.TextChannel | None:
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            channel = channel.parent
        return channel if isinstance(channel, discord.TextChannel) else None

    async def _start_new(self, interaction: discord.Interaction[Any], prompt: str) -> None:
        prompt = prompt.strip()
        if not prompt:
            await _ephemeral(interaction, "A new conversation needs a first message.")
            return
        author = interaction_author(interaction)
        intro = f"**{discord.utils.escape_markdown(author.name)}** started a new conversation:\n>>> {prompt}"
        if interaction.guild_id is None:
            await self._start_new_dm(interaction, author, prompt, intro)
            return
        parent = self._parent_for_new(interaction)
        if parent is None:
            await _ephemeral(interaction, NO_THREADS_HERE)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        thread = await self._create_thread(parent, prompt)
        if thread is None:
            await interaction.followup.send(CANNOT_CREATE_THREAD, ephemeral=True)
            return
        # Held from the start: a message written in the new thread waits until the conversation exists.
        async with self._lock(f"c:{thread.id}"):
            first = await self._post_intro(thread, intro, source=str(interaction.id))
            await interaction.followup.send(f"Started a new conversation: {thread.mention}", ephemeral=True)
            ref = guild_thread(interaction.guild_id, parent.id, thread.id)
            message_id = str(first.id) if first else f"new:{interaction.id}"
            incoming = IncomingMessage(
                ref,
                author,
                prompt,
                message_id,
                Origin.NEW_COMMAND,
                dedupe_key=f"interaction:{interaction.id}",
            )
            await self._turn(thread, incoming)

    async def _start_new_dm(
        self, interaction: discord.Interaction[Any], author: Author, prompt: str, intro: str
    ) -> None:
        channel_id = interaction.channel_id or 0
        async with self._lock(f"dm:{channel_id}"):
            number = await self.current_dm(channel_id) + 1
            await interaction.response.send_message(split_message(intro)[0], allowed_mentions=_NO_MENTIONS)
            first = await interaction.original_response()
            incoming = IncomingMessage(
                dm_thread(channel_id, number),
                author,
                prompt,
                str(first.id),
                Origin.NEW_COMMAND,
                dedupe_key=f"interaction:{interaction.id}",
            )
            result = await self._turn(self._messageable(interaction), incoming)
            if result.conversation_id is not None:
                self._remember_dm(channel_id, number)

    async def _create_thread(self, parent: discord.TextChannel, text: str) -> discord.Thread | None:
        try:
            return await parent.create_thread(
                name=thread_name(text), type=discord.ChannelType.public_thread, auto_archive_duration=1440
            )
        except discord.HTTPException as exc:
            log.warning(
                "cannot create a thread",
                extra={"guild": parent.guild.id, "status": exc.status, "code": exc.code},
            )
            return None

    async def _post_intro(
        self, target: discord.abc.Messageable, text: str, *, source: str
    ) -> discord.Message | None:
        first: discord.Message | None = None
        for index, chunk in enumerate(split_message(text)):
            sent = await self._send(target, content=chunk, nonce=nonce_for(source, "intro", index))
            first = first or sent
        return first

    # -- /haven end ------------------------------------------------------------------------------------

    async def end_conversation(self, interaction: discord.Interaction[Any]) -> None:
        ref = await self._interaction_ref(interaction)
        status = await self._engine.thread_status(ref) if ref else None
        if ref is None or status is None:
            await _ephemeral(interaction, NOT_IN_CONVERSATION)
            return
        if status is ConversationStatus.ENDED:
            await _ephemeral(interaction, ALREADY_ENDED)
            return
        # The engine may wait for a model turn in this thread to finish; Discord wants an answer in 3 s.
        # Deferred privately: a refusal (e.g. not a participant) is for the person who asked only.
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self._working():
            result = await self._engine.end_by_command(ref, interaction_author(interaction))

            async def private(text: str) -> None:
                await interaction.followup.send(text, ephemeral=True)

            # The notice itself is an ordinary message in the conversation, like any other ending; what
            # the person who asked is told (refused, already ended, closed) is for them only.
            await self.render(
                self._messageable(interaction),
                result,
                source=str(interaction.id),
                ref=ref,
                user_id=str(interaction.user.id),
                private=private,
                end_command=True,
            )

    # -- fork ------------------------------------------------------------------------------------------

    async def _fork_source(self, guild_id: int | None, channel: Any, message_id: int) -> ForkSource | None:
        """The stored user message behind a Discord message, wherever its conversation lives."""
        if guild_id is None:
            latest = await self.current_dm(channel.id)
            for number in range(latest, max(0, latest - DM_FORK_LOOKBACK), -1):
                found = await self._engine.fork_source(
                    dm_thread(channel.id, number), message_id=str(message_id)
                )
                if found is not None:
                    return found
            return None
        if isinstance(channel, discord.Thread) and channel.parent_id is not None:
            ref = guild_thread(guild_id, channel.parent_id, channel.id)
        elif isinstance(channel, discord.TextChannel):
            ref = guild_thread(guild_id, channel.id, message_id)  # the mention that started a thread
        else:
            return None
        return await self._engine.fork_source(ref, message_id=str(message_id))

    async def fork_from_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        channel = interaction.channel if interaction.channel is not None else message.channel
        source = await self._fork_source(interaction.guild_id, channel, message.id)
        await self._offer_fork(interaction, source)

    async def fork_from_link(self, interaction: discord.Interaction[Any], link: str, text: str) -> None:
        parsed = parse_message_link(link)
        if parsed is None:
            await _ephemeral(
                interaction, "That is not a message link — use **Copy Message Link** on the message."
            )
            return
        # Only into the same workspace: a server's link in that server, a DM's link in that DM.
        same_place = (
            parsed.guild_id == interaction.guild_id
            if interaction.guild_id
            else parsed.guild_id is None and parsed.channel_id == interaction.channel_id
        )
        if not same_place:
            await _ephemeral(interaction, NOT_FORKABLE)
            return
        if interaction.guild is not None:
            channel = await self._resolve_channel(interaction.guild, parsed.channel_id)
        else:
            channel = self._messageable(interaction)
        source = (
            await self._fork_source(interaction.guild_id, channel, parsed.message_id) if channel else None
        )
        if not text.strip():
            await self._offer_fork(interaction, source)
            return
        if source is None:
            await _ephemeral(interaction, NOT_FORKABLE)
            return
        if not await self._engine.may_fork(interaction_author(interaction), source):
            await _ephemeral(interaction, NOT_AUTHOR)
            return
        await self.fork(interaction, source, text)

    async def _offer_fork(self, interaction: discord.Interaction[Any], source: ForkSource | None) -> None:
        if source is None:
            await _ephemeral(interaction, NOT_FORKABLE)
            return
        if not await self._engine.may_fork(interaction_author(interaction), source):
            await _ephemeral(interaction, NOT_AUTHOR)
            return

        async def submit(submitted: discord.Interaction[Any], text: str) -> None:
            await self.fork(submitted, source, text)

        await interaction.response.send_modal(ForkModal(source.text, submit))

    async def fork(self, interaction: discord.Interaction[Any], source: ForkSource, text: str) -> None:
        text = text.strip()
        if not text:
            await _ephemeral(interaction, "The edited message is empty — nothing to fork.")
            return
        author = interaction_author(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        origin = _message_url(source)
        intro = f"↪️ <@{author.id}> forked this conversation from {origin} with:\n>>> {text}"
        if is_dm(source.thread):
            await self._fork_dm(interaction, source, author, text, intro)
            return
        guild = interaction.guild
        parent = guild.get_channel(int(source.thread.channel)) if guild else None
        if not isinstance(parent, discord.TextChannel):
            await interaction.followup.send(NO_THREADS_HERE, ephemeral=True)
            return
        thread = await self._create_thread(parent, text)
        if thread is None:
            await interaction.followup.send(CANNOT_CREATE_THREAD, ephemeral=True)
            return
        async with self._lock(f"c:{thread.id}"):
            first = await self._post_intro(thread, intro, source=str(interaction.id))
            await interaction.followup.send(f"Forked into {thread.mention}.", ephemeral=True)
            ref = guild_thread(parent.guild.id, parent.id, thread.id)
            result = await self._run_fork(thread, ref, source, author, text, first, interaction)
        if result.status is TurnStatus.IGNORED:
            with contextlib.suppress(discord.HTTPException):
                await thread.delete(reason="Haven fork refused")

    async def _fork_dm(
        self, interaction: discord.Interaction[Any], source: ForkSource, author: Author, text: str, intro: str
    ) -> None:
        channel_id = int(source.thread.channel)
        target = self._messageable(interaction)
        async with self._lock(f"dm:{channel_id}"):
            number = await self.current_dm(channel_id) + 1
            first = await self._post_intro(target, intro, source=str(interaction.id))
            await interaction.followup.send("Forked into a new conversation below.", ephemeral=True)
            result = await self._run_fork(
                target, dm_thread(channel_id, number), source, author, text, first, interaction
            )
            if result.conversation_id is not None and result.status is not TurnStatus.IGNORED:
                self._remember_dm(channel_id, number)

    async def _run_fork(
        self,
        target: discord.abc.Messageable,
        ref: ThreadRef,
        source: ForkSource,
        author: Author,
        text: str,
        first: discord.Message | None,
        interaction: discord.Interaction[Any],
    ) -> TurnResult:
        message_id = str(first.id) if first else f"fork:{interaction.id}"
        request = ForkRequest(
            source.conversation_id, source.message_id, ref, author, text, new_message_id=message_id
        )
        incoming = IncomingMessage(ref, author, text, message_id, Origin.THREAD_REPLY)

        async def private(text: str) -> None:
            await interaction.followup.send(text, ephemeral=True)

        return await self._turn(target, incoming, fork=request, private=private)

    # -- feedback --------------------------------------------------------------------------------------

    async def feedback_clicked(self, interaction: discord.Interaction[Any], conversation_id: str) -> None:
        async def submit(submitted: discord.Interaction[Any], comment: str) -> None:
            await self._record_feedback(submitted, conversation_id, comment)

        await interaction.response.send_modal(FeedbackModal(submit))

    async def _record_feedback(
        self, interaction: discord.Interaction[Any], conversation_id: str, comment: str
    ) -> None:
        try:
            alert = await self._engine.record_feedback(
                PLATFORM,
                workspace_of(interaction),
                conversation_id,
                str(interaction.user.id),
                comment or None,
            )
        except LookupError:
            await _ephemeral(interaction, "I couldn't find that conversation here.")
            return
        await _ephemeral(interaction, FEEDBACK_THANKS)
        if alert is not None:
            await self.send_alert(alert, source=str(interaction.id))

    # -- admin -----------------------------------------------------------------------------------------

    async def _as_admin(
        self,
        interaction: discord.Interaction[Any],
        action: Callable[[Author, str], Awaitable[None]],
    ) -> None:
        """Run an admin action; ``bot.admin`` checks the permission on every call."""
        if interaction.guild_id is None:
            await _ephemeral(interaction, "Admin commands work in a server, not in DMs.")
            return
        try:
            await action(interaction_author(interaction), str(interaction.guild_id))
        except NotAllowed:
            await _ephemeral(interaction, ADMIN_ONLY)
        except BadSetting as exc:
            await _ephemeral(interaction, f"Not changed: {exc}")

    async def resources_show(self, interaction: discord.Interaction[Any]) -> None:
        async def action(actor: Author, workspace: str) -> None:
            settings = await self._admin.settings(actor, PLATFORM, workspace)
            custom = settings.crisis_message is not None
            embed = embeds.crisis_embed(CrisisCard(settings.crisis_message or DEFAULT_CRISIS_MESSAGE))
            embed.title = f"Crisis resources ({'custom' if custom else 'built-in default'})"
            if settings.crisis_locales:
                embed.add_field(name="Locale variants", value=", ".join(sorted(settings.crisis_locales)))
            await _ephemeral(interaction, None, embed=embed)

        await self._as_admin(interaction, action)

    async def resources_set(self, interaction: discord.Interaction[Any], locale: str | None) -> None:
        async def action(actor: Author, workspace: str) -> None:
            settings = await self._admin.settings(actor, PLATFORM, workspace)
            current = (settings.crisis_locales.get(locale) if locale else None) or (
                settings.crisis_message or DEFAULT_CRISIS_MESSAGE
            )

            async def submit(submitted: discord.Interaction[Any], text: str) -> None:
                async def save(actor: Author, workspace: str) -> None:
                    saved = await self._admin.set_crisis_message(actor, PLATFORM, workspace, text, locale)
                    card = crisis_card(saved, locale)
                    await _ephemeral(
                        submitted,
                        "Saved. This is what people will see:",
                        embed=embeds.crisis_embed(card, preview=True),
                    )

                await self._as_admin(submitted, save)

            await interaction.response.send_modal(ResourcesModal(current, submit, locale))

        await self._as_admin(interaction, action)

    async def resources_reset(self, interaction: discord.Interaction[Any]) -> None:
        async def action(actor: Author, workspace: str) -> None:
            await self._admin.reset_crisis_message(actor, PLATFORM, workspace)
            await _ephemeral(interaction, "Crisis resources reset to the built-in default.")

        await self._as_admin(interaction, action)

    async def resources_preview(self, interaction: discord.Interaction[Any], locale: str | None) -> None:
        async def action(actor: Author, workspace: str) -> None:
            settings = await self._admin.settings(actor, PLATFORM, workspace)
            await _ephemeral(
                interaction, None, embed=embeds.crisis_embed(crisis_card(settings, locale), preview=True)
            )

        await self._as_admin(interaction, action)

    async def settings(self, interaction: discord.Interaction[Any], changes: dict[str, str]) -> None:
        async def action(actor: Author, workspace: str) -> None:
            settings = await self._admin.settings(actor, PLATFORM, workspace)
            for name, value in changes.items():
                settings = await self._admin.change(actor, PLATFORM, workspace, name, value)
            title = "Haven settings — saved" if changes else "Haven settings"
            await _ephemeral(interaction, None, embed=embeds.settings_embed(settings, title))

        await self._as_admin(interaction, action)

    async def endings(self, interaction: discord.Interaction[Any], limit: int) -> None:
        async def action(actor: Author, workspace: str) -> None:
            rows = await self._admin.endings(actor, PLATFORM, workspace, limit)
            await _ephemeral(interaction, None, embed=embeds.endings_embed(rows))

        await self._as_admin(interaction, action)

    async def feedback(self, interaction: discord.Interaction[Any], limit: int) -> None:
        async def action(actor: Author, workspace: str) -> None:
            rows = await self._admin.feedback(actor, PLATFORM, workspace, limit)
            await _ephemeral(interaction, None, embed=embeds.feedback_embed(rows))

        await self._as_admin(interaction, action)


def _message_url(source: ForkSource) -> str:
    ref = source.thread
    if is_dm(ref):
        return f"{jump_url(ref)}/{source.message_id}"
    # The mention that started a thread lives in the parent channel, under the thread's own id.
    channel = ref.channel if source.message_id == ref.thread else ref.thread
    return f"https://discord.com/channels/{ref.workspace}/{channel}/{source.message_id}"
