"""``/haven new|end|fork|help`` in threads, channels and DMs."""

from __future__ import annotations

from typing import Any

from bot.notices import NOT_AUTHOR, NOT_IN_CONVERSATION
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.fake_discord import EPHEMERAL, FakeInteraction
from tests.discord.conftest import World, chat_requests, closure_messages, user_texts


def link(world: World, channel: int, message: dict[str, Any]) -> str:
    return f"https://discord.com/channels/{world.guild.id}/{channel}/{message['id']}"


async def answered(world: World, ix: FakeInteraction) -> FakeInteraction:
    await world.api.wait_until(lambda: ix.complete, what="the interaction response")
    return ix


async def test_new_with_a_prompt_opens_a_thread(world: World, bot: Any, anthropic: FakeAnthropic) -> None:
    api = world.api
    anthropic.enqueue(text("Let's plan it."), text("More planning."))
    ix = await api.slash(world.alice, world.channel, "haven", "new", prompt="help me plan a trip")
    [thread] = await api.wait_until(lambda: api.threads(world.channel), what="the new thread")
    tid = int(thread["id"])
    await api.wait_until(lambda: len(api.bot_messages(tid)) == 2, what="intro and reply")
    intro, reply = api.bot_messages(tid)
    assert "help me plan a trip" in intro["content"] and reply["content"] == "Let's plan it."
    assert ix.callbacks[0]["type"] == 5 and ix.messages()[0]["flags"] & EPHEMERAL
    assert f"<#{tid}>" in ix.messages()[0]["content"]
    # The thread continues without a mention, and the intro holds the user's first message.
    await api.post_message(tid, world.alice, "in June")
    await api.wait_until(lambda: len(api.bot_messages(tid)) == 3, what="the follow-up")
    assert user_texts(chat_requests(anthropic)[-1]) == [
        "[alice · locale en-US] help me plan a trip",  # from an interaction: the person's locale
        "[alice] in June",
    ]


async def test_new_without_a_prompt_asks_for_it_in_a_form(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    ix = await answered(world, await api.slash(world.alice, world.channel, "haven", "new"))
    assert ix.modal is not None
    await api.submit_modal(world.alice, world.channel, ix.modal, "what is a monad?")
    [thread] = await api.wait_until(lambda: api.threads(world.channel), what="the new thread")
    await api.wait_until(lambda: len(api.bot_messages(int(thread["id"]))) == 2, what="the reply")
    # Started by an interaction, the message carries the person's locale for the model.
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice · locale en-US] what is a monad?"]


async def test_fork_by_link_and_its_refusals(world: World, bot: Any, anthropic: FakeAnthropic) -> None:
    api = world.api
    anthropic.enqueue(text("r1"), text("r2"), text("forked answer"))
    mention = await api.post_message(world.channel, world.alice, "original question", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="r1")
    await api.post_message(thread, world.alice, "follow-up")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="r2")

    refused = await answered(
        world,
        await api.slash(
            world.bob, thread, "haven", "fork", message=link(world, world.channel, mention), text="x"
        ),
    )
    assert NOT_AUTHOR in refused.texts()[0]
    elsewhere = f"https://discord.com/channels/999/{world.channel}/{mention['id']}"
    foreign = await answered(
        world, await api.slash(world.alice, thread, "haven", "fork", message=elsewhere, text="x")
    )
    assert foreign.messages()[0]["flags"] & EPHEMERAL and "fork" in foreign.texts()[0]

    # Forking the mention itself (it lives in the channel, under the thread's id) with new text.
    ok = await api.slash(
        world.alice,
        thread,
        "haven",
        "fork",
        message=link(world, world.channel, mention),
        text="a better question",
    )
    new = await api.wait_until(lambda: [t for t in api.threads(world.channel) if int(t["id"]) != thread])
    await api.wait_until(lambda: len(api.bot_messages(int(new[0]["id"]))) == 2, what="the forked answer")
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] a better question"]
    assert ok.messages()[0]["flags"] & EPHEMERAL

    # With no text, the form opens prefilled.
    form = await answered(
        world,
        await api.slash(world.alice, thread, "haven", "fork", message=link(world, world.channel, mention)),
    )
    assert form.modal is not None and form.modal["components"][0]["component"]["value"] == "original question"


async def test_fork_in_a_dm_starts_the_next_dm_conversation(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(text("d1"), text("d2"), text("dm fork answer"))
    dm = api.dm_channel(world.alice)
    first = await api.post_message(dm, world.alice, "dm one")
    await api.wait_until(lambda: api.bot_messages(dm), what="d1")
    await api.post_message(dm, world.alice, "dm two")
    await api.wait_until(lambda: len(api.bot_messages(dm)) == 2, what="d2")

    menu = await api.message_command(world.alice, "Edit & fork", first)
    modal = await api.wait_until(lambda: menu.modal, what="the fork form")
    await api.submit_modal(world.alice, dm, modal, "dm one, edited")
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 3, what="the forked turn")
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] dm one, edited"]
    await api.wait_until(lambda: any(m["content"] == "dm fork answer" for m in api.bot_messages(dm)))

    await api.post_message(dm, world.alice, "and on")  # continues the fork, the DM's current conversation
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 4, what="the next turn")
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] dm one, edited", "[alice] and on"]


async def test_end_outside_a_conversation_and_help(world: World, bot: Any) -> None:
    api = world.api
    nothing = await answered(world, await api.slash(world.alice, world.channel, "haven", "end"))
    assert nothing.texts() == [NOT_IN_CONVERSATION] and nothing.messages()[0]["flags"] & EPHEMERAL
    helped = await answered(world, await api.slash(world.alice, world.channel, "haven", "help"))
    assert "/haven new" in helped.texts()[0] and "Edit & fork" in helped.texts()[0]


async def test_end_is_for_participants_and_admins(world: World, bot: Any) -> None:
    api = world.api
    mention = await api.post_message(world.channel, world.alice, "just us here", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the reply")
    stranger = await answered(world, await api.slash(world.bob, thread, "haven", "end"))
    assert stranger.messages()[0]["flags"] & EPHEMERAL and "taking part" in stranger.texts()[0]
    assert closure_messages(api, thread) == []

    await answered(world, await api.slash(world.admin, thread, "haven", "end"))
    await api.wait_until(lambda: closure_messages(api, thread), what="the closure notice")
