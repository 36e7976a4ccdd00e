"""``/haven-admin``: manage_guild is checked in code on every call; settings are per guild."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.commands import FAILED
from bot.admin import BadSetting
from bot.app import Services
from bot.notices import ADMIN_ONLY, DEFAULT_CRISIS_MESSAGE
from fakes.fake_discord import EPHEMERAL, ChannelOption, FakeInteraction
from tests.discord.conftest import World, closure_messages

ADMIN_COMMANDS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("resources", "show"), {}),
    (("resources", "set"), {}),
    (("resources", "reset"), {}),
    (("resources", "preview"), {}),
    (("settings",), {}),
    (("settings",), {"warnings": 4, "ending": "off"}),
    (("endings",), {}),
    (("feedback",), {}),
]


async def answered(world: World, ix: FakeInteraction) -> FakeInteraction:
    await world.api.wait_until(lambda: ix.complete, what="the interaction response")
    return ix


def embed_text(ix: FakeInteraction) -> str:
    return " ".join(
        " ".join([e.get("title") or "", e.get("description") or "", str(e.get("fields", ""))])
        for m in ix.messages()
        for e in m.get("embeds", [])
    )


@pytest.mark.parametrize(
    ("path", "options"), ADMIN_COMMANDS, ids=lambda v: "-".join(v) if isinstance(v, tuple) else ""
)
async def test_admin_commands_are_refused_without_manage_guild(
    world: World, bot: Any, services: Services, path: tuple[str, ...], options: dict[str, Any]
) -> None:
    ix = await answered(
        world, await world.api.slash(world.alice, world.channel, "haven-admin", *path, **options)
    )
    assert ix.modal is None
    [reply] = ix.messages()
    assert reply["content"] == ADMIN_ONLY and reply["flags"] & EPHEMERAL
    settings = await services.repo.get_settings("discord", str(world.guild.id))
    assert settings.abuse_warnings_before_end == 2 and settings.ending_enabled


async def test_settings_are_changed_by_admins_and_kept_per_guild(
    world: World, bot: Any, services: Services
) -> None:
    api = world.api
    other = api.add_guild("Guild B")
    # Guild B exists only now: announce it like Discord does when the bot joins a server.
    other_channel = api.add_text_channel(other, "general")
    other_admin = api.add_member(other, "bea", admin=True)
    await api.dispatch("GUILD_CREATE", api._guild_payload(other), guild_id=other.id)
    mods = api.add_text_channel(world.guild, "mods")
    await api.dispatch("CHANNEL_CREATE", api.channels[mods], guild_id=world.guild.id)

    ix = await answered(
        world,
        await api.slash(
            world.admin,
            world.channel,
            "haven-admin",
            "settings",
            ending="off",
            warnings=3,
            verify="on",
            alert_channel=ChannelOption(mods),
            retention=30,
        ),
    )
    assert "saved" in embed_text(ix)
    mine = await services.repo.get_settings("discord", str(world.guild.id))
    assert (mine.ending_enabled, mine.abuse_warnings_before_end, mine.verify_endings) == (False, 3, True)
    assert (mine.alert_channel, mine.retention_days) == (str(mods), 30)

    theirs = await services.repo.get_settings("discord", str(other.id))
    assert theirs.ending_enabled and theirs.abuse_warnings_before_end == 2 and theirs.alert_channel is None
    shown = await answered(world, await api.slash(other_admin, other_channel, "haven-admin", "settings"))
    assert "'warnings', 'value': '2'" in embed_text(shown) or "2" in embed_text(shown)
    # An admin of guild A is nobody in guild B.
    api.add_member(other, world.admin)
    refused = await answered(
        world, await api.slash(world.admin, other_channel, "haven-admin", "settings", warnings=5)
    )
    assert refused.messages()[0]["content"] == ADMIN_ONLY
    assert (await services.repo.get_settings("discord", str(other.id))).abuse_warnings_before_end == 2

    off = await answered(
        world, await api.slash(world.admin, world.channel, "haven-admin", "settings", alerts_off=True)
    )
    assert off.messages()[0]["flags"] & EPHEMERAL
    assert (await services.repo.get_settings("discord", str(world.guild.id))).alert_channel is None


async def test_crisis_resources_set_preview_and_reset(world: World, bot: Any, services: Services) -> None:
    api = world.api
    opened = await answered(
        world, await api.slash(world.admin, world.channel, "haven-admin", "resources", "set")
    )
    modal = opened.modal
    assert modal is not None and len(modal["title"]) <= 45
    [field] = [c["component"] for c in modal["components"]]
    assert field["value"] == DEFAULT_CRISIS_MESSAGE

    # The permission is checked again when the form comes back: someone else's submit is refused.
    sneaky = await answered(world, await api.submit_modal(world.alice, world.channel, modal, "evil text"))
    assert sneaky.texts() == [ADMIN_ONLY]
    assert (await services.repo.get_settings("discord", str(world.guild.id))).crisis_message is None

    reopened = await answered(
        world, await api.slash(world.admin, world.channel, "haven-admin", "resources", "set")
    )
    assert reopened.modal is not None
    custom = "Call the Example Helpline on 0800 000 000, day or night."
    saved = await answered(world, await api.submit_modal(world.admin, world.channel, reopened.modal, custom))
    assert custom in embed_text(saved)
    assert (await services.repo.get_settings("discord", str(world.guild.id))).crisis_message == custom

    shown = await answered(
        world, await api.slash(world.admin, world.channel, "haven-admin", "resources", "show")
    )
    assert custom in embed_text(shown) and "custom" in embed_text(shown)
    preview = await answered(
        world, await api.slash(world.admin, world.channel, "haven-admin", "resources", "preview")
    )
    assert custom in embed_text(preview)

    reset = await answered(
        world, await api.slash(world.admin, world.channel, "haven-admin", "resources", "reset")
    )
    assert "built-in" in reset.messages()[0]["content"]
    assert (await services.repo.get_settings("discord", str(world.guild.id))).crisis_message is None


async def test_endings_feedback_and_alerts(world: World, bot: Any, services: Services) -> None:
    api = world.api
    mods = api.add_text_channel(world.guild, "mods")
    await api.dispatch("CHANNEL_CREATE", api.channels[mods], guild_id=world.guild.id)
    await answered(
        world,
        await api.slash(
            world.admin, world.channel, "haven-admin", "settings", alert_channel=ChannelOption(mods)
        ),
    )
    mention = await api.post_message(world.channel, world.alice, "my private worries", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the reply")
    await answered(world, await api.slash(world.alice, thread, "haven", "end"))
    [closure] = await api.wait_until(lambda: closure_messages(api, thread), what="the closure notice")
    [alert] = await api.wait_until(lambda: api.bot_messages(mods), what="the admin alert")
    assert f"https://discord.com/channels/{world.guild.id}/{thread}" in alert["content"]
    assert "private worries" not in alert["content"]

    custom_id = closure["components"][0]["components"][0]["custom_id"]
    click = await api.click(world.bob, closure, custom_id)
    modal = await api.wait_until(lambda: click.modal, what="the feedback modal")
    await answered(world, await api.submit_modal(world.bob, thread, modal, ""))
    await api.wait_until(lambda: len(api.bot_messages(mods)) == 2, what="the feedback alert")
    [report] = await services.repo.list_feedback("discord", str(world.guild.id))
    assert report.comment is None

    endings = await answered(world, await api.slash(world.admin, world.channel, "haven-admin", "endings"))
    assert f"{world.guild.id}/{thread}" in embed_text(endings) and "end command" in embed_text(endings)
    feedback = await answered(world, await api.slash(world.admin, world.channel, "haven-admin", "feedback"))
    assert f"<@{world.bob.id}>" in embed_text(feedback)


# -- the group's gate and error handler ---------------------------------------------------------------


@pytest.mark.parametrize("path", [("endings",), ("resources", "show")], ids="-".join)
async def test_the_group_gate_refuses_a_non_admin_once_before_any_command_runs(
    world: World, bot: Any, monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...]
) -> None:
    admin = bot.handler.shared.admin
    asked: list[str] = []
    ran: list[str] = []
    real_settings = admin.settings

    async def settings(*args: Any) -> Any:
        asked.append("settings")
        return await real_settings(*args)

    async def command(interaction: Any, *args: Any) -> None:
        ran.append("command")
        await interaction.response.send_message("ran", ephemeral=True)

    monkeypatch.setattr(admin, "settings", settings)
    actions = bot.handler.admin
    monkeypatch.setattr(actions, "endings", command)
    monkeypatch.setattr(actions, "resources_show", command)

    ix = await answered(world, await world.api.slash(world.alice, world.channel, "haven-admin", *path))
    await world.api.settle(0.2)
    [reply] = ix.messages()  # the gate's answer only: the tree's error handler does not answer again
    assert reply["content"] == ADMIN_ONLY and reply["flags"] & EPHEMERAL
    assert asked == ["settings"] and ran == []

    # An admin passes the same gate once, and the command runs.
    ok = await answered(world, await world.api.slash(world.admin, world.channel, "haven-admin", *path))
    assert asked == ["settings", "settings"] and ran == ["command"] and ok.texts() == ["ran"]


async def test_a_failing_admin_command_reaches_on_error_and_is_answered_privately(
    world: World, bot: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> Any:
        raise KeyError("my very private words")

    monkeypatch.setattr(bot.handler.shared.admin, "endings", broken)
    ix = await answered(world, await world.api.slash(world.admin, world.channel, "haven-admin", "endings"))
    await world.api.settle(0.2)
    [reply] = ix.messages()
    assert reply["content"] == FAILED and reply["flags"] & EPHEMERAL
    [failed] = [r for r in caplog.records if r.getMessage() == "app command failed"]
    assert failed.levelname == "ERROR" and failed.error == "KeyError"  # type: ignore[attr-defined]
    assert failed.command == "haven-admin endings"  # type: ignore[attr-defined]
    assert "private words" not in caplog.text


async def test_a_gate_that_cannot_decide_is_a_failure_not_a_refusal(
    world: World, bot: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def away(*args: Any) -> Any:
        raise ConnectionError("the database said something about someone")

    monkeypatch.setattr(bot.handler.shared.admin, "settings", away)
    ix = await answered(
        world, await world.api.slash(world.admin, world.channel, "haven-admin", "resources", "show")
    )
    await world.api.settle(0.2)
    assert ix.texts() == [FAILED]
    [failed] = [r for r in caplog.records if r.getMessage() == "app command failed"]
    assert failed.error == "ConnectionError"  # type: ignore[attr-defined]
    assert "someone" not in caplog.text


async def test_a_setting_the_core_rejects_is_answered_by_on_error(
    world: World, bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def rejected(*args: Any) -> Any:
        raise BadSetting("expected on or off")

    monkeypatch.setattr(bot.handler.shared.admin, "change", rejected)
    ix = await answered(
        world, await world.api.slash(world.admin, world.channel, "haven-admin", "settings", ending="off")
    )
    await world.api.settle(0.2)
    [reply] = ix.messages()
    assert reply["content"] == "Not changed: expected on or off" and reply["flags"] & EPHEMERAL


async def test_a_failing_haven_command_is_answered_once_by_its_group(
    world: World, bot: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> Any:
        raise KeyError("my very private words")

    monkeypatch.setattr(bot.handler.shared.engine, "thread_status", broken)
    mention = await world.api.post_message(world.channel, world.alice, "hello", mention_bot=True)
    thread = int(mention["id"])
    await world.api.wait_until(lambda: world.api.bot_messages(thread), what="the reply")
    ix = await answered(world, await world.api.slash(world.alice, thread, "haven", "end"))
    await world.api.settle(0.2)
    assert ix.texts() == [FAILED] and ix.messages()[0]["flags"] & EPHEMERAL
    [failed] = [r for r in caplog.records if r.getMessage() == "app command failed"]
    assert failed.command == "haven end"  # type: ignore[attr-defined]
    assert "private words" not in caplog.text
