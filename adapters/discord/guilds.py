"""Haven leaving and joining Discord servers (guilds).

Removed from a server (kicked, banned, the server deleted; not a server merely unavailable during an
outage, which discord.py reports as ``on_guild_unavailable``), Haven records the departure, so
``haven admin purge`` may delete what it kept about the server; joining it again clears the record.
The recording is handed in by the composition root (Haven's database); this module only listens.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.discord.translate import PLATFORM
from bot.failures import log_failure

log = logging.getLogger(__name__)

# (platform, workspace, reason): record a departure. (platform, workspace): Haven is back.
Departed = Callable[[str, str, str], Awaitable[None]]
Returned = Callable[[str, str], Awaitable[None]]


class GuildLifecycle:
    def __init__(self, departed: Departed, returned: Returned) -> None:
        self._departed = departed
        self._returned = returned

    def attach(self, client: discord.Client) -> None:
        """Listen on ``client``'s guild events (``Client.event`` sets them by name)."""
        client.event(self.on_guild_remove)
        client.event(self.on_guild_join)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        try:
            await self._departed(PLATFORM, str(guild.id), "guild_remove")
        except Exception as exc:  # a gateway event has no one to answer: log it, the next removal retries
            log_failure(log, "discord guild removal not recorded", exc, workspace=str(guild.id))
            return
        log.info("discord guild removed Haven: departure recorded", extra={"workspace": str(guild.id)})

    async def on_guild_join(self, guild: discord.Guild) -> None:
        try:
            await self._returned(PLATFORM, str(guild.id))
        except Exception as exc:
            log_failure(log, "discord guild join not recorded", exc, workspace=str(guild.id))
            return
        log.info("discord guild joined", extra={"workspace": str(guild.id)})
