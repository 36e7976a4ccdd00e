"""The durable inbox on Discord, through the real discord.py against the fake gateway and HTTP API (real
SQLite storage, the fake Anthropic server): a message written while the database is away is answered
once it returns, in thread order; past the bound the thread gets the failure note; recovery answers an
entry left received, and continues (edits) the reply an answered entry left instead of posting again;
the nonce keyed by the entry makes a repeated send post nothing new."""

from __future__ import annotations

from typing import Any

import pytest

import adapters.discord.inbox as discord_inbox
from adapters.discord import DiscordConnector
from adapters.discord.translate import guild_thread, nonce_for
from bot.app import Services
from bot.notices import TURN_FAILED
from bot.ports import StorageUnavailable
from bot.types import Author, IncomingMessage, Origin
from fakes.fake_anthropic import text
from tests.discord.conftest import PacedAnthropic, World, chat_requests, user_texts

MESSAGES = r"/channels/\d+/messages$"


def database_away(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every storage call fails as ``storage.db.Database.run`` does while the server is unreachable."""

    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(services.repo.database, "run", unreachable)


async def conversation(world: World, anthropic: PacedAnthropic) -> int:
    """A Haven thread with one answered turn; its id."""
    api = world.api
    anthropic.enqueue(text("Hello, I'm here."))
    mention = await api.post_message(world.channel, world.alice, "hi there", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the first reply")
    await api.settle(0.2)
    return thread


async def test_messages_written_while_the_database_is_away_are_answered_once_in_order(
    world: World,
    bot: DiscordConnector,
    anthropic: PacedAnthropic,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = world.api
    thread = await conversation(world, anthropic)
    anthropic.enqueue(text("Answer to the first."), text("Answer to the second."))
    database_away(services, monkeypatch)

    await api.post_message(thread, world.alice, "first while away")
    await api.post_message(thread, world.bob, "second while away")
    await api.settle(1.2)  # a few tries with the database away
    assert len(api.bot_messages(thread)) == 1 and len(chat_requests(anthropic)) == 1

    monkeypatch.undo()  # the database is back
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 3, within=15, what="both answers")
    await api.settle(0.5)
    assert [m["content"] for m in api.bot_messages(thread)] == [
        "Hello, I'm here.",
        "Answer to the first.",
        "Answer to the second.",
    ]
    requests = chat_requests(anthropic)
    assert len(requests) == 3  # none asked twice
    assert user_texts(requests[1])[-1].endswith("first while away")
    assert user_texts(requests[2])[-1].endswith("second while away")
    assert await services.engine.pending() == 0


async def test_when_the_database_stays_away_past_the_bound_the_thread_gets_the_failure_note(
    world: World,
    bot: DiscordConnector,
    anthropic: PacedAnthropic,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = world.api
    thread = await conversation(world, anthropic)
    monkeypatch.setattr(discord_inbox, "ACCEPT_WAIT_SECONDS", 1.0)
    database_away(services, monkeypatch)

    await api.post_message(thread, world.alice, "my secret words while away")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, within=5, what="the failure note")
    assert api.bot_messages(thread)[-1]["content"] == TURN_FAILED
    assert len(chat_requests(anthropic)) == 1
    [gave_up] = [r for r in caplog.records if r.getMessage().startswith("discord message not recorded")]
    assert gave_up.error == "StorageUnavailable"  # type: ignore[attr-defined]
    assert "secret words" not in caplog.text


async def test_a_message_still_waiting_at_shutdown_gets_the_note_before_the_connector_stops(
    world: World,
    services: Services,
    anthropic: PacedAnthropic,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.discord.conftest import running

    api = world.api
    monkeypatch.setattr(services.settings, "shutdown_seconds", 1.0)
    async with running(services):
        thread = await conversation(world, anthropic)
        database_away(services, monkeypatch)
        await api.post_message(thread, world.alice, "written just before the stop")
        await api.settle(0.3)
        # Leaving the block disconnects: the drain waits for the waiting message, which gives up by the
        # shutdown deadline (HAVEN_SHUTDOWN_SECONDS) and says so, rather than vanishing with the process.
    assert api.bot_messages(thread)[-1]["content"] == TURN_FAILED


async def test_an_answered_entry_whose_reply_was_cut_short_is_recovered_by_editing_that_message(
    world: World,
    bot: DiscordConnector,
    anthropic: PacedAnthropic,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = world.api
    conversations = bot.handler.conversations
    reply = "Here is a long plan for your week, step by step. " * 6
    anthropic.pace = 0.02  # word by word: the reply's first message exists before the turn ends
    anthropic.enqueue(text(reply))
    real_render = conversations.render

    async def dies_while_drawing(*_: Any, **__: Any) -> None:
        raise ConnectionError("the process lost Discord while finishing the reply")

    # The answer is stored and its first message already in the thread; drawing the rest fails.
    monkeypatch.setattr(conversations, "render", dies_while_drawing)
    mention = await api.post_message(world.channel, world.alice, "plan my week", mention_bot=True)
    thread = int(mention["id"])
    [started] = await api.wait_until(lambda: api.bot_messages(thread), what="the reply's first message")
    await api.wait_until(lambda: anthropic.model_requests() and api.edit_log, what="streaming")
    await api.settle(1.0)
    assert api.bot_messages(thread)[0]["content"].strip() != reply.strip()  # cut short

    monkeypatch.setattr(conversations, "render", real_render)
    creates = len(api.calls_to("POST", MESSAGES))
    await services.engine.recover()
    await api.wait_until(
        lambda: api.bot_messages(thread)[0]["content"].strip() == reply.strip(), what="the edited reply"
    )
    await api.settle(0.3)
    [shown] = api.bot_messages(thread)  # the same message, finished: not a second one
    assert shown["id"] == started["id"]
    assert len(api.calls_to("POST", MESSAGES)) == creates
    assert len(chat_requests(anthropic)) == 1  # drawn from the stored result, not asked again
    assert await services.engine.pending() == 0


async def test_an_entry_left_received_is_answered_once_by_recovery_and_its_nonce_posts_nothing_twice(
    world: World, bot: DiscordConnector, anthropic: PacedAnthropic, services: Services
) -> None:
    api = world.api
    thread = await conversation(world, anthropic)
    ref = guild_thread(world.guild.id, world.channel, thread)
    # Another process recorded this message and died before answering it (its lease already ran out).
    msg = IncomingMessage(
        ref, Author(str(world.alice.id), "alice"), "are you still there?", "90001", Origin.THREAD_REPLY
    )
    accepted, entry = await services.repo.accept(msg, "a-process-that-died", 0.0)
    assert entry is not None, accepted
    # It had even posted its reply's first message (same nonce) before dying, without recording it.
    channel = bot.client.get_channel(thread)
    assert channel is not None
    first_try = await channel.send("I", nonce=nonce_for(entry.id, "reply", 0))  # type: ignore[union-attr]
    anthropic.enqueue(text("Yes, still here."))

    await services.engine.recover()
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="the recovered answer")
    await api.wait_until(
        lambda: api.bot_messages(thread)[-1]["content"] == "Yes, still here.", what="the final text"
    )
    await services.engine.recover()
    await api.settle(0.5)

    replies = api.bot_messages(thread)
    assert [m["content"] for m in replies] == ["Hello, I'm here.", "Yes, still here."]
    assert replies[-1]["id"] == str(first_try.id)  # Discord answered the nonce with that message
    sends = [c for c in api.calls_to("POST", MESSAGES) if c.json and c.json.get("nonce")]
    assert sends[-1].json["nonce"] == nonce_for(entry.id, "reply", 0)
    assert sends[-1].json["enforce_nonce"] is True
    assert len(chat_requests(anthropic)) == 2
    stored = await services.repo.get_entry(entry.id)
    assert stored is not None and stored.delivered and stored.reply_ref == str(first_try.id)


async def test_the_reply_carries_a_nonce_and_a_repeated_send_with_it_posts_nothing_new(
    world: World, bot: DiscordConnector, anthropic: PacedAnthropic, services: Services
) -> None:
    api = world.api
    thread = await conversation(world, anthropic)
    [reply] = api.bot_messages(thread)
    assert reply["nonce"]
    [call] = [c for c in api.calls_to("POST", MESSAGES) if c.json and c.json.get("nonce") == reply["nonce"]]
    assert call.json["enforce_nonce"] is True

    channel = bot.client.get_channel(thread)
    again = await channel.send("a repeated send", nonce=reply["nonce"])  # type: ignore[union-attr]

    assert str(again.id) == reply["id"]
    assert [m["id"] for m in api.bot_messages(thread)] == [reply["id"]]
    assert await services.engine.pending() == 0
