"""Conversations in threads Haven did not open: someone's thread and a forum post (and a forum post's fork,
a new post). discord.py's real gateway and HTTP code against the fake Discord, the real engine and
storage, the fake Anthropic API."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.edits import FORK_OFFER_BUTTON
from adapters.discord.translate import guild_thread
from bot.app import Services
from bot.ports import StorageUnavailable
from fakes.fake_anthropic import FakeAnthropic, text
from tests.discord.conftest import World, chat_requests, closure_messages, user_texts


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url  # this module runs on SQLite and PostgreSQL


async def test_a_mention_in_someone_elses_thread_starts_a_conversation_there(
    world: World, bot: Any, services: Services, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(text("Here is a summary."), text("And the next step."))
    foreign = await api.start_thread(world.guild, world.channel, world.bob, "release planning")
    await api.post_message(foreign, world.bob, "we ship on friday")  # before Haven is addressed: not seen
    await api.settle(0.2)
    assert anthropic.model_requests() == []

    await api.post_message(foreign, world.alice, "can you summarise the plan?", mention_bot=True)
    await api.wait_until(lambda: api.bot_messages(foreign), what="the answer in the thread")
    assert [m["content"] for m in api.bot_messages(foreign)] == ["Here is a summary."]
    assert len(api.threads()) == 1  # answered where it was asked: no thread of Haven's own
    assert api.bot_messages(world.channel) == []

    await api.post_message(foreign, world.bob, "what comes after that?")  # no mention needed now
    await api.wait_until(lambda: len(api.bot_messages(foreign)) == 2, what="the follow-up's answer")
    assert api.bot_messages(foreign)[-1]["content"] == "And the next step."
    assert user_texts(chat_requests(anthropic)[-1]) == [
        "[alice] can you summarise the plan?",
        "[bob] what comes after that?",
    ]
    ref = guild_thread(world.guild.id, world.channel, foreign)
    conversation = await services.repo.find_conversation(ref)
    assert conversation is not None and conversation.user_turns == 2


async def test_ending_in_someone_elses_thread_leaves_it_open(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    foreign = await api.start_thread(world.guild, world.channel, world.bob, "bob's thread")
    mention = await api.post_message(foreign, world.alice, "hello Haven", mention_bot=True)
    await api.wait_until(lambda: api.bot_messages(foreign), what="the answer")

    ended = await api.slash(world.alice, foreign, "haven", "end")
    await api.wait_until(lambda: closure_messages(api, foreign), what="the closure notice")
    await api.wait_until(lambda: ended.complete, what="the acknowledgement")
    await api.settle(0.2)
    # Bob's thread is his: Haven stops answering there but does not lock or archive it.
    assert not api.calls_to("PATCH", rf"/channels/{foreign}")
    calls = len(anthropic.model_requests())
    await api.post_message(foreign, world.bob, "thanks all, closing the topic")
    await api.settle(0.3)
    assert len(anthropic.model_requests()) == calls

    # The thread stays open, so Alice can still edit her mention: Haven offers to fork from the edit.
    await api.edit_message(mention, "hello Haven, a better question")
    offer = await api.wait_until(
        lambda: [m for m in api.bot_messages(foreign) if FORK_OFFER_BUTTON in str(m["components"])],
        what="the fork offer",
    )
    assert f"<@{world.alice.id}>" in offer[0]["content"]


async def test_a_mention_in_a_forum_post_is_answered_in_the_post(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(text("Try restarting the worker."), text("Then check the logs."))
    forum = await api.add_forum_channel(world.guild, "help")
    quiet = await api.start_forum_post(world.guild, forum, world.bob, "no Haven here", "just people")
    starter = await api.start_forum_post(
        world.guild, forum, world.alice, "Build fails", "the build fails on main, why?", mention_bot=True
    )
    post = int(starter["id"])
    await api.wait_until(lambda: api.bot_messages(post), what="the answer in the post")
    assert [m["content"] for m in api.bot_messages(post)] == ["Try restarting the worker."]
    assert api.bot_messages(int(quiet["id"])) == [] and api.bot_messages(forum) == []
    assert not api.calls_to("POST", r"/channels/\d+/(messages/\d+/)?threads")

    await api.post_message(post, world.alice, "it still fails")
    await api.wait_until(lambda: len(api.bot_messages(post)) == 2, what="the follow-up's answer")
    assert user_texts(chat_requests(anthropic)[-1]) == [
        "[alice] the build fails on main, why?",
        "[alice] it still fails",
    ]
    assert len(chat_requests(anthropic)) == 2


async def test_a_mention_in_a_foreign_thread_waits_out_a_database_outage(
    world: World, bot: Any, services: Services, anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox path holds for the new entry point: recorded before it is answered, never dropped."""
    api = world.api
    anthropic.enqueue(text("Got it."), text("Still here."))
    foreign = await api.start_thread(world.guild, world.channel, world.bob, "ops")

    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(services.repo.database, "run", unreachable)
    await api.post_message(foreign, world.alice, "Haven, note this down", mention_bot=True)
    await api.post_message(foreign, world.bob, "and this too")
    await api.settle(0.8)
    assert api.bot_messages(foreign) == [] and anthropic.model_requests() == []

    monkeypatch.undo()
    await api.wait_until(lambda: len(api.bot_messages(foreign)) == 2, within=30, what="both answers")
    await api.settle(0.5)
    assert [m["content"] for m in api.bot_messages(foreign)] == ["Got it.", "Still here."]
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] Haven, note this down", "[bob] and this too"]
    assert await services.engine.pending() == 0


async def test_forking_a_forum_posts_conversation_opens_a_new_post(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(text("Try a clean build."), text("Then the cache is stale."))
    forum = await api.add_forum_channel(world.guild, "help")
    starter = await api.start_forum_post(
        world.guild, forum, world.alice, "Build fails", "the build fails on main", mention_bot=True
    )
    post = int(starter["id"])
    await api.wait_until(lambda: api.bot_messages(post), what="the answer in the post")

    menu = await api.message_command(world.alice, "Edit & fork", starter)
    modal = await api.wait_until(lambda: menu.modal, what="the fork modal")
    submitted = await api.submit_modal(world.alice, post, modal, "the build fails on a branch")
    forked = await api.wait_until(
        lambda: [t for t in api.threads(forum) if int(t["id"]) != post], what="the new post"
    )
    new_post = int(forked[0]["id"])
    await api.wait_until(lambda: len(api.bot_messages(new_post)) == 2, what="intro and answer")
    intro, answer = api.bot_messages(new_post)
    assert int(intro["id"]) == new_post and "the build fails on a branch" in intro["content"]
    assert f"https://discord.com/channels/{world.guild.id}/{post}/{post}" in intro["content"]
    assert answer["content"] == "Then the cache is stale."
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] the build fails on a branch"]
    await api.wait_until(lambda: submitted.complete, what="the private answer")
    assert any(f"<#{new_post}>" in t for t in submitted.texts())
