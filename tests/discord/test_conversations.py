"""Haven on Discord end to end: discord.py's real gateway and HTTP code against the fake Discord, the real
engine and storage (SQLite and PostgreSQL), the real Anthropic SDK against a scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import Services
from bot.notices import FEEDBACK_THANKS, MISTAKE_BUTTON, NOT_AUTHOR
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.fake_discord import EPHEMERAL, FakeDiscord
from fakes.harness import make_settings, services_for
from tests.discord.conftest import (
    World,
    abuse_proposal,
    chat_requests,
    closure_messages,
    running,
    user_texts,
    verdict,
)


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url  # this module runs on SQLite and PostgreSQL


def button_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]


async def test_mention_starts_a_thread_and_the_thread_continues(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(text("Hello Alice!"), text("Sure, here is more."))
    mention = await api.post_message(world.channel, world.alice, "hello there", mention_bot=True)
    thread = int(mention["id"])  # a thread started from a message has the message's id

    await api.wait_until(lambda: api.bot_messages(thread), what="the first reply")
    [created] = api.calls_to("POST", rf"/channels/{world.channel}/messages/{thread}/threads")
    assert created.json["name"] == "hello there"
    assert [m["content"] for m in api.bot_messages(thread)] == ["Hello Alice!"]
    assert api.bot_messages(world.channel) == []  # nothing posted in the channel itself
    assert api.calls_to("POST", rf"/channels/{thread}/typing")

    await api.post_message(thread, world.bob, "and more please")  # no mention needed in the thread
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="the second reply")
    second = chat_requests(anthropic)[-1]
    assert user_texts(second) == ["[alice] hello there", "[bob] and more please"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]


async def test_abuse_is_warned_twice_then_ended_locked_and_reminds_once(
    world: World, bot: Any, services: Services, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(
        abuse_proposal(),
        text("Please stop the insults. If they continue, I'll end this conversation."),
        abuse_proposal(),
        text("This is your final warning: stop the insults or I'll end this conversation."),
        abuse_proposal(text_before="I'm ending this conversation now."),
        verdict(persistent_abuse=True, risk=False),
    )
    mention = await api.post_message(world.channel, world.alice, "you useless pile of junk", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="warning 1")
    await api.post_message(thread, world.alice, "shut up, stupid bot")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="warning 2")
    await api.post_message(thread, world.alice, "garbage, all of it")
    await api.wait_until(lambda: closure_messages(api, thread), what="the closure notice")

    contents = [m["content"] for m in api.bot_messages(thread)]
    assert "If they continue" in contents[0] and "final warning" in contents[1]
    assert contents[2] == "I'm ending this conversation now."
    [closure] = closure_messages(api, thread)
    embed = closure["embeds"][0]
    assert "repeated warnings" in embed["description"]
    assert "/haven new" in str(embed["fields"]) and "Edit & fork" in str(embed["fields"])
    [button] = [c for row in closure["components"] for c in row["components"]]
    assert button["label"] == MISTAKE_BUTTON and button["custom_id"].startswith("haven:mistake:")

    await api.wait_until(lambda: api.calls_to("PATCH", rf"/channels/{thread}"), what="lock + archive")
    [patch] = api.calls_to("PATCH", rf"/channels/{thread}")
    assert patch.json["locked"] is True and patch.json["archived"] is True
    decisions = await services.repo.list_decisions("discord", str(world.guild.id))
    assert [d.decision for d in reversed(decisions)] == ["HOLD_WARN", "HOLD_WARN", "END"]

    # People write in the locked thread (a moderator can): no model call; each is told once how to go
    # on (bot.presentation: an ended thread answers once), then silence.
    calls = len(anthropic.model_requests())
    await api.post_message(thread, world.admin, "hello? anyone?")
    await api.post_message(thread, world.alice, "sorry")
    await api.post_message(thread, world.alice, "sorry again")
    await api.wait_until(lambda: len(api.bot_messages(thread)) >= 6, what="one reminder each")
    await api.settle(0.4)
    assert len(anthropic.model_requests()) == calls
    reminders = [m["content"] for m in api.bot_messages(thread)[4:]]
    assert len(reminders) == 2 and all("won't reply here" in r and "/haven new" in r for r in reminders)


async def test_edit_and_fork_from_the_context_menu(world: World, bot: Any, anthropic: FakeAnthropic) -> None:
    api = world.api
    anthropic.enqueue(text("a1"), text("b1"), text("c1"), text("b2 answer"))
    mention = await api.post_message(world.channel, world.alice, "first question", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="a1")
    second = await api.post_message(thread, world.alice, "second question")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="b1")
    await api.post_message(thread, world.alice, "third question")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 3, what="c1")

    # Someone else may not fork Alice's message.
    refused = await api.message_command(world.bob, "Edit & fork", second)
    await api.wait_until(lambda: refused.complete, what="the refusal")
    assert refused.modal is None and NOT_AUTHOR in refused.texts()[0]

    menu = await api.message_command(world.alice, "Edit & fork", second)
    modal = await api.wait_until(lambda: menu.modal, what="the fork modal")
    assert len(modal["title"]) <= 45
    [field] = [c["component"] for c in modal["components"]]
    assert field["value"] == "second question" and field["max_length"] <= 4000

    submitted = await api.submit_modal(world.alice, thread, modal, "second question, but about cats")
    forked = await api.wait_until(
        lambda: [t for t in api.threads(world.channel) if int(t["id"]) != thread], what="the fork thread"
    )
    new_thread = int(forked[0]["id"])
    await api.wait_until(lambda: len(api.bot_messages(new_thread)) == 2, what="intro and answer")
    intro, answer = api.bot_messages(new_thread)
    assert f"https://discord.com/channels/{world.guild.id}/{thread}/{second['id']}" in intro["content"]
    assert "second question, but about cats" in intro["content"]
    assert answer["content"] == "b2 answer"
    request = chat_requests(anthropic)[-1]
    assert user_texts(request) == ["[alice] first question", "[alice] second question, but about cats"]
    assert request["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "a1"}]}
    assert any(f"<#{new_thread}>" in t for t in submitted.texts())

    # The fork is a conversation of its own: it continues without a mention.
    await api.post_message(new_thread, world.alice, "tell me more")
    await api.wait_until(lambda: len(api.bot_messages(new_thread)) == 3, what="a reply in the fork")


async def test_mistake_button_still_works_after_a_restart(
    world: World, db_url: str, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    api = world.api
    settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN=api.token)
    async with services_for(settings) as services, running(services):
        mention = await api.post_message(world.channel, world.alice, "hi", mention_bot=True)
        thread = int(mention["id"])
        await api.wait_until(lambda: api.bot_messages(thread), what="the reply")
        ended = await api.slash(world.alice, thread, "haven", "end")
        await api.wait_until(lambda: closure_messages(api, thread), what="the closure notice")
        await api.wait_until(lambda: ended.complete, what="the acknowledgement")
        assert ended.messages()[0]["flags"] & EPHEMERAL
    await api.wait_until(lambda: api.connected == 0, what="the first client to go")

    [closure] = closure_messages(api, thread)
    [custom_id] = button_ids(closure)
    async with services_for(settings) as services, running(services):
        click = await api.click(world.bob, closure, custom_id)
        modal = await api.wait_until(lambda: click.modal, what="the feedback modal")
        thanks = await api.submit_modal(world.bob, thread, modal, "It was a joke between friends")
        await api.wait_until(lambda: thanks.complete, what="the thanks")
        assert thanks.messages()[0]["content"] == FEEDBACK_THANKS
        assert thanks.messages()[0]["flags"] & EPHEMERAL
        [report] = await services.repo.list_feedback("discord", str(world.guild.id))
        assert report.user_id == str(world.bob.id) and report.comment == "It was a joke between friends"


async def test_guilds_with_the_same_ids_never_share_history(
    db_url: str, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """One Haven database, two guilds whose channel and message ids coincide (run one after the other,
    since one fake Discord cannot hold two channels with one id)."""
    channel_id, message_id = 4242, 777_000_000_000_000_001
    anthropic.enqueue(text("for guild A"), text("for guild B"))
    for name, words in (("Guild A", "secret plans of A"), ("Guild B", "hello from B")):
        async with FakeDiscord() as api:
            guild = api.add_guild(name)
            channel = api.add_text_channel(guild, "general", channel_id=channel_id)
            alice = api.add_member(guild, "alice")
            settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN=api.token)
            async with services_for(settings) as services, running(services):
                await api.post_message(channel, alice, words, mention_bot=True, message_id=message_id)
                await api.wait_until(lambda api=api: api.bot_messages(message_id), what=f"reply in {name}")
    first, second = chat_requests(anthropic)
    assert user_texts(first) == ["[alice] secret plans of A"]
    assert user_texts(second) == ["[alice] hello from B"]


async def test_direct_messages_hold_one_conversation_at_a_time(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    dm = api.dm_channel(world.alice)
    await api.post_message(dm, world.alice, "hi in private")
    await api.wait_until(lambda: api.bot_messages(dm), what="the DM reply")
    await api.post_message(dm, world.alice, "and again")
    await api.wait_until(lambda: len(api.bot_messages(dm)) == 2, what="the second DM reply")
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] hi in private", "[alice] and again"]

    new = await api.slash(world.alice, dm, "haven", "new", prompt="a fresh start")
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 3, what="the new conversation's turn")
    assert "a fresh start" in new.messages()[0]["content"]
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice · locale en-US] a fresh start"]

    ended = await api.slash(world.alice, dm, "haven", "end")
    await api.wait_until(lambda: ended.complete, what="the acknowledgement")
    await api.wait_until(lambda: closure_messages(api, dm), what="the DM closure notice")
    assert ended.callbacks[0]["type"] == 5
    before = len(api.bot_messages(dm))
    await api.post_message(dm, world.alice, "hello?")
    await api.post_message(dm, world.alice, "hello??")
    await api.settle(0.3)
    # No model call; the ended conversation says once how to start the next one.
    assert len(chat_requests(anthropic)) == 3 and len(api.bot_messages(dm)) == before + 1
    assert "`/haven new` here" in api.bot_messages(dm)[-1]["content"]

    await api.slash(world.alice, dm, "haven", "new", prompt="third time")
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 4, what="the next conversation")
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice · locale en-US] third time"]
    await api.post_message(dm, world.alice, "and it continues")
    await api.wait_until(lambda: len(chat_requests(anthropic)) == 5, what="the follow-up")
    assert user_texts(chat_requests(anthropic)[-1]) == [
        "[alice · locale en-US] third time",
        "[alice] and it continues",
    ]
