"""Discord: Haven removed from a server records the departure (``haven admin purge`` may then delete the
server's data); a server only unavailable (an outage) is not a departure; joining again clears it.
Through discord.py's real gateway code against the fake gateway, wired the way ``haven run`` wires it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from adapters.discord import DiscordConnector
from bot.app import Services
from bot.connectors import build_connectors
from storage.departures import Departure, Departures
from tests.discord.conftest import World


async def departure(
    departures: Departures, guild: str, *, present: bool, seconds: float = 5.0
) -> Departure | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await departures.get("discord", guild)
        if (found is not None) == present:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"departure of {guild} {'not ' if present else ''}recorded in time")


async def test_removal_is_a_departure_an_outage_is_not_and_joining_again_clears_it(
    services: Services, world: World, tmp_path: Path
) -> None:
    [connector] = build_connectors(services)
    assert isinstance(connector, DiscordConnector)
    connector._guild_ready_timeout = 0.01
    departures = Departures(services.repo.database)
    guild = str(world.guild.id)
    await connector.connect()
    listening = asyncio.create_task(connector.listen())
    try:
        await asyncio.wait_for(connector.wait_until_ready(), 5)
        # An outage: Discord marks the server unavailable. Haven has not left it.
        await world.api.dispatch("GUILD_DELETE", {"id": guild, "unavailable": True}, guild_id=world.guild.id)
        await asyncio.sleep(0.3)
        assert await departures.get("discord", guild) is None

        back = world.api._guild_payload(world.guild)  # the outage is over ("unavailable": false)
        await world.api.dispatch("GUILD_CREATE", back, guild_id=world.guild.id)
        await world.api.dispatch("GUILD_DELETE", {"id": guild}, guild_id=world.guild.id)  # kicked
        gone = await departure(departures, guild, present=True)
        assert gone is not None and gone.reason == "guild_remove"

        # Added to the server again: a GUILD_CREATE without "unavailable" is a join, not a server back.
        joined = {k: v for k, v in world.api._guild_payload(world.guild).items() if k != "unavailable"}
        await world.api.dispatch("GUILD_CREATE", joined, guild_id=world.guild.id)
        await departure(departures, guild, present=False)
    finally:
        await connector.disconnect()
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
