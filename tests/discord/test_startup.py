"""Start-up and lifecycle: clear errors for a rejected token and a missing intent, ``haven discord sync``,
sharding, ``haven run`` wiring, the weekly digest. The command sync's comparison: ``test_command_sync``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordConnector, DiscordStartupError
from adapters.discord.client import HavenShardedClient, parse_shard_ids
from adapters.discord.translate import dm_thread, guild_thread
from bot.app import Services, run_connectors
from bot.connectors import build_connectors
from bot.types import Digest
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_discord import FakeDiscord, FakeGuild
from fakes.harness import make_settings, services_for
from fakes.postgres import PostgresServer
from tests.discord.conftest import World, running


def command_syncs(api: FakeDiscord) -> int:
    return len(api.calls_to("PUT", rf"/applications/{api.app_id}/commands"))


async def test_a_rejected_token_is_one_clear_error(
    world: World, db_url: str, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN="not-the-token")
    async with services_for(settings) as services:
        connector = DiscordConnector(services)
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
            connector = DiscordConnector(services)
            with pytest.raises(DiscordStartupError, match="4014") as info:
                await connector.connect()
            assert "Message Content Intent" in str(info.value)
            await connector.disconnect()  # safe after a failed start, and twice
            await connector.disconnect()


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
    kept = await asyncio.to_thread(lambda: [p.name for p in tmp_path.rglob("*")])
    assert [
        name for name in kept if not name.startswith("cli.db")
    ] == []  # the database only: nothing about the commands in the working directory


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
        async with services_for(settings) as services, running(services) as connector:
            assert isinstance(connector.client, HavenShardedClient)
            assert api.shards == [(0, 2)]
            mention = await api.post_message(channel, alice, "hello shard", mention_bot=True)
            await api.wait_until(lambda: api.bot_messages(int(mention["id"])), what="the reply")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0,1", [0, 1]), ("0-3", [0, 1, 2, 3]), (" 0-1, 3 ", [0, 1, 3]), ("2,", [2]), ("", None), (None, None)],
)
def test_shard_ids_are_numbers_and_ranges(value: str | None, expected: list[int] | None) -> None:
    assert parse_shard_ids(value, 4) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a", "must be shard numbers or ranges like 0,1 or 0-3"),
        ("-1", "must be shard numbers or ranges"),
        ("0;1", "must be shard numbers or ranges"),
        ("3-1", "backwards range '3-1'"),
        ("0,0-1", "lists a shard twice"),
        (",", "lists no shard"),
        ("4", "names shard 4, but DISCORD_SHARD_COUNT=4 means shards 0 to 3"),
    ],
)
def test_bad_shard_ids_are_explained(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_shard_ids(value, 4)


@pytest.mark.parametrize(
    ("count", "ids", "problem"),
    [(None, "0", "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"), (2, "0-2", "names shard 2")],
)
async def test_bad_shard_settings_stop_start_up_with_a_clear_error(
    world: World,
    db_url: str,
    anthropic: FakeAnthropic,
    tmp_path: Path,
    count: int | None,
    ids: str,
    problem: str,
) -> None:
    settings = make_settings(
        db_url, anthropic.url, DISCORD_TOKEN=world.api.token, DISCORD_SHARD_COUNT=count, DISCORD_SHARD_IDS=ids
    )
    async with services_for(settings) as services:
        connector = DiscordConnector(services)
        with pytest.raises(DiscordStartupError, match=problem):
            await connector.connect()
        await connector.disconnect()
    assert world.api.calls == [] and world.api.connected == 0


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.temporary_database(hint=request.node.name) as url:
        yield url


def guild_on_shard(api: FakeDiscord, shard: int, count: int, name: str) -> FakeGuild:
    guild_id = api.next_id()
    guild_id += (1 << 22) * ((shard - (guild_id >> 22)) % count)
    return api.add_guild(name, guild_id=guild_id)


@pytest.mark.postgres
async def test_two_processes_split_the_shards_over_one_postgresql(
    postgres_url: str, anthropic: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Haven processes (two connectors with their own services) run shards 0-1 and 2-3 of 4 against
    one database: each answers its own servers, DMs go to shard 0, and the leader's weekly summary
    reaches a server whose shard the other process runs."""

    async def identify_now(self: Any, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before each further shard's IDENTIFY (Discord's limit); not here."""

    monkeypatch.setattr(HavenShardedClient, "before_identify_hook", identify_now)
    async with FakeDiscord() as api:
        guilds = [guild_on_shard(api, shard, 4, f"Guild {shard}") for shard in range(4)]
        channels = [api.add_text_channel(g, "general") for g in guilds]
        alice = api.add_user("alice")
        for guild in guilds:
            api.add_member(guild, alice)

        def settings(ids: str) -> Any:
            return make_settings(
                postgres_url,
                anthropic.url,
                DISCORD_TOKEN=api.token,
                DISCORD_SHARD_COUNT=4,
                DISCORD_SHARD_IDS=ids,
            )

        async with (
            services_for(settings("0-1")) as first,
            services_for(settings("2,3")) as second,
            running(first) as a,
            running(second) as b,
        ):
            assert isinstance(a.client, HavenShardedClient) and isinstance(b.client, HavenShardedClient)
            assert sorted(s for s in api.shards if s) == [(0, 4), (1, 4), (2, 4), (3, 4)]
            assert {g.id for g in a.client.guilds} == {guilds[0].id, guilds[1].id}
            assert {g.id for g in b.client.guilds} == {guilds[2].id, guilds[3].id}
            refs = []
            for guild, channel in zip(guilds, channels, strict=True):
                mention = await api.post_message(channel, alice, f"hello {guild.name}", mention_bot=True)
                await api.wait_until(lambda m=mention: api.bot_messages(int(m["id"])), what="a reply")
                refs.append(guild_thread(guild.id, channel, int(mention["id"])))
            dm = api.dm_channel(alice)
            await api.post_message(dm, alice, "hello in a DM")
            await api.wait_until(lambda: api.bot_messages(dm), what="the DM reply")
            refs.append(dm_thread(dm, 1))
            await api.settle(0.2)
            assert len(anthropic.model_requests()) == 5  # every message answered once, by one process
            for ref in refs:  # one database: each process sees every conversation
                assert await first.repo.find_conversation(ref) is not None
                assert await second.repo.find_conversation(ref) is not None

            digest = Digest("discord", str(guilds[3].id), str(channels[3]), datetime(2026, 1, 1, tzinfo=UTC))
            await a.send_digest(digest)  # process A runs the scheduler; guild 3 is on B's shard
            [posted] = api.bot_messages(channels[3])
            assert "summary" in posted["content"].lower()
            wrong = Digest("discord", str(guilds[0].id), str(channels[3]), datetime(2026, 1, 1, tzinfo=UTC))
            await b.send_digest(wrong)  # never into another server's channel
            assert len(api.bot_messages(channels[3])) == 1


async def test_haven_run_starts_discord_beside_other_connectors(
    world: World, services: Services, tmp_path: Path
) -> None:
    """``build_connectors`` picks Discord from DISCORD_TOKEN; ``run_connectors`` runs it in one loop with
    the others and disconnects it when another one finishes."""
    connectors = build_connectors(services)
    assert [c.name for c in connectors] == ["discord"]
    discord_connector = connectors[0]
    assert isinstance(discord_connector, DiscordConnector)

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


def test_the_documented_invite_permissions_match_discord_py_flags() -> None:
    """docs/discord.md's permission table, its integer and its invite URL agree with discord.py's
    ``Permissions`` flags, and name exactly what Haven uses: View Channels yes, Read Message History no
    (nothing in the adapter reads a channel's history)."""
    import discord

    guide = (Path(__file__).resolve().parents[2] / "docs" / "discord.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([A-Z][A-Za-z ]+) \| (\d+) \|", guide, flags=re.MULTILINE)
    flags = {name.strip().lower().replace(" ", "_"): int(value) for name, value in rows}
    flags = {("view_channel" if k == "view_channels" else k): v for k, v in flags.items()}
    assert set(flags) == {
        "view_channel",
        "send_messages",
        "send_messages_in_threads",
        "create_public_threads",
        "manage_threads",
        "embed_links",
    }
    computed = discord.Permissions(**dict.fromkeys(flags, True))
    for name, value in flags.items():
        assert getattr(discord.Permissions, name).flag == value, name
    assert not computed.read_message_history
    [url_value] = set(re.findall(r"permissions=(\d+)", guide))
    assert int(url_value) == computed.value
    assert f"`{computed.value}` is exactly the permissions" in guide
    assert "2FA" in guide and "Manage Threads" in guide
    adapter = Path(__file__).resolve().parents[2] / "adapters" / "discord"
    for source in adapter.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert ".history(" not in text and "fetch_message(" not in text, source
