"""Replies written while the model writes: Slack's streaming methods, the post+update fallback, failures,
rate limits that must not stall the reply, the person's Stop button and the first visible feedback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack import reply as live_reply
from bot.prompts import MODEL_ERROR_REPLY
from fakes.fake_anthropic import FakeAnthropic, Reply, cut_stream, delay, text, tool_use
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


@pytest.fixture
def eager_appends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every snapshot goes out at once, so the three pieces the fake model streams a text in become the
    stream's start, one append, and the stop (replies are otherwise batched over seconds)."""
    monkeypatch.setattr(live_reply, "APPEND_EVERY", (0.0,))


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
    assert sum(calls.values()) <= 3  # appends are batched (reply.APPEND_EVERY)
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
    assert post["markdown_text"] == "Sure — **yes**." and "text" not in post  # Slack renders it
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
    assert [m["text"] for m in lite.shown(root)] == [first, second]
    assert all(m["format"] == "markdown" for m in lite.shown(root))
    assert all("markdown_text" in u and "text" not in u for u in updates)


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


@pytest.mark.usefixtures("eager_appends")
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
    assert all(m["format"] == "markdown" and len(m["text"]) <= 2500 for m in rest)
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


# -- rate limits never stall the reply ------------------------------------------------------------------


def record_waits(h: SlackHarness) -> list[float]:
    """The retry handlers' waits, recorded and made instant (any wait here would be a stall)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    for handler in h.app.client.retry_handlers:
        handler.sleep = sleep  # type: ignore[attr-defined]
    return slept


@pytest.mark.usefixtures("eager_appends")
async def test_a_rate_limited_append_pauses_the_stream_and_the_stop_catches_up(lite: SlackHarness) -> None:
    slept = record_waits(lite)
    lite.slack.fail_http("chat.appendStream", 429, retry_after=30)
    reply = long_reply(4)
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    [message] = lite.shown(root)
    assert message["text"] == reply and not message["streaming"]  # whole text, once
    assert [c.method for c in lite.slack.rejected] == ["chat.appendStream"]
    assert lite.slack.count("chat.appendStream") == 0  # paused: not tried again within Retry-After
    assert slept == []  # Retry-After was not sat out by the client
    [refused] = lite.slack.rejected
    [stop] = [c for c in lite.slack.calls if c.method == "chat.stopStream"]
    # The model finished right after the refused append (its last third followed at once). Sitting out
    # Retry-After would put 30 s here; 2 s is loose enough for a loaded machine and far from 30.
    assert stop.at - refused.at < 2.0
    assert lite.slack.count("chat.update") == 0 and lite.posts() == []


def paced(reply: str, *, pieces: int, seconds: float) -> Reply:
    """The model writes ``reply`` in about ``pieces`` deltas, ``seconds`` apart, like a real model."""
    step = text(reply)
    step.delta_chars, step.delta_seconds = -(-len(reply) // pieces), seconds
    return step


async def test_a_rate_limited_append_never_holds_up_reading_the_model(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Must show: a 429 with Retry-After 30 on appendStream while the model is still writing, and the
    reply completes (whole, once) within 2 s of the model finishing."""
    monkeypatch.setattr(live_reply, "APPEND_EVERY", (0.2,))
    slept = record_waits(lite)
    lite.slack.fail_http("chat.appendStream", 429, retry_after=30)
    reply = long_reply(6, tag=" (paced)")
    lite.anthropic.enqueue(paced(reply, pieces=40, seconds=0.04))  # about 1.6 s of writing
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    [message] = lite.shown(root)
    assert message["text"] == reply and not message["streaming"] and lite.posts() == []
    [model] = lite.anthropic.streams
    assert model.sent == model.total  # the model's stream was read to its end
    [refused] = lite.slack.rejected
    [stop] = [c for c in lite.slack.calls if c.method == "chat.stopStream"]
    assert refused.method == "chat.appendStream" and refused.at < model.ended_at  # while it wrote
    assert slept == [] and lite.slack.count("chat.appendStream") == 0  # paused, not waited out
    # Sat out, Retry-After would put 30 s here; 2 s is the promise, generous on a loaded machine.
    assert stop.at - model.ended_at < 2.0


async def test_without_streaming_a_rate_limited_update_pauses_the_edits_not_the_model(
    lite: SlackHarness,
) -> None:
    slept = record_waits(lite)
    lite.slack.refuse_streaming("unknown_method")
    lite.slack.fail_http("chat.update", 429, retry_after=30)
    reply = long_reply(6, tag=" (posted)")
    lite.anthropic.enqueue(paced(reply, pieces=30, seconds=0.1))  # about 3 s of writing
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    [message] = lite.shown(root)
    assert message["text"] == reply and message["format"] == "markdown"
    [refused] = lite.slack.rejected  # an edit while the model wrote: not waited out, and not retried …
    assert refused.method == "chat.update" and refused.headers.get("X-Haven-No-Wait") == "1"
    assert slept == []
    [model] = lite.anthropic.streams
    [final] = [c for c in lite.slack.calls if c.method == "chat.update"]  # … until the final update
    assert model.sent == model.total and refused.at < model.ended_at <= final.at
    assert final.at - model.ended_at < 2.0  # generous; waiting out Retry-After would be 30 s


async def test_a_rate_limited_first_post_leaves_the_reply_to_be_posted_whole_at_the_end(
    lite: SlackHarness,
) -> None:
    slept = record_waits(lite)
    lite.slack.refuse_streaming("unknown_method")
    lite.slack.fail_http("chat.postMessage", 429, retry_after=30)
    reply = long_reply(4, tag=" (late)")
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    assert slept == [] and [c.method for c in lite.slack.rejected] == ["chat.postMessage"]
    [post] = lite.posts(thread_ts=root)  # once, whole, marked like any drawn result
    assert post["markdown_text"] == reply and post["metadata"]["event_payload"]["item"] == "reply.0"
    assert [m["text"] for m in lite.shown(root)] == [reply]


async def test_a_rate_limited_start_posts_this_reply_and_streams_the_next(lite: SlackHarness) -> None:
    slept = record_waits(lite)
    lite.slack.fail_http("chat.startStream", 429, retry_after=30)
    first, second = long_reply(tag="a"), long_reply(tag="b")
    lite.anthropic.enqueue(text(first), text(second))
    root = lite.ts()

    await lite.mention("plan please", ts=root)
    await lite.reply("and again", thread_ts=root)

    assert slept == []
    assert [m["text"] for m in lite.shown(root)] == [first, second]
    [post] = lite.posts(thread_ts=root)  # the first reply: post + update, in Markdown
    assert post["markdown_text"] and lite.slack.count("chat.startStream") == 1  # the second streamed
    assert all(m["format"] == "markdown" and not m["streaming"] for m in lite.shown(root))


async def test_a_rate_limited_stop_rewrites_the_reply_whole(lite: SlackHarness) -> None:
    slept = record_waits(lite)
    lite.slack.fail_http("chat.stopStream", 429, retry_after=30, times=2)
    reply = long_reply(4)
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    assert slept == []
    [message] = lite.shown(root)
    assert message["text"] == reply and not message["streaming"]


# -- Stop ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("eager_appends")
async def test_stop_keeps_what_was_shown_and_stores_exactly_that(lite: SlackHarness) -> None:
    lite.slack.press_stop(after="chat.startStream")
    reply = long_reply(4, tag=" (stopped)")
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    [message] = lite.shown(root)
    shown = message["text"]
    assert message["stopped_by_user"] and 0 < len(shown) < len(reply) and reply.startswith(shown)
    [append] = [c for c in lite.slack.calls if c.method == "chat.appendStream"]
    assert append.result["error"] == "message_not_in_streaming_state"
    # Nothing was rewritten, posted or streamed after Slack said the stream had ended.
    after = [c.method for c in lite.slack.calls[lite.slack.calls.index(append) + 1 :]]
    assert not set(after) & {*STREAM_METHODS, "chat.update", "chat.postMessage", "chat.delete"}
    assert lite.slack.count("chat.update") == 0 and lite.posts() == []

    # The conversation keeps what the person saw, not what the model went on to write.
    lite.anthropic.enqueue(text("Picking up from there."))
    await lite.reply("go on", thread_ts=root)
    messages = lite.model_requests()[-1]["messages"]
    said = [b["text"] for m in messages if m["role"] == "assistant" for b in m["content"] if "text" in b]
    assert said == [shown]
    assert lite.shown(root)[-1]["text"] == "Picking up from there."


@pytest.mark.usefixtures("eager_appends")
async def test_stop_while_the_model_writes_ends_the_generation(lite: SlackHarness) -> None:
    lite.slack.press_stop(after="chat.startStream")
    reply = long_reply(8, tag=" (stopped early)")
    lite.anthropic.enqueue(paced(reply, pieces=60, seconds=0.05))  # about 3 s of writing

    root = lite.ts()
    await lite.mention("plan please", ts=root)

    [model] = lite.anthropic.streams
    assert model.sent < model.total  # Haven closed the model's stream: no more was generated
    [message] = lite.shown(root)
    assert message["stopped_by_user"] and reply.startswith(message["text"]) and message["text"] != reply
    assert lite.slack.count("chat.update") == 0 and lite.posts() == []


async def test_stop_pressed_after_the_last_append_still_decides_what_is_kept(lite: SlackHarness) -> None:
    """Appends are seconds apart, so the model often finishes before Slack could say the stream was
    stopped: the stream is stopped before the turn is stored, and a Stop found then counts the same."""
    lite.slack.press_stop(after="chat.startStream")
    reply = long_reply(4, tag=" (stopped late)")
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    [message] = lite.shown(root)
    shown = message["text"]
    assert message["stopped_by_user"] and 0 < len(shown) < len(reply)
    assert lite.slack.count("chat.appendStream") == 0  # no append came before the model finished
    assert lite.slack.count("chat.update") == 0 and lite.posts() == []
    lite.anthropic.enqueue(text("Picking up from there."))
    await lite.reply("go on", thread_ts=root)
    messages = lite.model_requests()[-1]["messages"]
    said = [b["text"] for m in messages if m["role"] == "assistant" for b in m["content"] if "text" in b]
    assert said == [shown]


# -- first visible feedback ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["channel thread", "direct message"])
async def test_a_thinking_status_shows_at_once_and_the_reply_replaces_it(
    lite: SlackHarness, where: str
) -> None:
    lite.anthropic.enqueue(delay(0.5, text(long_reply(3))))  # the model's time to first token
    ts = lite.ts()
    if where == "channel thread":
        channel = CHANNEL
        await lite.mention("plan please", ts=ts)
    else:
        channel = DM
        await lite.event(lite.message("plan please", ts=ts, channel=DM, channel_type="im"))

    first = lite.slack.calls[[c.method for c in lite.slack.calls].index("assistant.threads.setStatus")]
    assert first.args == {"channel_id": channel, "thread_ts": ts, "status": live_reply.THINKING}
    [start] = [c for c in lite.slack.calls if c.method == "chat.startStream"]
    assert first.at < start.at - 0.4  # shown while the model was still thinking, not with the reply
    # Slack clears the status when the reply appears: no placeholder message is left behind.
    assert len(lite.slack.thread(channel, ts)) == 1
    assert lite.slack.count("assistant.threads.setStatus") == 1 and lite.slack.count("chat.delete") == 0


async def test_no_thinking_status_in_an_ended_thread(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(
        tool_use("end_conversation", {"reason": "user_request", "note": "asked"}),
        text("Do you want me to close this conversation for good?"),
        tool_use("end_conversation", {"reason": "user_request", "note": "confirmed"}),
        text("Closed."),
    )
    root = lite.ts()
    await lite.mention("please end this chat", ts=root)
    await lite.reply("yes, close it", thread_ts=root)
    before = lite.slack.count("assistant.threads.setStatus")

    await lite.reply("hello again?", thread_ts=root)

    assert lite.slack.count("assistant.threads.setStatus") == before == 2  # one per answered message
