"""``/haven new`` and ``/haven end``: a conversation started or closed by command.

A new conversation is a new thread in a server, the next numbered conversation in a DM; its prompt is
recorded in the durable inbox and answered like any message's (``Conversations.accepted_turn``). The
interaction itself acts once (``Engine.first_delivery``, in ``commands.HavenTree``). Who may end a
conversation is the engine's call.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord import posts
from adapters.discord.conversation import CANNOT_CREATE_THREAD, NO_THREADS_HERE, Conversations
from adapters.discord.shared import NO_MENTIONS, Shared, ephemeral, interaction_author
from adapters.discord.translate import (
    PLATFORM,
    dm_thread,
    guild_thread,
    interaction_locale,
    split_message,
    words_for,
)
from adapters.discord.views import NewConversationModal
from bot.i18n import strings_for
from bot.notices import ALREADY_ENDED, NOT_IN_CONVERSATION
from bot.types import Author, ConversationStatus, IncomingMessage, Origin


class Lifecycle:
    def __init__(self, shared: Shared, conversations: Conversations) -> None:
        self._shared = shared
        self._conversations = conversations

    # -- /haven new ------------------------------------------------------------------------------------

    async def new_conversation(self, interaction: discord.Interaction[Any], prompt: str | None) -> None:
        if prompt and prompt.strip():
            await self._start_new(interaction, prompt.strip())
            return
        # A conversation starts with a message; ask for it rather than open an empty thread.
        strings = strings_for(interaction_locale(interaction))
        await interaction.response.send_modal(NewConversationModal(self._start_new, strings))

    @staticmethod
    def _parent_for_new(interaction: discord.Interaction[Any]) -> discord.TextChannel | None:
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            channel = channel.parent
        return channel if isinstance(channel, discord.TextChannel) else None

    async def _start_new(self, interaction: discord.Interaction[Any], prompt: str) -> None:
        prompt = prompt.strip()
        if not prompt:
            await ephemeral(
                interaction,
                words_for(interaction)("adapter.discord.needs_first_message"),
            )
            return
        author = interaction_author(interaction)
        intro = f"**{discord.utils.escape_markdown(author.name)}** started a new conversation:\n>>> {prompt}"
        if interaction.guild_id is None:
            await self._start_new_dm(interaction, author, prompt, intro)
            return
        parent = self._parent_for_new(interaction)
        if parent is None:
            await ephemeral(interaction, words_for(interaction).localise(NO_THREADS_HERE))
            return
        elsewhere = await self._shared.engine.not_here(
            PLATFORM, str(interaction.guild_id), str(parent.id), interaction_locale(interaction)
        )
        if elsewhere is not None:
            await ephemeral(interaction, elsewhere)  # before a thread exists: nothing to take back
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        conversations = self._conversations
        thread = await posts.create_thread(parent, prompt)
        if thread is None:
            await interaction.followup.send(
                words_for(interaction).localise(CANNOT_CREATE_THREAD), ephemeral=True
            )
            return
        # Held from the start: a message written in the new thread waits until the conversation exists.
        async with self._shared.arrivals.hold(f"c:{thread.id}") as place:
            first = await posts.post_intro(self._shared, thread, intro, source=str(interaction.id))
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
                locale=interaction_locale(interaction),
            )
            await conversations.accepted_turn(thread, place, incoming, source=str(interaction.id))

    async def _start_new_dm(
        self, interaction: discord.Interaction[Any], author: Author, prompt: str, intro: str
    ) -> None:
        shared = self._shared
        channel_id = interaction.channel_id or 0
        async with shared.arrivals.hold(f"dm:{channel_id}") as place:
            number = await shared.current_dm(channel_id) + 1
            await interaction.response.send_message(split_message(intro)[0], allowed_mentions=NO_MENTIONS)
            first = await interaction.original_response()
            incoming = IncomingMessage(
                dm_thread(channel_id, number),
                author,
                prompt,
                str(first.id),
                Origin.NEW_COMMAND,
                dedupe_key=f"interaction:{interaction.id}",
                locale=interaction_locale(interaction),
            )
            result = await self._conversations.accepted_turn(
                shared.messageable(interaction), place, incoming, source=str(interaction.id)
            )
            if result.conversation_id is not None:
                shared.remember_dm(channel_id, number)

    # -- /haven end ------------------------------------------------------------------------------------

    async def end_conversation(self, interaction: discord.Interaction[Any]) -> None:
        shared = self._shared
        ref = await shared.interaction_ref(interaction)
        status = await shared.engine.thread_status(ref) if ref else None
        t = strings_for(interaction_locale(interaction))
        if ref is None or status is None:
            await ephemeral(interaction, t.localise(NOT_IN_CONVERSATION))
            return
        if status is ConversationStatus.ENDED:
            await ephemeral(interaction, t.localise(ALREADY_ENDED))
            return
        # The engine may wait for a model turn in this thread to finish; Discord wants an answer in 3 s.
        # Deferred privately: a refusal (e.g. not a participant) is for the person who asked only.
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with shared.working():
            result = await shared.engine.end_by_command(ref, interaction_author(interaction))

            async def private(text: str) -> None:
                await interaction.followup.send(text, ephemeral=True)

            # The notice itself is an ordinary message in the conversation, like any other ending; what
            # the person who asked is told (refused, already ended, closed) is for them only.
            await self._conversations.render(
                shared.messageable(interaction),
                result,
                source=str(interaction.id),
                ref=ref,
                user_id=str(interaction.user.id),
                private=private,
                end_command=True,
                locale=interaction_locale(interaction),
            )
