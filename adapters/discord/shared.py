"""What every part of Haven's Discord side shares: the core, the client, the locks and the work count.

One ``Shared`` is made per connector and handed to each part (``conversation``, ``lifecycle``, ``fork``,
``feedback``, ``admin``), so there is no module-level state and two connectors in one process (the tests
run several) never see each other's.

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
import time
from collections.abc import AsyncIterator
from typing import Any

import discord

from adapters.discord.arrivals import Arrivals
from adapters.discord.stream import StreamTiming
from adapters.discord.translate import DM_WORKSPACE, author_of, dm_thread, guild_thread
from bot.ports import CoreServices
from bot.types import Author, ThreadRef

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
_DM_HINTS_MAX = 10_000


def workspace_of(interaction: discord.Interaction[Any]) -> str:
    return str(interaction.guild_id) if interaction.guild_id else DM_WORKSPACE


def interaction_author(interaction: discord.Interaction[Any]) -> Author:
    # In a guild, Discord resolves the member's permissions for this channel into the payload.
    perms = interaction.permissions if interaction.guild_id else None
    return author_of(interaction.user, permissions=perms)


async def ephemeral(interaction: discord.Interaction[Any], content: str | None, **kwargs: Any) -> None:
    """Answer only the person who acted, whether or not the interaction was deferred."""
    kwargs.update(ephemeral=True, allowed_mentions=NO_MENTIONS)
    if content is not None:
        kwargs["content"] = content
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


class Shared:
    """The one state object of a connector's Discord side; the parts keep none of their own."""

    def __init__(self, services: CoreServices, *, stream_timing: StreamTiming | None = None) -> None:
        self.engine = services.engine
        self.admin = services.admin
        self.timing = stream_timing or StreamTiming()
        # Per conversation, the order its messages arrived in (``arrivals``): entered before the first
        # await, so messages are recorded, and replies drawn, in arrival order.
        self.arrivals = Arrivals()
        # Guilds already told (in the log) that ended threads stay open there: warn once per process.
        self.warned_no_manage_threads: set[int] = set()
        self._client: discord.Client | None = None
        self._dm_hints: dict[int, int] = {}
        # The locale of each person's latest interaction: a DM has no server language to fall back on,
        # so Haven's notices there follow the language of the person's Discord client as last seen.
        self._locales: dict[str, str] = {}
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Set at shutdown: messages still waiting for the database stop waiting by then (``stop_at``).
        self._stopping = asyncio.Event()
        self._stop_at: float | None = None

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

    # -- work in flight --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """Count work in flight, so a shutdown can let a half-posted reply finish."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def begin_stop(self, seconds: float) -> None:
        """Haven is stopping: work waiting for the database gives up ``seconds`` from now (and says so in
        its thread) instead of being dropped with the process. The first call counts."""
        if self._stop_at is None:
            self._stop_at = time.monotonic() + max(0.0, seconds)
            self._stopping.set()

    def wait_until(self, deadline: float) -> float:
        """``deadline`` (monotonic), brought forward to the shutdown's when Haven is stopping."""
        return deadline if self._stop_at is None else min(deadline, self._stop_at)

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a shutdown begins meanwhile."""
        if self._stopping.is_set():
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def drain(self, within: float) -> None:
        """Wait (at most ``within`` seconds) until no message or command is being handled."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)

    # -- channels --------------------------------------------------------------------------------------

    async def send(
        self,
        target: discord.abc.Messageable,
        *,
        nonce: str,
        content: str | None = None,
        embed: discord.Embed | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message | None:
        """One message into a channel; a failure is logged (ids and status only) and answered with None."""
        kwargs: dict[str, Any] = {"nonce": nonce, "allowed_mentions": NO_MENTIONS}
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

    async def resolve_channel(self, guild: discord.Guild, channel_id: int) -> Any:
        found = guild.get_channel_or_thread(channel_id)
        if found is not None:
            return found
        try:
            return await self.client.fetch_channel(channel_id)
        except discord.HTTPException:
            log.warning("channel not resolvable", extra={"guild": guild.id, "channel": channel_id})
            return None

    async def channel_in(self, workspace: str, channel_id: str) -> Any:
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

    def messageable(self, interaction: discord.Interaction[Any]) -> discord.abc.Messageable:
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        return self.client.get_partial_messageable(interaction.channel_id or 0)

    # -- DM conversations ------------------------------------------------------------------------------

    async def current_dm(self, channel_id: int) -> int:
        """The number of this DM channel's current conversation, 0 when there is none yet."""
        hint = self._dm_hints.get(channel_id, 0)
        number = await self.engine.latest_numbered(functools.partial(dm_thread, channel_id), hint)
        if number and number != hint:
            self.remember_dm(channel_id, number)
        return number

    def saw_locale(self, user_id: str, locale: str | None) -> None:
        if not locale or self._locales.get(user_id) == locale:
            return
        if len(self._locales) >= _DM_HINTS_MAX:
            self._locales.clear()  # bounded; a forgotten locale only means English until the next one
        self._locales[user_id] = locale

    def last_locale(self, user_id: str) -> str | None:
        """The locale of ``user_id``'s latest interaction with this process, if any."""
        return self._locales.get(user_id)

    def remember_dm(self, channel_id: int, number: int) -> None:
        if len(self._dm_hints) >= _DM_HINTS_MAX:
            self._dm_hints.clear()
        self._dm_hints[channel_id] = number

    async def interaction_ref(self, interaction: discord.Interaction[Any]) -> ThreadRef | None:
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
