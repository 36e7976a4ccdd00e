"""Application-command sync at start-up: Haven compares its commands with the ones Discord reports
(``GET /applications/{id}/commands``) and overwrites them (``PUT``) only when they differ. Nothing is kept
on the local filesystem, so a container's fresh start or a second replica decides the same way.

Through real discord.py against the fake Discord, whose ``PUT`` stores the commands as Discord reports
them (ids, versions, the permission bitfield as a string, default option fields left out)."""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

import discord
import pytest

import adapters.discord.client as discord_client
from adapters.discord import DiscordConnector, sync_command
from adapters.discord.commands import build_tree, command_payload, commands_differ
from bot.app import Services
from fakes.fake_discord import FakeDiscord
from tests.discord.conftest import World, running


def commands_path(api: FakeDiscord) -> str:
    return rf"/applications/{api.app_id}/commands"


def puts(api: FakeDiscord) -> int:
    return len(api.calls_to("PUT", commands_path(api)))


def gets(api: FakeDiscord) -> int:
    return len(api.calls_to("GET", commands_path(api)))


def sync_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "adapters.discord.connector" and r.getMessage().startswith("app commands")
    ]


async def start_once(services: Services) -> None:
    """One Haven process: connect (where the sync happens), ready, disconnect."""
    async with running(services):
        pass


async def test_first_start_registers_then_a_new_process_only_compares(
    world: World, services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = world.api
    caplog.set_level(logging.INFO, logger="adapters.discord.connector")
    await start_once(services)
    assert (gets(api), puts(api)) == (1, 1)  # Discord had none: one overwrite
    names = sorted((c["name"], c.get("type", 1)) for c in api.commands)
    assert names == [("Edit & fork", 3), ("haven", 1), ("haven-admin", 1)]
    admin = next(c for c in api.commands if c["name"] == "haven-admin")
    assert admin["default_member_permissions"] == str(1 << 5) and admin["contexts"] == [0]
    assert sync_lines(caplog) == ["app commands synced"]

    # A new process on a fresh filesystem (another working directory): Discord's answer decides.
    caplog.clear()
    await start_once(services)
    assert (gets(api), puts(api)) == (2, 1)
    assert sync_lines(caplog) == ["app commands match Discord's; not syncing"]
    [line] = [r for r in caplog.records if r.getMessage().startswith("app commands")]
    assert line.levelno == logging.INFO
    kept = await asyncio.to_thread(lambda: [p.name for p in tmp_path.rglob("*")])
    assert [name for name in kept if not name.startswith("haven.db")] == []  # only the database file


async def test_a_changed_description_in_haven_is_synced_again(
    world: World, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new Haven release reworded a command: the next start overwrites Discord's copy, once."""
    api = world.api
    await start_once(services)
    assert puts(api) == 1

    def reworded(client: discord.Client, handler: Any) -> discord.app_commands.CommandTree[Any]:
        tree = build_tree(client, handler)
        group = tree.get_command("haven")
        assert isinstance(group, discord.app_commands.Group)
        new = group.get_command("new")
        assert new is not None
        new.description = "Start a fresh conversation"
        return tree

    monkeypatch.setattr(discord_client, "build_tree", reworded)
    await start_once(services)
    assert puts(api) == 2
    haven = next(c for c in api.commands if c["name"] == "haven")
    [new_command] = [o for o in haven["options"] if o["name"] == "new"]
    assert new_command["description"] == "Start a fresh conversation"
    await start_once(services)
    assert puts(api) == 2  # and then it matches again


async def test_commands_changed_on_discord_are_put_back(
    world: World, services: Services, tmp_path: Path
) -> None:
    """Discord reports something else than Haven has (another deployment's version, a command removed in
    the Developer Portal): overwrite."""
    api = world.api
    await start_once(services)
    haven = next(c for c in api.commands if c["name"] == "haven")
    haven["description"] = "an older description"
    await start_once(services)
    assert puts(api) == 2

    api.commands = [c for c in api.commands if c["name"] != "Edit & fork"]
    await start_once(services)
    assert puts(api) == 3
    assert len(api.commands) == 3


async def test_a_failed_fetch_is_a_warning_and_start_up_continues(
    world: World, services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord refuses the GET (a 403; a 5xx would be retried by discord.py for half a minute): the
    commands from the last sync still work, so Haven starts and a later start retries."""
    api = world.api
    api.fail_next("GET", commands_path(api), 403)
    async with running(services) as connector:
        assert await connector.ready()
    assert puts(api) == 0
    assert any(r.getMessage() == "app command sync failed" for r in caplog.records)


async def test_haven_discord_sync_overwrites_even_when_unchanged(world: World, services: Services) -> None:
    api = world.api
    connector = DiscordConnector(services)
    try:
        await connector.login()
        assert await connector.sync_commands() is True
        assert await connector.sync_commands() is False
    finally:
        await connector.disconnect()
    assert puts(api) == 1
    assert await sync_command(services) == 0
    assert puts(api) == 2


# -- the comparison itself, on Haven's real command tree ------------------------------------------------


@pytest.fixture
async def local(world: World, services: Services) -> list[dict[str, Any]]:
    """Haven's command payload, as ``tree.sync()`` would send it."""
    connector = DiscordConnector(services)
    try:
        await connector.login()
        return await command_payload(connector.client.tree)
    finally:
        await connector.disconnect()


def as_discord_reports(local: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the fake stores for a PUT of ``local`` (ids, versions, strings, defaults left out)."""
    from fakes.fake_discord import _as_reported

    out = []
    for i, command in enumerate(copy.deepcopy(local)):
        command.update(id=str(100 + i), application_id="1", version=str(200 + i))
        if command.get("default_member_permissions") is not None:
            command["default_member_permissions"] = str(command["default_member_permissions"])
        command.setdefault("description", "")
        command["options"] = [_as_reported(o) for o in command.get("options", [])]
        out.append(command)
    return out


async def test_what_discord_adds_or_leaves_out_is_no_difference(local: list[dict[str, Any]]) -> None:
    reported = as_discord_reports(local)
    assert not commands_differ(local, reported)
    assert not commands_differ(local, list(reversed(reported)))  # the order of commands does not count


@pytest.mark.parametrize(
    "change",
    [
        "admin_permissions",
        "contexts",
        "option_order",
        "required",
        "max_length",
        "extra_command",
        "command_type",
        "localization",
    ],
)
async def test_each_field_haven_sets_counts(local: list[dict[str, Any]], change: str) -> None:
    reported = as_discord_reports(local)
    haven = next(c for c in reported if c["name"] == "haven")
    admin = next(c for c in reported if c["name"] == "haven-admin")
    new = next(o for o in haven["options"] if o["name"] == "new")
    if change == "admin_permissions":
        admin["default_member_permissions"] = str(1 << 3)
    elif change == "contexts":
        admin["contexts"] = [0, 1]
    elif change == "option_order":
        haven["options"].reverse()
    elif change == "required":
        prompt = next(o for o in new["options"] if o["name"] == "prompt")
        prompt["required"] = True
    elif change == "max_length":
        prompt = next(o for o in new["options"] if o["name"] == "prompt")
        prompt["max_length"] = 100
    elif change == "extra_command":
        reported.append({**copy.deepcopy(haven), "name": "old-command", "id": "999"})
    elif change == "command_type":
        menu = next(c for c in reported if c["name"] == "Edit & fork")
        menu["type"] = 2
    elif change == "localization":
        haven["description_localizations"] = {"de": "Mit Haven sprechen"}
    assert commands_differ(local, reported)
