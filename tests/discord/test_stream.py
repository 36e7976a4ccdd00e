"""``DiscordReplyStream`` on its own, with a stand-in for Discord: the timing and layout rules that are
awkward to hit through the gateway (the end-to-end behaviour is in test_streaming.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.discord.stream import DiscordReplyStream, StreamTiming, final_text, interim_chunks
from adapters.discord.translate import split_message


class Posted:
    def __init__(self, log: list[tuple[str, Any]], content: str) -> None:
        self.log, self.content, self.deleted = log, content, False

    async def edit(self, *, content: str, **_: Any) -> Posted:
        self.log.append(("edit", content))
        self.content = content
        return self

    async def delete(self) -> None:
        self.log.append(("delete", self.content))
        self.deleted = True


class Channel:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.posted: list[Posted] = []

    async def send(self, target: Any, *, nonce: str, content: str | None = None) -> Any:
        self.log.append(("create", content))
        message = Posted(self.log, content or "")
        self.posted.append(message)
        return message

    def shown(self) -> list[str]:
        return [m.content for m in self.posted if not m.deleted]


def stream(channel: Channel, **timing: Any) -> DiscordReplyStream:
    return DiscordReplyStream(channel.send, object(), source="s", timing=StreamTiming(**timing))  # type: ignore[arg-type]


@pytest.mark.parametrize("pause", [0.0, 0.001, 0.005, 0.01, 0.02])
async def test_finish_right_after_an_update_never_hangs(pause: float) -> None:
    """A short reply (too few words to show at once) finishing while the stream waits for more text."""
    for _ in range(10):
        channel = Channel()
        s = stream(channel, first_wait=0.01)
        await s.update("Back")
        await asyncio.sleep(pause)
        await s.update("Back again.")
        await asyncio.wait_for(s.finish("Back again."), 2)
        assert channel.shown() == ["Back again."]
        assert [kind for kind, _ in channel.log].count("create") == 1


async def test_a_retry_that_shortens_the_reply_removes_the_messages_it_no_longer_needs() -> None:
    channel = Channel()
    s = stream(channel, interval=0.0, first_wait=0.0)
    long = "\n".join(f"line {i} of the first attempt, which was long" for i in range(80))
    await s.update(long)
    await asyncio.sleep(0.05)
    assert len(channel.shown()) == 2
    await s.update("")  # the retry starts: nothing of it yet, keep what is shown
    await asyncio.sleep(0.05)
    assert len(channel.shown()) == 2
    await s.update("A short answer after all.")
    await s.finish("A short answer after all.")
    assert channel.shown() == ["A short answer after all."]


async def test_nothing_is_posted_for_a_turn_without_text() -> None:
    channel = Channel()
    s = stream(channel)
    await s.finish("")
    assert channel.log == []


def test_interim_messages_close_an_open_code_block() -> None:
    assert interim_chunks("Here:\n```python\nprint(1)") == ["Here:\n```python\nprint(1)\n```"]
    assert interim_chunks("no code") == ["no code"]
    text = "x" * 1998 + "\n```"  # no room to close it: shown as is, never over the limit
    assert interim_chunks(text) == split_message(text)


def test_a_failed_turn_keeps_what_was_streamed_and_adds_the_note() -> None:
    assert final_text("", "Sorry.", "Half an ans") == "Half an ans\n\nSorry."
    assert final_text("", "Sorry.", "```py\nx = 1") == "```py\nx = 1\n```\n\nSorry."
    assert final_text("", "Sorry.", "") == "Sorry."
    assert final_text("The answer.", None, "The ans") == "The answer."
