"""An edit in an ended conversation offers the fork, as on Slack, and pressing the offer forks. discord.py's
real gateway and HTTP code against the fake Discord, the real engine and storage, the fake Anthropic API."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord import DiscordConnector
from adapters.discord.edits import FORK_OFFER_BUTTON, ONLY_THE_AUTHOR
from bot.i18n import strings_for
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.fake_discord import EPHEMERAL, FakeDiscord
from tests.discord.conftest import World, chat_requests, closure_messages, user_texts


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url  # this module runs on SQLite and PostgreSQL


def offers(api: FakeDiscord, channel: int, label: str = FORK_OFFER_BUTTON) -> list[dict[str, Any]]:
    """The bot's messages in ``channel`` that carry the fork offer's button."""
    return [
        m
        for m in api.bot_messages(channel)
        if any(c.get("label") == label for row in m.get("components", []) for c in row["components"])
    ]


def button(message: dict[str, Any]) -> str:
    [custom_id] = [c["custom_id"] for row in message["components"] for c in row["components"]]
    return str(custom_id)


async def ended_conversation(
    world: World, anthropic: FakeAnthropic, *, title: str = "has ended"
) -> tuple[int, dict[str, Any]]:
    """A Haven thread where Alice asked two things and then ended the conversation (its closure notice
    titled with ``title``); the thread and Alice's second message."""
    api = world.api
    anthropic.enqueue(text("a1"), text("b1"))
    mention = await api.post_message(world.channel, world.alice, "first question", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="a1")
    second = await api.post_message(thread, world.alice, "second question")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="b1")
    ended = await api.slash(world.alice, thread, "haven", "end")
    await api.wait_until(lambda: closure_messages(api, thread, title), what="the closure notice")
    await api.wait_until(lambda: ended.complete, what="the acknowledgement")
    return thread, second


async def test_an_edit_in_an_ended_conversation_offers_the_fork_and_pressing_it_forks(
    world: World, bot: DiscordConnector, anthropic: FakeAnthropic
) -> None:
    api = world.api
    thread, second = await ended_conversation(world, anthropic)
    anthropic.enqueue(text("b2 about cats"))

    edited = await api.edit_message(second, "second question, but about cats")
    [offer] = await api.wait_until(lambda: offers(api, thread), what="the fork offer")
    assert f"<@{world.alice.id}>" in offer["content"] and "ended" in offer["content"]
    # The same edit delivered again (a gateway replay) is offered once; the offer pings nobody.
    await api.dispatch("MESSAGE_UPDATE", edited, guild_id=world.guild.id)
    await api.settle(0.3)
    assert len(offers(api, thread)) == 1
    [sent] = [c for c in api.calls_to("POST", rf"/channels/{thread}/messages") if "my edit" in str(c.json)]
    assert sent.json["allowed_mentions"]["parse"] == [] and "message_reference" not in sent.json

    # Only Alice may use it: Bob is told so privately, and the offer stays.
    refused = await api.click(world.bob, offer, button(offer))
    await api.wait_until(lambda: refused.complete, what="the refusal")
    assert refused.texts() == [ONLY_THE_AUTHOR] and refused.messages()[0]["flags"] & EPHEMERAL
    assert len(offers(api, thread)) == 1 and len(chat_requests(anthropic)) == 2

    pressed = await api.click(world.alice, offer, button(offer))
    forked = await api.wait_until(
        lambda: [t for t in api.threads(world.channel) if int(t["id"]) != thread], what="the fork's thread"
    )
    new_thread = int(forked[0]["id"])
    await api.wait_until(lambda: len(api.bot_messages(new_thread)) == 2, what="intro and answer")
    intro, answer = api.bot_messages(new_thread)
    assert "second question, but about cats" in intro["content"] and answer["content"] == "b2 about cats"
    assert user_texts(chat_requests(anthropic)[-1]) == [
        "[alice] first question",
        "[alice] second question, but about cats",
    ]
    await api.wait_until(lambda: pressed.complete, what="the private answer")
    assert any(f"<#{new_thread}>" in t for t in pressed.texts())
    assert pressed.messages()[0]["flags"] & EPHEMERAL
    await api.wait_until(lambda: not offers(api, thread), what="the offer to remove itself")
    assert api.calls_to("DELETE", rf"/channels/{thread}/messages/{offer['id']}")


async def test_the_fork_offer_removes_itself_after_its_time_out(
    world: World, bot: DiscordConnector, anthropic: FakeAnthropic
) -> None:
    api = world.api
    bot.handler.edits.offer_seconds = 0.3
    thread, second = await ended_conversation(world, anthropic)
    await api.edit_message(second, "second question, edited")
    await api.wait_until(lambda: offers(api, thread), what="the fork offer")
    await api.wait_until(lambda: not offers(api, thread), what="the offer to time out")
    assert len(api.threads(world.channel)) == 1 and len(chat_requests(anthropic)) == 2


async def test_edits_that_are_not_the_authors_words_in_an_ended_conversation_offer_nothing(
    world: World, bot: DiscordConnector, anthropic: FakeAnthropic
) -> None:
    api = world.api
    thread, second = await ended_conversation(world, anthropic)
    live_message = await api.post_message(world.channel, world.bob, "hello", mention_bot=True)
    live = int(live_message["id"])
    await api.wait_until(lambda: api.bot_messages(live), what="the answer")

    # Discord adding an embed (no edit time), an edit in a live conversation, a message Haven never saw.
    await api.dispatch("MESSAGE_UPDATE", {**second, "embeds": []}, guild_id=world.guild.id)
    await api.edit_message(live_message, "hello (edited)")
    unseen = await api.post_message(world.channel, world.bob, "just chatting")
    await api.edit_message(unseen, "just chatting (edited)")
    await api.settle(0.4)
    assert offers(api, thread) == [] and offers(api, live) == [] and offers(api, world.channel) == []


async def test_an_edit_in_an_ended_dm_conversation_offers_the_fork_there(
    world: World, bot: DiscordConnector, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(text("a1"), text("a2 about dogs"))
    dm = api.dm_channel(world.alice)
    first = await api.post_message(dm, world.alice, "tell me about cats")
    await api.wait_until(lambda: api.bot_messages(dm), what="a1")
    ended = await api.slash(world.alice, dm, "haven", "end")
    await api.wait_until(lambda: closure_messages(api, dm), what="the closure notice")
    await api.wait_until(lambda: ended.complete, what="the acknowledgement")

    await api.edit_message(first, "tell me about dogs")
    [offer] = await api.wait_until(lambda: offers(api, dm), what="the fork offer in the DM")
    assert "a new conversation here" in offer["content"]
    pressed = await api.click(world.alice, offer, button(offer))
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 2, what="the forked turn")
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] tell me about dogs"]
    await api.wait_until(lambda: api.bot_messages(dm)[-1]["content"] == "a2 about dogs", what="the answer")
    await api.wait_until(lambda: pressed.complete and not offers(api, dm), what="the offer to go")

    await api.post_message(dm, world.alice, "and their size?")  # the fork is the DM's conversation now
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 3, what="the next turn")
    assert user_texts(chat_requests(anthropic)[-1]) == [
        "[alice] tell me about dogs",
        "[alice] and their size?",
    ]


async def test_a_spanish_author_gets_the_offer_and_the_fork_in_spanish(
    world: World, bot: DiscordConnector, anthropic: FakeAnthropic
) -> None:
    """An edit is no interaction: the offer follows the author's latest one (their Spanish client); the
    fork's public intro and private note follow the press. Bob, in English, is refused in English."""
    api = world.api
    es = strings_for("es-ES")
    world.alice.locale = "es-ES"
    thread, second = await ended_conversation(world, anthropic, title=es("notice.closure_title"))
    anthropic.enqueue(text("b2 sobre gatos"))

    await api.edit_message(second, "segunda pregunta, sobre gatos")
    [offer] = await api.wait_until(
        lambda: offers(api, thread, es("discord.fork_offer_button")), what="the Spanish fork offer"
    )
    assert offer["content"] == es("discord.fork_offer", user=f"<@{world.alice.id}>")
    assert offer["content"].startswith(f"<@{world.alice.id}>, esta conversación ha terminado.")

    refused = await api.click(world.bob, offer, button(offer))
    await api.wait_until(lambda: refused.complete, what="the refusal")
    assert refused.texts() == [ONLY_THE_AUTHOR]

    pressed = await api.click(world.alice, offer, button(offer))
    forked = await api.wait_until(
        lambda: [t for t in api.threads(world.channel) if int(t["id"]) != thread], what="the fork's thread"
    )
    new_thread = int(forked[0]["id"])
    await api.wait_until(lambda: len(api.bot_messages(new_thread)) == 2, what="intro and answer")
    intro, _ = api.bot_messages(new_thread)
    assert intro["content"].startswith(f"↪️ <@{world.alice.id}> continúa esta conversación desde https://")
    assert intro["content"].endswith("con:\n>>> segunda pregunta, sobre gatos")
    await api.wait_until(lambda: pressed.complete, what="the private answer")
    assert es("discord.forked_into", thread=f"<#{new_thread}>") in pressed.texts()
