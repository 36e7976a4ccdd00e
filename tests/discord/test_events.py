"""Gateway events the adapter must get right: what it ignores, replays and edits, and crisis messages."""

from __future__ import annotations

from typing import Any

from adapters.discord.translate import guild_thread
from bot.app import Services
from bot.prompts import CRISIS_TOOL
from fakes.fake_anthropic import FakeAnthropic, text, tool_use
from tests.discord.conftest import World, abuse_proposal, chat_requests, closure_messages


async def test_unrelated_threads_bots_and_system_messages_are_ignored(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    foreign = await api.start_thread(world.guild, world.channel, world.bob, "bob's thread")
    other_bot = api.add_member(world.guild, api.add_user("otherbot", bot=True))
    await api.post_message(foreign, world.alice, "anyone here?")  # a thread Haven was not asked into
    await api.post_message(world.channel, other_bot, "beep", mention_bot=True)
    await api.post_message(world.channel, world.alice, "a system message", mention_bot=True, kind=7)
    await api.post_message(world.channel, world.alice, "no mention, no thread")
    await api.settle(0.3)
    assert anthropic.model_requests() == []
    assert api.threads() == [api.channels[foreign]]
    assert not api.calls_to("POST", r"/channels/\d+/messages")


async def test_replayed_and_edited_messages_get_one_reply(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    mention = await api.post_message(world.channel, world.alice, "count me once", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the reply")
    follow = await api.post_message(thread, world.alice, "and once more")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="the second reply")

    # A reconnect: the client RESUMEs and the gateway re-delivers both messages.
    await api.reconnect(replay=[("MESSAGE_CREATE", mention), ("MESSAGE_CREATE", follow)])
    await api.wait_until(lambda: api.resumes == 1 and api.connected == 1, what="the RESUME")
    await api.edit_message(follow, "and once more (edited)")
    await api.settle(0.4)
    assert len(chat_requests(anthropic)) == 2
    assert len(api.bot_messages(thread)) == 2
    assert len(api.threads()) == 1


async def test_crisis_shows_resources_and_never_ends(
    world: World, bot: Any, services: Services, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(
        tool_use(CRISIS_TOOL, {"concern": "self_harm"}),
        text("I'm really glad you told me. I'm here with you."),
        abuse_proposal(),  # the model even proposes an ending: the policy vetoes it
        text("I'm still here. Tell me what's going on."),
    )
    mention = await api.post_message(
        world.channel, world.alice, "I want to end my life. I have the pills ready tonight.", mention_bot=True
    )
    thread = int(mention["id"])
    await api.wait_until(lambda: len(api.bot_messages(thread)) >= 2, what="reply and crisis card")
    card, reply = api.bot_messages(thread)[:2]
    # Help first: the resources, then the reply (streamed as it is written).
    assert reply["content"] == "I'm really glad you told me. I'm here with you."
    assert "support" in card["embeds"][0]["title"].lower()
    assert "988" in card["embeds"][0]["description"] and "116 123" in card["embeds"][0]["description"]

    await api.post_message(thread, world.alice, "whatever, you useless bot, leave me alone")
    await api.wait_until(lambda: len(api.bot_messages(thread)) >= 3, what="the answer after the veto")
    await api.settle(0.2)
    assert closure_messages(api, thread) == []
    assert not api.calls_to("PATCH", rf"/channels/{thread}")
    conversation = await services.repo.find_conversation(guild_thread(world.guild.id, world.channel, thread))
    assert conversation is not None and conversation.at_risk and not conversation.ended
