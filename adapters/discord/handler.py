"""The Discord side of every Haven action, wired together: one ``Shared`` state handed to each part.

- ``conversation``: gateway messages into turns, mention threads, typing, rendering, alerts and digests;
- ``lifecycle``: ``/haven new`` and ``/haven end``;
- ``fork``: Edit & fork from the message menu or a link, its form and the forked turn;
- ``edits``: the fork offered when someone edits their message in an ended conversation;
- ``feedback``: the "this ending was a mistake" button and form;
- ``admin``: ``/haven-admin``'s gate and actions (the gate runs in ``commands.AdminCommands``).

Translation only: who may end, warn or fork is decided by the engine and ``bot.admin``.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord import posts
from adapters.discord.admin import AdminActions
from adapters.discord.conversation import Conversations
from adapters.discord.edits import EditOffers
from adapters.discord.feedback import Feedback
from adapters.discord.files import DiscordFiles
from adapters.discord.fork import Forks
from adapters.discord.inbox import DiscordRecovery
from adapters.discord.lifecycle import Lifecycle
from adapters.discord.shared import Shared
from adapters.discord.stream import StreamTiming
from adapters.discord.translate import PLATFORM
from bot.ports import CoreServices
from bot.types import Digest


class DiscordHandler:
    """What the client, the commands and the views reach: the parts, and the few calls from outside."""

    def __init__(self, services: CoreServices, *, stream_timing: StreamTiming | None = None) -> None:
        self.shared = Shared(services, stream_timing=stream_timing)
        self.conversations = Conversations(self.shared)
        self.lifecycle = Lifecycle(self.shared, self.conversations)
        self.forks = Forks(self.shared, self.conversations)
        self.edits = EditOffers(self.shared, self.forks)
        self.feedback = Feedback(self.shared)
        self.admin = AdminActions(self.shared)
        # Answers the inbox entries no live event waits on (``Engine.attach``, on connect).
        self.recovery = DiscordRecovery(self.shared, self.conversations)
        # Attachments are read from Discord's CDN only (``adapters.discord.files``).
        services.engine.attach_files(PLATFORM, DiscordFiles(services.settings.discord_file_origins))

    def bind(self, client: discord.Client) -> None:
        self.shared.bind(client)

    async def drain(self, within: float, *, stop_waiting: float | None = None) -> None:
        """Wait (at most ``within`` seconds) for the work in flight; messages still waiting for the
        database give up ``stop_waiting`` seconds from now, with the failure note in their threads."""
        if stop_waiting is not None:
            self.shared.begin_stop(stop_waiting)
        await self.shared.drain(within)

    async def on_message(self, message: discord.Message) -> None:
        await self.conversations.on_message(message)

    async def on_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.edits.on_edit(payload)

    async def send_digest(self, digest: Digest) -> None:
        await posts.send_digest(self.shared, digest)

    async def feedback_clicked(self, interaction: discord.Interaction[Any], conversation_id: str) -> None:
        # ``views.FeedbackTarget``: a closure notice's button, posted before a restart, lands here.
        await self.feedback.clicked(interaction, conversation_id)
