"""Replies streamed into Discord as the model writes them: one message edited at most once a second, long
replies continued in new messages exactly as the non-streaming path splits them, failures finished with
the error note, and a retried model call taking its text back."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from adapters.discord.stream import StreamTiming
from adapters.discord.translate import guild_thread, split_message
from bot.app import Services
from bot.prompts import MODEL_ERROR_REPLY
from bot.types import TurnResult, TurnStatus
from fakes.fake_anthropic import CutStream, text
from fakes.fake_discord import Call, FakeDiscord
from fakes.harness import make_settings, services_for
from tests.discord.conftest import PacedAnthropic, World, chat_requests, running, user_texts

PLAN = (
    "Sure. Here is a short plan for your week: start with the hardest task on Monday morning, keep "
    "Wednesday afternoon free for reviews, and end Friday with a short retrospective so that nothing "
    "carries over into the weekend."
)
OVERLOADED = {"type": "overloaded_error", "message": "Overloaded"}
# A streamed reply's events before its text: message_start, ping, content_block_start.
PREAMBLE = 3


def creates(api: FakeDiscord, channel: int) -> list[Call]:
    return api.calls_to("POST", rf"/channels/{channel}/messages")


def edits(api: FakeDiscord, channel: int) -> list[Call]:
    return api.calls_to("PATCH", rf"/channels/{channel}/messages/\d+")


def contents(api: FakeDiscord, channel: int) -> list[str]:
    return [m["content"] for m in api.bot_messages(channel)]


def cut_after(words: int, reply: str) -> CutStream:
    """A streamed reply that fails (an overloaded error event) after its first ``words`` words."""
    return CutStream(PREAMBLE + words, text(reply), OVERLOADED)


async def test_a_streamed_reply_is_one_message_edited_at_most_once_a_second(
    world: World, bot: Any, anthropic: PacedAnthropic
) -> None:
    api = world.api
    anthropic.pace = 0.05  # 37 words: about two seconds of streaming
    anthropic.enqueue(text(PLAN))
    started = time.monotonic()
    mention = await api.post_message(world.channel, world.alice, "plan my week", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: contents(api, thread) == [PLAN], within=10, what="the final reply")
    elapsed = time.monotonic() - started
    await api.settle(0.2)

    [create] = creates(api, thread)
    changes = edits(api, thread)
    assert anthropic.model_requests()[-1]["stream"] is True
    # Shown once it had a few words, well before the model finished; then edited with the newest text.
    assert len(create.json["content"].split()) >= 5 and PLAN.startswith(create.json["content"])
    assert changes and changes[-1].json["content"] == PLAN
    assert all(PLAN.startswith(c.json["content"]) for c in changes)
    # At most one edit a second, plus the final one (which may follow the last interim edit sooner).
    assert len(changes) <= int(elapsed) + 1
    times = [create.at] + [c.at for c in changes]
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times[:-1]))
    # The typing indicator ran until the first message.
    typing = api.calls_to("POST", rf"/channels/{thread}/typing")
    assert typing and typing[0].at < create.at
    assert contents(api, thread) == [PLAN]


async def test_a_long_streamed_reply_ends_as_the_same_messages_as_a_posted_one(
    world: World, services: Services, anthropic: PacedAnthropic, tmp_path: Path
) -> None:
    api = world.api
    code = "\n".join(f"    print('line {i:03d} of a long example program')" for i in range(60))
    reply = (
        "Here is the script, in full:\n\n```python\ndef main():\n"
        f"{code}\n```\n\nRun it with `python main.py`; it prints sixty lines."
    )
    assert 2900 <= len(reply) <= 3100
    anthropic.pace, anthropic.piece_chars = 0.02, 100  # ~32 pieces
    anthropic.enqueue(text(reply))
    timing = StreamTiming(interval=0.1, first_wait=0.1)
    async with running(services, stream_timing=timing) as bot:
        mention = await api.post_message(world.channel, world.alice, "a long script", mention_bot=True)
        thread = int(mention["id"])
        expected = split_message(reply)
        assert len(expected) == 2
        await api.wait_until(lambda: contents(api, thread) == expected, within=10, what="the final layout")
        await api.settle(0.2)

        # The non-streaming path (HAVEN_STREAM=false, or a reply that never streamed) posts the same.
        channel = bot.client.get_channel(world.channel)
        ref = guild_thread(world.guild.id, world.channel, thread)
        posted = TurnResult(TurnStatus.REPLIED, replies=(reply,))
        await bot.handler.conversations.render(channel, posted, source="non-streamed", ref=ref)
        assert contents(api, world.channel) == contents(api, thread) == expected

    # Streamed: one create per final message, interim edits, and every interim state was a valid,
    # fence-balanced message.
    assert len(creates(api, thread)) == 2
    assert len(edits(api, thread)) >= 2
    for call in creates(api, thread) + edits(api, thread):
        shown = call.json["content"]
        assert len(shown) <= 2000 and shown.count("```") % 2 == 0, shown
    for part in expected:
        assert part.count("```") % 2 == 0


async def test_a_turn_that_fails_mid_stream_ends_with_the_error_note(
    world: World, db_url: str, anthropic: PacedAnthropic, tmp_path: Path
) -> None:
    api = world.api
    reply = "Let me think about that carefully, step by step, before I answer you in full detail."
    anthropic.pace = 0.02
    # Both attempts fail; the retry took back text the first attempt had streamed.
    anthropic.enqueue(cut_after(9, reply), cut_after(4, reply), text("Back again."))
    settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN=api.token, HAVEN_MODEL_ATTEMPTS=2)
    async with services_for(settings) as services, running(services):
        mention = await api.post_message(world.channel, world.alice, "explain it", mention_bot=True)
        thread = int(mention["id"])
        final = f"Let me think about\n\n{MODEL_ERROR_REPLY}"
        await api.wait_until(lambda: contents(api, thread) == [final], within=10, what="the error note")
        await api.settle(0.2)
        [create] = creates(api, thread)
        assert reply.startswith(create.json["content"])  # the partial reply was shown
        assert contents(api, thread) == [final]

        # Nothing of the failed turn was kept: the next message works and the model never sees it.
        await api.post_message(thread, world.alice, "try again")
        await api.wait_until(lambda: contents(api, thread)[1:] == ["Back again."], what="the next answer")
        last = chat_requests(anthropic)[-1]
        assert user_texts(last) == ["[alice] explain it", "[alice] try again"]
        assert not [m for m in last["messages"] if m["role"] == "assistant"]


async def test_a_retried_model_call_replaces_the_text_it_streamed(
    world: World, bot: Any, anthropic: PacedAnthropic
) -> None:
    api = world.api
    first_try = "Well, the first thing you should know about sourdough is that it takes patience and care."
    answer = "Sourdough needs a lively starter, a long cold proof and a very hot oven."
    anthropic.pace = 0.02
    anthropic.enqueue(cut_after(10, first_try), text(answer))
    mention = await api.post_message(world.channel, world.alice, "sourdough tips?", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: contents(api, thread) == [answer], within=10, what="the retried answer")
    await api.settle(0.2)
    [create] = creates(api, thread)
    assert first_try.startswith(create.json["content"])
    assert edits(api, thread)[-1].json["content"] == answer
    assert contents(api, thread) == [answer]
