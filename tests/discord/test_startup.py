"""Start-up and lifecycle: clear errors for a rejected token and a missing intent, command sync only when
the commands changed, ``haven discord sync``, sharding, ``haven run`` wiring, the weekly digest."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.discord import DiscordConnector, DiscordStartupError, sync_command
from adapters.discord.client import HavenShardedClient
from bot.app import Services, run_connectors
from bot.connectors import build_connectors
from bot.types import Digest
from tests.discord.conftest import World, running
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_discord import FakeDiscord
from tests.support.harness import make_settings, services_for


def command_syncs(api: FakeDiscord) -> int:
    return len(api.calls_to("PUT", rf"/applications/{api.app_id}/commands"))


async def test_a_rejected_token_is_one_clear_error(
    world: World, db_url: str, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN="not-the-token")
    async with services_for(settings) as services:
        connector = DiscordConnector(services, state_dir=tmp_path)
        with pytest.raises(DiscordStartupError, match="rejected DISCORD_TOKEN") as info:
            await connector.connect()
        assert "not-the-token" not in str(info.value)
        await connector.disconnect()
    assert world.api.connected == 0


async def test_a_missing_message_content_intent_is_one_clear_error(
    db_url: str, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    async with FakeDiscord(message_content_allowed=False) as api:
        api.add_guild("Guild A")
        settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN=api.token)
        async with services_for(settings) as services:
            connector = DiscordConnector(services, state_dir=tmp_path)
            with pytest.raises(DiscordStartupError, match="4014") as info:
                await connector.connect()
            assert "Message Content Intent" in str(info.value)
            await connector.disconnect()  # safe after a failed start, and twice
            await connector.disconnect()


async def test_commands_are_synced_only_when_they_changed(
    world: World, services: Services, tmp_path: Path
) -> None:
    api = world.api
    state = tmp_path / "state"
    async with running(services, state):
        pass
    assert command_syncs(api) == 1
    names = sorted((c["name"], c.get("type", 1)) for c in api.commands)
    assert names == [("Edit & fork", 3), ("haven", 1), ("haven-admin", 1)]
    admin = next(c for c in api.commands if c["name"] == "haven-admin")
    assert int(admin["default_member_permissions"]) == 1 << 5 and admin["contexts"] == [0]

    async with running(services, state):
        pass
    assert command_syncs(api) == 1  # unchanged: no call, no daily-create budget spent

    [stored] = list(state.iterdir())
    stored.write_text("a different command set\n")
    async with running(services, state):
        pass
    assert command_syncs(api) == 2

    assert await sync_command(services, state_dir=state) == 0  # `haven discord sync` always syncs
    assert command_syncs(api) == 3


async def test_haven_discord_sync_command(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI entry point, in a thread with its own event loop while the fake serves from this one."""
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("DISCORD_TOKEN", world.api.token)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert await asyncio.to_thread(main, ["discord", "sync"]) == 0
    finally:
        # main() configures logging onto the captured stderr; later tests must not log into it.
        root.handlers[:], root.level = handlers, level
    assert "synced" in capsys.readouterr().out
    assert command_syncs(world.api) == 1
    assert list((tmp_path / ".haven").glob("discord-commands-*.sha256"))


async def test_sharded_client_serves_its_guilds(
    db_url: str, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    async with FakeDiscord() as api:
        guild_id = api.next_id()
        guild_id += (1 << 22) * ((guild_id >> 22) % 2)  # a guild that shard 0 of 2 handles
        guild = api.add_guild("Sharded", guild_id=guild_id)
        channel = api.add_text_channel(guild, "general")
        alice = api.add_member(guild, "alice")
        settings = make_settings(
            db_url, anthropic.url, DISCORD_TOKEN=api.token, DISCORD_SHARD_COUNT=2, DISCORD_SHARD_IDS="0"
        )
        async with services_for(settings) as services, running(services, tmp_path) as connector:
            assert isinstance(connector.client, HavenShardedClient)
            assert api.shards == [(0, 2)]
            mention = await api.post_message(channel, alice, "hello shard", mention_bot=True)
            await api.wait_until(lambda: api.bot_messages(int(mention["id"])), what="the reply")


async def test_haven_run_starts_discord_beside_other_connectors(
    world: World, services: Services, tmp_path: Path
) -> None:
    """``build_connectors`` picks Discord from DISCORD_TOKEN; ``run_connectors`` runs it in one loop with
    the others and disconnects it when another one finishes."""
    connectors = build_connectors(services)
    assert [c.name for c in connectors] == ["discord"]
    discord_connector = connectors[0]
    assert isinstance(discord_connector, DiscordConnector)
    discord_connector._state_dir = tmp_path  # keep the sync fingerprint out of the working directory

    class Briefly:
        name = "briefly"

        async def connect(self) -> None: ...

        async def listen(self) -> None:
            await world.api.wait_until(lambda: world.api.connected == 1, what="the gateway session")
            await asyncio.sleep(0.05)

        async def disconnect(self) -> None: ...

    await asyncio.wait_for(run_connectors([discord_connector, Briefly()]), 10)
    assert discord_connector.client.is_closed()
    await world.api.wait_until(lambda: world.api.connected == 0, what="the session to close")


async def test_weekly_digest_goes_to_the_alert_channel(world: World, bot: DiscordConnector) -> None:
    api = world.api
    mods = api.add_text_channel(world.guild, "mods")
    await api.dispatch("CHANNEL_CREATE", api.channels[mods], guild_id=world.guild.id)
    await api.wait_until(lambda: bot.client.get_channel(mods), what="the channel in the cache")
    digest = Digest(
        "discord",
        str(world.guild.id),
        str(mods),
        datetime(2026, 1, 1, tzinfo=UTC),
        endings_by_reason={"abuse": 2},
        vetoes=1,
        warnings=5,
        feedback=1,
        reported=((str(world.channel), "123"),),
    )
    await bot.send_digest(digest)
    [posted] = api.bot_messages(mods)
    assert "2 after repeated warnings" in posted["content"]
    assert f"https://discord.com/channels/{world.guild.id}/123" in posted["content"]
