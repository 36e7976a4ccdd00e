"""Edit & fork: from the message menu or ``/haven fork <link>``, through the form, to the forked turn.

Who may fork which message is the engine's call (``Engine.may_fork``); this module finds the stored
message behind a Discord one, opens the form, and runs the fork in a new thread (or the next DM
conversation) through ``Conversations.turn``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord
from discord.channel import ThreadWithMessage

from adapters.discord import posts
from adapters.discord.conversation import CANNOT_CREATE_THREAD, NO_THREADS_HERE, Conversations
from adapters.discord.shared import Shared, ephemeral, interaction_author
from adapters.discord.translate import (
    dm_thread,
    guild_thread,
    interaction_locale,
    is_dm,
    jump_url,
    nonce_for,
    parse_message_link,
    split_message,
    thread_name,
    words_for,
)
from adapters.discord.views import ForkModal
from bot.i18n import strings_for
from bot.notices import NOT_AUTHOR
from bot.types import (
    Author,
    ForkRequest,
    ForkSource,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnResult,
    TurnStatus,
)

log = logging.getLogger(__name__)

NOT_FORKABLE = "I can only fork messages that are part of a Haven conversation in this server or DM."
# How far back a DM fork looks for the conversation that holds the picked message.
DM_FORK_LOOKBACK = 50


def message_url(source: ForkSource, *, in_forum: bool = False) -> str:
    ref = source.thread
    if is_dm(ref):
        return f"{jump_url(ref)}/{source.message_id}"
    # The mention that started a thread lives in the parent channel, under the thread's own id; a forum
    # post's first message lives in the post.
    starter = source.message_id == ref.thread and not in_forum
    channel = ref.channel if starter else ref.thread
    return f"https://discord.com/channels/{ref.workspace}/{channel}/{source.message_id}"


class Forks:
    def __init__(self, shared: Shared, conversations: Conversations) -> None:
        self._shared = shared
        self._conversations = conversations

    async def source_for(self, guild_id: int | None, channel: Any, message_id: int) -> ForkSource | None:
        """The stored user message behind a Discord message, wherever its conversation lives."""
        engine = self._shared.engine
        if guild_id is None:
            latest = await self._shared.current_dm(channel.id)
            for number in range(latest, max(0, latest - DM_FORK_LOOKBACK), -1):
                found = await engine.fork_source(dm_thread(channel.id, number), message_id=str(message_id))
                if found is not None:
                    return found
            return None
        if isinstance(channel, discord.Thread) and channel.parent_id is not None:
            ref = guild_thread(guild_id, channel.parent_id, channel.id)
        elif isinstance(channel, discord.TextChannel):
            ref = guild_thread(guild_id, channel.id, message_id)  # the mention that started a thread
        else:
            return None
        return await engine.fork_source(ref, message_id=str(message_id))

    async def from_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        channel = interaction.channel if interaction.channel is not None else message.channel
        source = await self.source_for(interaction.guild_id, channel, message.id)
        await self._offer(interaction, source)

    async def from_link(self, interaction: discord.Interaction[Any], link: str, text: str) -> None:
        parsed = parse_message_link(link)
        if parsed is None:
            await ephemeral(interaction, words_for(interaction)("discord.not_a_link"))
            return
        # Only into the same workspace: a server's link in that server, a DM's link in that DM.
        same_place = (
            parsed.guild_id == interaction.guild_id
            if interaction.guild_id
            else parsed.guild_id is None and parsed.channel_id == interaction.channel_id
        )
        if not same_place:
            await ephemeral(interaction, words_for(interaction).localise(NOT_FORKABLE))
            return
        if interaction.guild is not None:
            channel = await self._shared.resolve_channel(interaction.guild, parsed.channel_id)
        else:
            channel = self._shared.messageable(interaction)
        source = await self.source_for(interaction.guild_id, channel, parsed.message_id) if channel else None
        if not text.strip():
            await self._offer(interaction, source)
            return
        if source is None:
            await ephemeral(interaction, words_for(interaction).localise(NOT_FORKABLE))
            return
        if not await self._shared.engine.may_fork(interaction_author(interaction), source):
            await ephemeral(interaction, words_for(interaction).localise(NOT_AUTHOR))
            return
        await self.fork(interaction, source, text)

    async def _offer(self, interaction: discord.Interaction[Any], source: ForkSource | None) -> None:
        """The form, prefilled with the picked message, for the person who may fork it."""
        if source is None:
            await ephemeral(interaction, words_for(interaction).localise(NOT_FORKABLE))
            return
        if not await self._shared.engine.may_fork(interaction_author(interaction), source):
            await ephemeral(interaction, words_for(interaction).localise(NOT_AUTHOR))
            return

        async def submit(submitted: discord.Interaction[Any], text: str) -> None:
            await self.fork(submitted, source, text)

        strings = strings_for(interaction_locale(interaction))
        await interaction.response.send_modal(ForkModal(source.text, submit, strings))

    async def fork(self, interaction: discord.Interaction[Any], source: ForkSource, text: str) -> None:
        text = text.strip()
        if not text:
            await ephemeral(interaction, words_for(interaction)("discord.fork_empty"))
            return
        author = interaction_author(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild = interaction.guild
        parent = guild.get_channel(int(source.thread.channel)) if guild else None
        origin = message_url(source, in_forum=isinstance(parent, discord.ForumChannel))
        # A public post, in the language of the person who forked (their client's, as everything else
        # that answers their interaction).
        t = words_for(interaction)
        intro = f"↪️ {t('discord.forked_intro', user=f'<@{author.id}>', origin=origin)}\n>>> {text}"
        if is_dm(source.thread):
            await self._fork_dm(interaction, source, author, text, intro)
            return
        first: discord.Message | None = None
        if isinstance(parent, discord.ForumChannel):
            # A forum's conversations are its posts: the fork is a new post, the intro its first message.
            post = await self._open_post(parent, text, intro, source=str(interaction.id))
            thread, first = (post.thread, post.message) if post else (None, None)
        elif isinstance(parent, discord.TextChannel):
            thread = await posts.create_thread(parent, text)
        else:
            await interaction.followup.send(words_for(interaction).localise(NO_THREADS_HERE), ephemeral=True)
            return
        if thread is None:
            await interaction.followup.send(
                words_for(interaction).localise(CANNOT_CREATE_THREAD), ephemeral=True
            )
            return
        async with self._shared.arrivals.hold(f"c:{thread.id}"):
            if first is None:
                first = await posts.post_intro(self._shared, thread, intro, source=str(interaction.id))
            await interaction.followup.send(t("discord.forked_into", thread=thread.mention), ephemeral=True)
            ref = guild_thread(parent.guild.id, parent.id, thread.id)
            result = await self._run(thread, ref, source, author, text, first, interaction)
        if result.status is TurnStatus.IGNORED:
            with contextlib.suppress(discord.HTTPException):
                await thread.delete(reason="Haven fork refused")

    async def _open_post(
        self, forum: discord.ForumChannel, title: str, intro: str, *, source: str
    ) -> ThreadWithMessage | None:
        """A new post in a forum, opened with ``intro`` (a forum post cannot be empty)."""
        first, *rest = split_message(intro)
        try:
            post = await forum.create_thread(
                name=thread_name(title),
                content=first,
                auto_archive_duration=1440,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning(
                "cannot create a forum post",
                extra={"guild": forum.guild.id, "status": exc.status, "code": exc.code},
            )
            return None
        for index, chunk in enumerate(rest, start=1):
            await self._shared.send(post.thread, content=chunk, nonce=nonce_for(source, "intro", index))
        return post

    async def _fork_dm(
        self, interaction: discord.Interaction[Any], source: ForkSource, author: Author, text: str, intro: str
    ) -> None:
        shared = self._shared
        channel_id = int(source.thread.channel)
        target = shared.messageable(interaction)
        async with shared.arrivals.hold(f"dm:{channel_id}"):
            number = await shared.current_dm(channel_id) + 1
            first = await posts.post_intro(shared, target, intro, source=str(interaction.id))
            await interaction.followup.send(words_for(interaction)("discord.forked_into_dm"), ephemeral=True)
            result = await self._run(
                target, dm_thread(channel_id, number), source, author, text, first, interaction
            )
            if result.conversation_id is not None and result.status is not TurnStatus.IGNORED:
                shared.remember_dm(channel_id, number)

    async def _run(
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
        incoming = IncomingMessage(
            ref, author, text, message_id, Origin.THREAD_REPLY, locale=interaction_locale(interaction)
        )

        async def private(text: str) -> None:
            await interaction.followup.send(text, ephemeral=True)

        return await self._conversations.turn(target, incoming, fork=request, private=private)
