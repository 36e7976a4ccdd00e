"""Replies written while the model writes: Slack's streaming methods, the post+update fallback, failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack import reply as live_reply
from adapters.slack.translate import markdown_to_mrkdwn
from bot.prompts import MODEL_ERROR_REPLY
from fakes.fake_anthropic import FakeAnthropic, cut_stream, text, tool_use
from fakes.mock_slack import STREAM_METHODS, MockSlack
from fakes.slack_harness import ALICE, CHANNEL, DM, TEAM, SlackHarness, harness_on, is_closure, is_crisis


def long_reply(paragraphs: int = 4, tag: str = "") -> str:
    """Markdown of about 230 characters a paragraph, so a reply streams (each third is ≥ 200 chars)."""
    return "\n\n".join(
        f"**Step {i}{tag}.** Think about what the team needs this week, write it down in `plan.md`, "
        f"and check it against the calendar before Monday's stand-up so nothing collides with "
        f"the release train or anyone's holiday (item {i})."
        for i in range(1, paragraphs + 1)
    )


def stream_calls(h: SlackHarness) -> dict[str, int]:
    return {m: h.slack.count(m) for m in STREAM_METHODS}


async def test_a_long_reply_streams_into_one_message_with_exactly_the_engines_text(
    harness: SlackHarness,
) -> None:
    reply = long_reply()
    harness.anthropic.enqueue(text(reply))
    root = harness.ts()

    await harness.mention("help me plan my week", ts=root)

    [start] = harness.slack.calls_to("chat.startStream")
    assert start["channel"] == CHANNEL and start["thread_ts"] == root
    assert start["recipient_user_id"] == ALICE and start["recipient_team_id"] == TEAM
    calls = stream_calls(harness)
    assert calls["chat.startStream"] == 1 and calls["chat.stopStream"] == 1
    assert 1 <= calls["chat.appendStream"] <= 3
    assert harness.posts() == []  # the reply was not posted a second time
    [message] = harness.shown(root)
    assert message["text"] == reply  # Markdown, exactly: Slack renders markdown_text itself
    assert message["format"] == "markdown" and not message["streaming"]
    assert harness.history_reads() == 0


async def test_a_short_quick_reply_is_one_post_and_no_stream(harness: SlackHarness) -> None:
    harness.anthropic.enqueue(text("Sure — **yes**."))
    root = harness.ts()
    await harness.mention("quick one", ts=root)

    assert stream_calls(harness) == dict.fromkeys(STREAM_METHODS, 0)
    [post] = harness.posts()
    assert post["text"] == "Sure — *yes*."
    assert harness.slack.count("chat.update") == 0


async def test_without_streaming_one_post_is_updated_and_the_workspace_is_remembered(
    lite: SlackHarness,
) -> None:
    lite.slack.refuse_streaming("unknown_method")
    first, second = long_reply(tag="a"), long_reply(tag="b")
    lite.anthropic.enqueue(text(first), text(second))
    root = lite.ts()

    await lite.mention("plan please", ts=root)
    await lite.reply("and again", thread_ts=root)

    assert lite.slack.count("chat.startStream") == 1  # asked once; the answer is remembered
    assert lite.slack.count("chat.appendStream") == lite.slack.count("chat.stopStream") == 0
    assert len(lite.posts(thread_ts=root)) == 2  # one post per reply …
    updates = lite.slack.calls_to("chat.update")
    assert 2 <= len(updates) <= 6  # … then updates (throttled) until it shows the whole reply
    assert [m["text"] for m in lite.shown(root)] == [markdown_to_mrkdwn(first), markdown_to_mrkdwn(second)]
    assert all(m["format"] == "mrkdwn" for m in lite.shown(root))


async def test_a_retry_that_takes_text_back_stops_the_stream_and_rewrites_the_message(
    lite: SlackHarness,
) -> None:
    taken_back, final = long_reply(tag=" (first try)"), long_reply(tag=" (second try)")
    # The first attempt streams two thirds of its text, then the connection breaks; the SDK's retry
    # starts again from scratch with different words.
    lite.anthropic.enqueue(cut_stream(after_events=5, reply=text(taken_back)), text(final))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    assert lite.slack.count("chat.startStream") == 1
    assert lite.slack.count("chat.stopStream") == 1
    [message] = lite.shown(root)  # the same message, rewritten: no stale copy left in the thread
    assert message["text"] == final
    assert message["format"] == "markdown" and not message["streaming"]
    stop = lite.slack.calls_to("chat.stopStream")[0]
    updates = lite.slack.calls_to("chat.update")
    assert updates and all(u["ts"] == stop["ts"] == message["ts"] for u in updates)
    assert lite.posts() == []


@pytest.fixture
async def one_attempt(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[SlackHarness]:
    """The model gets a single attempt, so a stream cut mid-way fails the turn."""
    url = f"sqlite:///{tmp_path}/haven.db"
    async for h in harness_on(url, slack_mock, anthropic, HAVEN_MODEL_ATTEMPTS=1):
        yield h


async def test_a_model_failure_half_way_ends_the_streamed_message_with_the_error_note(
    one_attempt: SlackHarness,
) -> None:
    h = one_attempt
    partial = long_reply(tag=" (never finished)")
    h.anthropic.enqueue(cut_stream(after_events=5, reply=text(partial)), text("Second time lucky."))
    root = h.ts()

    await h.mention("plan please", ts=root)

    [message] = h.shown(root)
    assert not message["streaming"], "the stream was left hanging"
    assert message["text"].endswith("\n\n" + MODEL_ERROR_REPLY)
    assert partial.startswith(message["text"][: -len(MODEL_ERROR_REPLY) - 2])
    assert h.posts() == []  # the note went into the same message

    # Nothing of the broken reply was kept: the next message works and the model never sees it.
    await h.reply("try again", thread_ts=root)
    assert h.shown(root)[-1]["text"] == "Second time lucky."
    assert "never finished" not in json.dumps(h.model_requests()[-1]["messages"])


async def test_a_failed_append_continues_by_update_with_exact_text(lite: SlackHarness) -> None:
    lite.slack.fail("chat.appendStream", "streaming_state_conflict")
    reply = long_reply(6)
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    [message] = lite.shown(root)
    assert message["text"] == reply and not message["streaming"]
    assert lite.slack.count("chat.appendStream") == 1  # never repeated
    assert lite.slack.count("chat.update") >= 1


async def test_an_overflowing_streamed_reply_continues_in_posts_without_breaking_code(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_reply, "MAX_MARKDOWN_CHARS", 2500)
    monkeypatch.setattr(live_reply, "STREAM_HOLDBACK", 600)
    code = "\n".join(f"line_{i} = {i}  # some commentary to make this longer" for i in range(90))
    reply = f"{long_reply(3)}\n\n```python\n{code}\n```\n\nDone."
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("write code", ts=root)

    shown = lite.shown(root)
    assert len(shown) >= 2
    head, rest = shown[0], shown[1:]
    assert head["format"] == "markdown" and len(head["text"]) <= 2500 and not head["streaming"]
    assert all(m["format"] == "mrkdwn" and len(m["text"]) <= 4000 for m in rest)
    assert all(m["text"].count("```") % 2 == 0 for m in shown)
    joined = "".join(m["text"] for m in shown)
    assert "line_0 = 0" in joined and "line_89 = 89" in joined and joined.rstrip().endswith("Done.")
    assert lite.slack.count("chat.startStream") == 1


async def test_the_closure_is_posted_after_the_streamed_goodbye(lite: SlackHarness) -> None:
    goodbye = long_reply(3, tag=" (goodbye)")
    lite.anthropic.enqueue(
        tool_use("end_conversation", {"reason": "user_request", "note": "asked"}),
        text("Do you want me to close this conversation for good?"),
        tool_use("end_conversation", {"reason": "user_request", "note": "confirmed"}, text_before=goodbye),
    )
    root = lite.ts()
    await lite.mention("please end this chat", ts=root)
    await lite.reply("yes, close it", thread_ts=root)

    shown = lite.shown(root)
    assert [m["text"] for m in shown[:2]] == ["Do you want me to close this conversation for good?", goodbye]
    assert shown[1]["format"] == "markdown"  # streamed
    assert is_closure(shown[2]) and len(shown) == 3
    assert float(shown[2]["ts"]) > float(shown[1]["ts"])


async def test_the_crisis_card_comes_before_a_streamed_reply(lite: SlackHarness) -> None:
    """Help first: the model called the crisis tool before writing, so the card precedes the stream."""
    care = long_reply(3, tag=" (care)")
    lite.anthropic.enqueue(tool_use("share_crisis_resources", {"concern": "crisis"}), text(care))
    root = lite.ts()
    await lite.mention("everything is too much lately", ts=root)

    shown = lite.shown(root)
    assert is_crisis(shown[0]) and len(shown) == 2
    assert shown[1]["text"] == care and shown[1]["format"] == "markdown"  # streamed
    assert float(shown[1]["ts"]) > float(shown[0]["ts"])


async def test_a_reply_streamed_before_the_risk_was_known_keeps_its_place(lite: SlackHarness) -> None:
    care = long_reply(3, tag=" (care)")
    lite.anthropic.enqueue(
        tool_use("share_crisis_resources", {"concern": "crisis"}, text_before=care), text("I'm here.")
    )
    root = lite.ts()
    await lite.mention("everything is too much lately", ts=root)

    shown = lite.shown(root)
    assert shown[0]["text"].startswith(care) and is_crisis(shown[1]) and len(shown) == 2


async def test_direct_messages_stream_too(lite: SlackHarness) -> None:
    reply = long_reply()
    lite.anthropic.enqueue(text(reply))
    ts = lite.ts()
    await lite.event(lite.message("hi there", ts=ts, channel=DM, channel_type="im"))

    [start] = lite.slack.calls_to("chat.startStream")
    assert start["channel"] == DM and start["thread_ts"] == ts
    assert [m["text"] for m in lite.slack.thread(DM, ts)] == [reply]
