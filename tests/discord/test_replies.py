"""How replies reach Discord: splitting, nonces, errors, and lock/archive permissions."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord.http
import pytest

from bot.app import Services
from bot.engine import MAX_ATTEMPTS
from bot.notices import TURN_FAILED
from bot.prompts import MODEL_ERROR_REPLY
from fakes.fake_anthropic import FakeAnthropic, error, text
from fakes.fake_discord import BOT_PERMISSIONS, CREATE_PUBLIC_THREADS, MANAGE_THREADS
from tests.discord.conftest import PacedAnthropic, World, chat_requests, closure_messages, user_texts


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


class _QuickRetries:
    """``asyncio`` as discord.http sees it, with its sleeps 20 times shorter (a 5xx retry waits 1 s)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float) -> None:
        await asyncio.sleep(delay / 20)


@pytest.fixture
def quick_discord_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http, "asyncio", _QuickRetries())


@pytest.mark.usefixtures("quick_discord_retries")
@pytest.mark.parametrize(
    ("status", "after_effect", "streamed"),
    [
        # Discord stored the message but the response was lost: the retry must not post it again.
        (500, True, False),
        (502, True, True),
        # Discord failed before storing it: the retry posts it.
        (502, False, True),
    ],
    ids=["500-stored", "502-stored-streamed", "502-not-stored-streamed"],
)
async def test_a_discord_server_error_on_a_post_never_posts_twice(
    world: World, bot: Any, anthropic: PacedAnthropic, status: int, after_effect: bool, streamed: bool
) -> None:
    """discord.py retries a 5xx (after a second, shortened here) with the same body; its nonce (with
    ``enforce_nonce``) makes Discord return the stored message instead of posting another. A streamed
    reply is posted while the model is still writing (the turn's end then waits for that post); a short,
    quick one when the turn ends."""
    reply = "Only once, please, even when Discord stumbles on the way back." if streamed else "Only once."
    anthropic.pace = 0.02 if streamed else 0.0
    api = world.api
    message_id = api.next_id()
    anthropic.enqueue(text(reply))
    api.fail_next("POST", rf"/channels/{message_id}/messages", status, after_effect=after_effect)
    await api.post_message(world.channel, world.alice, "hi", mention_bot=True, message_id=message_id)
    await api.wait_until(
        lambda: api.calls_to("POST", rf"/channels/{message_id}/messages")[1:], what="the retry"
    )
    await api.wait_until(
        lambda: [m["content"] for m in api.bot_messages(message_id)] == [reply], what="the reply"
    )
    await api.settle(0.2)
    first, retry = api.calls_to("POST", rf"/channels/{message_id}/messages")
    assert first.json["nonce"] == retry.json["nonce"] and len(first.json["nonce"]) <= 25
    assert first.json["enforce_nonce"] is True and retry.json["enforce_nonce"] is True
    if streamed:  # posted with the first words, then edited to the whole reply
        assert reply.startswith(first.json["content"]) and first.json["content"] != reply
    assert [m["content"] for m in api.bot_messages(message_id)] == [reply]


async def test_a_rate_limited_post_is_posted_once_after_the_wait(
    world: World, bot: Any, anthropic: FakeAnthropic
) -> None:
    api = world.api
    message_id = api.next_id()
    anthropic.enqueue(text("Patience is a virtue."))
    api.fail_next("POST", rf"/channels/{message_id}/messages", 429, retry_after=0.2)
    await api.post_message(world.channel, world.alice, "hi", mention_bot=True, message_id=message_id)
    await api.wait_until(lambda: api.bot_messages(message_id), what="the reply")
    await api.settle(0.2)
    first, retry = api.calls_to("POST", rf"/channels/{message_id}/messages")
    assert retry.at - first.at >= 0.2  # discord.py waited as told
    assert first.json["nonce"] == retry.json["nonce"]
    assert [m["content"] for m in api.bot_messages(message_id)] == ["Patience is a virtue."]


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


async def test_a_turn_that_failed_on_a_passing_database_fault_is_finished_by_recovery(
    world: World, bot: Any, anthropic: FakeAnthropic, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorded message whose turn failed is not retried in place: the inbox keeps it, and recovery
    (here called at once; every few seconds in the background) answers it, once."""
    from bot.ports import StorageUnavailable

    real = services.repo.begin_turn
    failures = [StorageUnavailable("AdminShutdown")]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(services.repo, "begin_turn", flaky)
    anthropic.enqueue(text("Answered by recovery."))
    mention = await api_post(world, "hello")
    thread = int(mention["id"])
    await world.api.wait_until(lambda: not failures, what="the failed turn")
    await world.api.settle(0.2)
    await services.engine.recover()
    await world.api.wait_until(lambda: world.api.bot_messages(thread), what="the answer")
    await world.api.settle(0.3)
    assert [m["content"] for m in world.api.bot_messages(thread)] == ["Answered by recovery."]
    assert len(chat_requests(anthropic)) == 1
    assert await services.engine.pending() == 0


async def test_a_programming_error_gets_the_note_after_the_retry_budget_and_its_text_is_not_logged(
    world: World,
    bot: Any,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def broken(*_: Any, **__: Any) -> Any:
        calls.append(1)
        raise KeyError("my very private words")

    monkeypatch.setattr(services.repo, "begin_turn", broken)
    mention = await api_post(world, "hello")
    thread = int(mention["id"])
    await world.api.wait_until(lambda: calls, what="the failed turn")
    await world.api.settle(0.2)
    assert world.api.bot_messages(thread) == []  # no note yet: the inbox keeps the message
    for _ in range(MAX_ATTEMPTS + 2):  # each recovery takes it again; past the budget: the note
        if world.api.bot_messages(thread):
            break
        await services.engine.recover()
        await world.api.settle(0.1)
    await world.api.wait_until(lambda: world.api.bot_messages(thread), what="the note")
    assert [m["content"] for m in world.api.bot_messages(thread)] == [TURN_FAILED]
    assert len(calls) == MAX_ATTEMPTS
    [failed, *_] = [r for r in caplog.records if r.getMessage() == "discord turn failed; left to recovery"]
    assert failed.levelname == "ERROR" and failed.error == "KeyError"  # type: ignore[attr-defined]
    assert "private words" not in caplog.text


async def api_post(world: World, words: str) -> dict[str, Any]:
    return await world.api.post_message(world.channel, world.alice, words, mention_bot=True)
