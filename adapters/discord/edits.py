"""The fork offer when someone edits their message in an ended conversation, as Slack makes it.

Whether there is an offer at all (an ended conversation, the message's own author, once per edit) is the
engine's call (``Engine.fork_offer``). Pressing the offer's button forks from the edited text exactly as
``/haven fork <link> <text>`` does (``Forks.fork``).

Discord has no ephemeral message outside an interaction, and an edit is not one. So the offer is one
short message next to the edit, with a button only its author can use (``interaction_check``; anyone
else is told so privately), that deletes itself once used or after ``EditOffers.offer_seconds``. A DM
would be private, but people often refuse DMs from server members, and it would pull the author away
from the thread they are reading; in a DM conversation the offer is private anyway. It is not a reply to
the edited message: Discord requires Read Message History for replies, which Haven does not ask for.

The offer lives in this process only (it carries the edited text): after a restart its button no longer
answers, and the message menu's **Edit & fork** still works on the edited message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import ui

from adapters.discord.fork import Forks
from adapters.discord.shared import Shared, ephemeral
from adapters.discord.translate import (
    edit_key,
    is_ignored,
    message_text,
    nonce_for,
    place_locale,
    words_for,
)
from adapters.discord.views import answer_failure, first_delivery
from bot.failures import log_failure
from bot.i18n import Strings, english, strings_for
from bot.types import ForkSource

log = logging.getLogger(__name__)

# Long enough to notice the offer after fixing a message, short enough not to linger in the channel.
FORK_OFFER_SECONDS = 600.0
# The English entries of ``discord.fork_offer_button`` / ``only_the_editor`` / ``offer_used``: the offer
# and its answers are in the language of the person they are for (``bot/locales``).
FORK_OFFER_BUTTON = "Continue from my edit"
ONLY_THE_AUTHOR = "Only the person who edited that message can use this."
ALREADY_USED = "This offer has been used already."

Press = Callable[[discord.Interaction[Any]], Awaitable[None]]


def offer_text(author_id: int, *, in_dm: bool, strings: Strings | None = None) -> str:
    t = strings or english()
    return t("discord.fork_offer_dm" if in_dm else "discord.fork_offer", user=f"<@{author_id}>")


class ForkOfferView(ui.View):
    """One button for one person; gone once pressed or timed out."""

    def __init__(
        self, author_id: int, press: Press, *, timeout: float, strings: Strings | None = None
    ) -> None:
        super().__init__(timeout=timeout)
        self.author_id = author_id
        self.message: discord.Message | None = None
        self._press = press
        self.fork.label = (strings or english())("discord.fork_offer_button")

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.user.id != self.author_id:
            # Said to whoever pressed, in their client's language.
            await ephemeral(interaction, words_for(interaction)("discord.only_the_editor"))
            return False
        # The same press delivered twice (a gateway replay) forks once.
        return await first_delivery(interaction)

    @ui.button(label=FORK_OFFER_BUTTON, style=discord.ButtonStyle.primary)
    async def fork(self, interaction: discord.Interaction[Any], _: ui.Button[ForkOfferView]) -> None:
        if self.is_finished():
            # A second press that arrived while the first was checked: the first one forks.
            await ephemeral(interaction, words_for(interaction)("discord.offer_used"))
            return
        self.stop()  # before any await, so that no other press gets past the check above
        try:
            await self._press(interaction)
        finally:
            await self.remove()

    async def on_timeout(self) -> None:
        await self.remove()

    async def remove(self) -> None:
        message, self.message = self.message, None
        if message is not None:
            with contextlib.suppress(discord.HTTPException):
                await message.delete()

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: ui.Item[Any], /
    ) -> None:
        await answer_failure(interaction, error, "fork offer")


class EditOffers:
    def __init__(self, shared: Shared, forks: Forks) -> None:
        self._shared = shared
        self._forks = forks
        self.offer_seconds = FORK_OFFER_SECONDS

    async def on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        try:
            async with self._shared.working():
                await self._on_edit(payload)
        except Exception as exc:
            log_failure(log, "discord edit failed", exc, message_id=payload.message_id)

    async def _on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        shared = self._shared
        message = payload.message
        edited_at = payload.data.get("edited_timestamp")
        # An update without an edit time is Discord adding an embed or a flag, not the person's words.
        if not edited_at or is_ignored(message, shared.bot_id):
            return
        text = message_text(message, shared.bot_id)
        if not text:
            return
        channel: Any = message.channel
        if message.guild is not None and not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            channel = await shared.resolve_channel(message.guild, payload.channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return
        guild_id = message.guild.id if message.guild else None
        source = await self._forks.source_for(guild_id, channel, message.id)
        if source is None:
            return
        key = edit_key(payload.channel_id, message.id, str(edited_at))
        offered = await shared.engine.fork_offer(source.thread, str(message.id), str(message.author.id), key)
        if offered is None:
            return
        await self._offer(channel, message.author.id, offered, text, key, in_dm=guild_id is None)

    async def _offer(
        self,
        channel: discord.abc.Messageable,
        author_id: int,
        source: ForkSource,
        text: str,
        key: str,
        *,
        in_dm: bool,
    ) -> None:
        async def press(interaction: discord.Interaction[Any]) -> None:
            await self._forks.fork(interaction, source, text)

        # For its author alone: in their language as their latest interaction showed it (an edit is not an
        # interaction and carries no locale), else the server's preferred one; English in a DM without.
        strings = strings_for(self._shared.last_locale(str(author_id)) or place_locale(channel))
        view = ForkOfferView(author_id, press, timeout=self.offer_seconds, strings=strings)
        content = offer_text(author_id, in_dm=in_dm, strings=strings)
        nonce = nonce_for(key, "fork-offer")
        sent = await self._shared.send(channel, content=content, view=view, nonce=nonce)
        if sent is None:
            view.stop()
            return
        view.message = sent
        log.info("discord fork offered on an edit", extra={"workspace": source.thread.workspace})
