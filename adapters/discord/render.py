"""Discord's ``bot.ports.Renderer``: the core's presentation items as messages and embeds in one channel.

What is shown, in which order and to whom is decided by ``bot.presentation``; this module only draws.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import discord

from adapters.discord import embeds
from adapters.discord.stream import DiscordReplyStream
from adapters.discord.translate import nonce_for
from adapters.discord.views import closure_view
from bot.presentation import AlertNotice, ClosureNotice, CrisisResources, PrivateNotice, Reply
from bot.types import AdminAlert

Private = Callable[[str], Awaitable[None]]


class Send(Protocol):
    """One message into a channel; a failure is logged and answered with None (``Shared.send``)."""

    async def __call__(
        self,
        target: discord.abc.Messageable,
        *,
        nonce: str,
        content: str | None = None,
        embed: discord.Embed | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message | None: ...


class DiscordRenderer:
    """Draws into ``target``. ``stream`` carries the reply (streamed or not, it ends in the same layout);
    ``source`` keys the nonces, so a retried send posts once. ``private`` answers the person who acted
    (an interaction's ephemeral follow-up); without one, a private notice is a short line in the
    conversation, which in a DM only that person sees anyway."""

    def __init__(
        self,
        send: Send,
        target: discord.abc.Messageable,
        stream: DiscordReplyStream,
        *,
        source: str,
        alert: Callable[[AdminAlert], Awaitable[None]],
        private: Private | None = None,
        ended: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._target = target
        self._stream = stream
        self._source = source
        self._alert = alert
        self._private = private
        self._ended = ended

    async def reply(self, item: Reply) -> None:
        if item.failed:
            await self._stream.finish("", item.text)
        else:
            await self._stream.finish(item.text)

    async def crisis_card(self, item: CrisisResources) -> None:
        await self._send(
            self._target, embed=embeds.crisis_embed(item.card), nonce=nonce_for(self._source, "crisis")
        )

    async def closure(self, item: ClosureNotice) -> None:
        await self._send(
            self._target,
            embed=embeds.closure_embed(item.conversation_id, item.text),
            view=closure_view(item.conversation_id, item.text.button),
            nonce=nonce_for(self._source, "closure"),
        )
        if self._ended is not None:
            await self._ended()

    async def private_notice(self, item: PrivateNotice) -> None:
        if self._private is not None:
            await self._private(item.text)
        else:
            await self._send(self._target, content=item.text, nonce=nonce_for(self._source, "private"))

    async def admin_alert(self, item: AlertNotice) -> None:
        await self._alert(item.alert)
