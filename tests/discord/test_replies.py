"""How replies reach Discord: splitting, nonces, errors, and lock/archive permissions."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.prompts import MODEL_ERROR_REPLY
from tests.discord.conftest import World, chat_requests, closure_messages, user_texts
from tests.support.fake_anthropic import FakeAnthropic, error, text
from tests.support.fake_discord import BOT_PERMISSIONS, CREATE_PUBLIC_THREADS, MANAGE_THREADS


async def test_a_long_reply_with_code_is_split_with_balanced_fences(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    code = "\n".join(f"    print('line {i:03d} of a long example program')" for i in range(50))
    reply = f"Here is the script:\n\n```python\ndef main():\n{code}\n```\n\nRun it with `python main.py`."
    assert 2400 <= len(reply) <= 2600
    anthropic.enqueue(text(reply))
    mention = await api.post_message(world.channel, world.alice, "write me a long script", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="two messages")
    await api.settle(0.1)
    first, second = [m["content"] for m in api.bot_messages(thread)]
    assert len(api.bot_messages(thread)) == 2
    for part in (first, second):
        assert len(part) <= 2000
        assert part.count("```") % 2 == 0, part
    assert first.endswith("```") and second.startswith("```python\n")
    assert second.endswith("Run it with `python main.py`.")
    body = (first.removesuffix("\n```") + "\n" + second.removeprefix("```python\n")).replace("\n\n", "\n")
    assert body == reply.replace("\n\n", "\n")


async def test_a_retried_send_is_posted_once(world: World, bot: Any, anthropic: FakeAnthropic) -> None:
    """Discord stored the message but the response was lost; discord.py retries with the same nonce."""
    api = world.api
    message_id = api.next_id()
    anthropic.enqueue(text("Only once, please."))
    api.fail_next("POST", rf"/channels/{message_id}/messages", 500, after_effect=True)
    await api.post_message(world.channel, world.alice, "hi", mention_bot=True, message_id=message_id)
    posts = await api.wait_until(
        lambda: api.calls_to("POST", rf"/channels/{message_id}/messages")[1:], within=8, what="the retry"
    )
    first, retry = api.calls_to("POST", rf"/channels/{message_id}/messages")
    assert posts and first.json["nonce"] == retry.json["nonce"] and retry.json["enforce_nonce"] is True
    assert len(first.json["nonce"]) <= 25
    assert [m["content"] for m in api.bot_messages(message_id)] == ["Only once, please."]


async def test_a_model_outage_gives_one_short_error_and_the_next_message_works(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    anthropic.enqueue(*[error(529, "overloaded_error", "Overloaded")] * 4, text("Back again."))
    mention = await api.post_message(world.channel, world.alice, "are you there?", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the error message")
    await api.settle(0.1)
    assert [m["content"] for m in api.bot_messages(thread)] == [MODEL_ERROR_REPLY]

    await api.post_message(thread, world.alice, "hello again")
    await api.wait_until(lambda: len(api.bot_messages(thread)) == 2, what="the answer")
    assert api.bot_messages(thread)[1]["content"] == "Back again."
    assert user_texts(chat_requests(anthropic)[-1]) == ["[alice] are you there?", "[alice] hello again"]


async def test_without_manage_threads_an_ended_thread_stays_open_with_one_warning(
    world: World, bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api = world.api
    api.set_bot_permissions(world.guild, BOT_PERMISSIONS & ~MANAGE_THREADS)
    await api.dispatch("GUILD_ROLE_UPDATE", _role_update(world), guild_id=world.guild.id)
    caplog.set_level(logging.WARNING, logger="adapters.discord")
    threads = []
    for words in ("first", "second"):
        mention = await api.post_message(world.channel, world.alice, words, mention_bot=True)
        threads.append(int(mention["id"]))
        await api.wait_until(lambda t=threads[-1]: api.bot_messages(t), what="a reply")
        ended = await api.slash(world.alice, threads[-1], "haven", "end")
        await api.wait_until(lambda e=ended: e.complete, what="the acknowledgement")
        await api.wait_until(lambda t=threads[-1]: closure_messages(api, t), what="closure")
    await api.settle(0.2)
    assert not api.calls_to("PATCH", r"/channels/\d+")
    warnings = [r for r in caplog.records if "Manage Threads" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def _role_update(world: World) -> dict[str, Any]:
    rid = world.guild.members[world.api.bot.id][0]
    return {"guild_id": str(world.guild.id), "role": world.guild.roles[rid]}


async def test_without_create_threads_a_mention_gets_a_hint_in_the_channel(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    api.set_bot_permissions(world.guild, BOT_PERMISSIONS & ~CREATE_PUBLIC_THREADS)
    everyone = world.guild.roles[world.guild.everyone]
    everyone["permissions"] = str(int(everyone["permissions"]) & ~CREATE_PUBLIC_THREADS)
    await api.dispatch("GUILD_ROLE_UPDATE", _role_update(world), guild_id=world.guild.id)
    await api.dispatch(
        "GUILD_ROLE_UPDATE", {"guild_id": str(world.guild.id), "role": everyone}, guild_id=world.guild.id
    )
    await api.post_message(world.channel, world.alice, "hello?", mention_bot=True)
    [hint] = await api.wait_until(lambda: api.bot_messages(world.channel), what="the hint")
    assert "Create Public Threads" in hint["content"]
    assert api.threads() == [] and anthropic.model_requests() == []
