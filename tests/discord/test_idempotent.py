"""Interactions act once per interaction id, feedback is one record per person, and with the database
away commands, buttons and forms answer a private note and leave nothing half-done — through the real
discord.py client against the fake Discord."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Services
from bot.notices import DATABASE_UNAVAILABLE
from bot.ports import StorageUnavailable
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.fake_discord import EPHEMERAL, ChannelOption, FakeInteraction
from tests.discord.conftest import World, chat_requests, closure_messages

CALLBACKS = r"/interactions/\d+/[^/]+/callback"


async def answered(world: World, ix: FakeInteraction) -> FakeInteraction:
    await world.api.wait_until(lambda: ix.complete, what="the interaction response")
    return ix


async def replay(world: World, ix: FakeInteraction) -> None:
    """The very same ``INTERACTION_CREATE`` (same id, same token) delivered again."""
    await world.api.dispatch("INTERACTION_CREATE", ix.payload, guild_id=world.guild.id)
    await world.api.settle(0.3)


async def ended_thread(world: World) -> tuple[int, dict[str, Any]]:
    api = world.api
    mention = await api.post_message(world.channel, world.alice, "help me plan a trip", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the reply")
    await answered(world, await api.slash(world.alice, thread, "haven", "end"))
    [closure] = await api.wait_until(lambda: closure_messages(api, thread), what="the closure notice")
    return thread, closure


async def test_the_same_new_command_delivered_twice_starts_one_conversation(
    world: World, bot: Any, anthropic: FakeAnthropic, services: Services
) -> None:
    api = world.api
    anthropic.enqueue(text("Let's plan it."), text("A second answer nobody asked for."))
    ix = await api.slash(world.alice, world.channel, "haven", "new", prompt="help me plan a trip")
    [thread] = await api.wait_until(lambda: api.threads(world.channel), what="the new thread")
    await api.wait_until(lambda: len(api.bot_messages(int(thread["id"]))) == 2, what="intro and reply")

    await replay(world, ix)

    assert len(api.threads(world.channel)) == 1
    assert len(api.bot_messages(int(thread["id"]))) == 2
    assert len(chat_requests(anthropic)) == 1
    assert len(api.calls_to("POST", CALLBACKS)) == 1  # the replay was not even answered


async def test_the_same_button_press_delivered_twice_opens_one_form(world: World, bot: Any) -> None:
    api = world.api
    _, closure = await ended_thread(world)
    custom_id = closure["components"][0]["components"][0]["custom_id"]
    callbacks = len(api.calls_to("POST", CALLBACKS))
    click = await api.click(world.alice, closure, custom_id)
    await api.wait_until(lambda: click.modal, what="the feedback modal")

    await replay(world, click)

    assert len(api.calls_to("POST", CALLBACKS)) == callbacks + 1


async def test_feedback_pressed_five_times_is_one_record_with_the_latest_comment_and_one_alert(
    world: World, bot: Any, services: Services
) -> None:
    api = world.api
    mods = api.add_text_channel(world.guild, "mods")
    await api.dispatch("CHANNEL_CREATE", api.channels[mods], guild_id=world.guild.id)
    await answered(
        world,
        await api.slash(
            world.admin, world.channel, "haven-admin", "settings", alert_channel=ChannelOption(mods)
        ),
    )
    thread, closure = await ended_thread(world)
    await api.wait_until(lambda: api.bot_messages(mods), what="the ending's alert")
    custom_id = closure["components"][0]["components"][0]["custom_id"]

    thanks = []
    for comment in ["", "", "", "", "", "too early", "on reflection: it ended while I was asking"]:
        click = await api.click(world.alice, closure, custom_id)
        modal = await api.wait_until(lambda click=click: click.modal, what="the feedback modal")
        thanks.append(await answered(world, await api.submit_modal(world.alice, thread, modal, comment)))

    assert all("Thank you" in t.texts()[0] for t in thanks)
    [report] = await services.repo.list_feedback("discord", str(world.guild.id))
    assert (report.user_id, report.comment) == (
        str(world.alice.id),
        "on reflection: it ended while I was asking",
    )
    await api.settle(0.3)
    assert len(api.bot_messages(mods)) == 2  # the ending's alert and one for the report
    listing = await answered(world, await api.slash(world.admin, world.channel, "haven-admin", "feedback"))
    description = listing.messages()[0]["embeds"][0]["description"]
    assert description.count(f"<@{world.alice.id}>") == 1 and "on reflection" in description


# -- the database away ---------------------------------------------------------------------------------


def database_down(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every storage call fails as ``storage.db.Database.run`` fails while the server is unreachable."""

    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(services.repo.database, "run", unreachable)


async def test_commands_answer_the_database_note_and_post_nothing(
    world: World, bot: Any, anthropic: FakeAnthropic, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = world.api
    thread, closure = await ended_thread(world)
    mention = await api.post_message(world.channel, world.bob, "another one", mention_bot=True)
    open_thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(open_thread), what="the reply")
    threads, requests = len(api.threads(world.channel)), len(chat_requests(anthropic))
    posted = {t: len(api.bot_messages(t)) for t in (world.channel, thread, open_thread)}
    database_down(services, monkeypatch)

    commands = [
        (world.alice, world.channel, ("haven", "new"), {"prompt": "hello there"}),
        (world.bob, open_thread, ("haven", "end"), {}),
        (world.admin, world.channel, ("haven-admin", "settings"), {}),
        (world.admin, world.channel, ("haven-admin", "feedback"), {}),
    ]
    for user, channel, path, options in commands:
        ix = await answered(world, await api.slash(user, channel, *path, **options))
        assert ix.texts() == [DATABASE_UNAVAILABLE], path
        assert ix.messages()[0]["flags"] & EPHEMERAL
    custom_id = closure["components"][0]["components"][0]["custom_id"]
    click = await answered(world, await api.click(world.alice, closure, custom_id))
    assert click.modal is None and click.texts() == [DATABASE_UNAVAILABLE]

    assert len(api.threads(world.channel)) == threads
    assert {t: len(api.bot_messages(t)) for t in posted} == posted
    assert len(chat_requests(anthropic)) == requests


async def test_a_form_submitted_while_the_database_is_away_answers_the_note(
    world: World, bot: Any, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = world.api
    thread, closure = await ended_thread(world)
    custom_id = closure["components"][0]["components"][0]["custom_id"]
    click = await api.click(world.alice, closure, custom_id)
    modal = await api.wait_until(lambda: click.modal, what="the feedback modal")
    database_down(services, monkeypatch)

    submitted = await answered(world, await api.submit_modal(world.alice, thread, modal, "a mistake"))

    assert submitted.texts() == [DATABASE_UNAVAILABLE]
    monkeypatch.undo()
    assert await services.repo.list_feedback("discord", str(world.guild.id)) == []
