"""Slack's AI-app surface at the wire: signed assistant-thread events through Bolt's ``AsyncAssistant``
against the mock Web API and the fake Anthropic server. An assistant thread is a thread in the person's
DM with Haven, and everything Haven does in channel threads happens there the same way."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.reply import THINKING
from adapters.slack.translate import thread_ref
from bot.notices import ADMIN_ONLY
from bot.ports import StorageUnavailable
from bot.starters import DEFAULT_PROMPTS, GREETING, PROMPTS_TITLE
from bot.types import Author
from fakes.fake_anthropic import FakeAnthropic, Step, text
from fakes.mock_slack import MockSlack
from fakes.slack_harness import (
    ADA,
    ALICE,
    BOB,
    CHANNEL,
    DM,
    TEAM,
    SlackHarness,
    harness_on,
    is_closure,
    is_crisis,
)
from tests.slack.test_endings import ABUSIVE, script_abuse

OPERATOR = Author("cli", "operator", is_platform_admin=True)
STATUS, TITLE, PROMPTS = (f"assistant.threads.{m}" for m in ("setStatus", "setTitle", "setSuggestedPrompts"))


def long_answer() -> str:
    """Long enough to stream (``LiveReply`` posts short replies in one go)."""
    return "\n\n".join(
        f"**Day {i}.** Block the morning for focused work, keep meetings after lunch, and leave the last "
        f"hour for reviews and anything that slipped, so the week ends without surprises (note {i})."
        for i in range(1, 5)
    )


async def start_thread(h: SlackHarness, context: dict[str, Any] | None = None) -> str:
    thread_ts = h.ts()
    started = h.assistant_event(
        "assistant_thread_started",
        thread_ts=thread_ts,
        context=context if context is not None else {"channel_id": CHANNEL, "team_id": TEAM},
    )
    assert (await h.event(started)).status == 200
    return thread_ts


def in_thread(h: SlackHarness, words: str, thread_ts: str, ts: str | None = None) -> dict[str, Any]:
    """A person's message in their assistant thread, as Slack sends it (``message.im`` in a thread)."""
    return h.message(words, ts=ts or h.ts(), channel=DM, channel_type="im", thread_ts=thread_ts)


async def write(h: SlackHarness, words: str, thread_ts: str) -> str:
    event = in_thread(h, words, thread_ts)
    assert (await h.event(event)).status == 200
    return str(event["ts"])


def statuses(h: SlackHarness) -> list[str]:
    return [c["status"] for c in h.slack.calls_to(STATUS)]


def method_order(slack: MockSlack) -> list[str]:
    return [c.method for c in slack.calls]


# -- a thread starts ---------------------------------------------------------------------------------------


async def test_a_new_assistant_thread_gets_a_greeting_and_the_suggested_prompts(lite: SlackHarness) -> None:
    thread = await start_thread(lite)

    [greeting] = lite.posts(thread_ts=thread)
    assert greeting["channel"] == DM and greeting["text"] == GREETING
    # Bolt keeps the thread's context in the greeting's metadata (its default thread context store).
    assert greeting["metadata"]["event_type"] == "assistant_thread_context"
    assert greeting["metadata"]["event_payload"]["channel_id"] == CHANNEL
    [prompts] = lite.slack.calls_to(PROMPTS)
    assert (prompts["channel_id"], prompts["thread_ts"]) == (DM, thread)
    assert prompts["title"] == PROMPTS_TITLE
    assert prompts["prompts"] == [{"title": p, "message": p} for p in DEFAULT_PROMPTS]
    assert lite.slack.assistant_thread(DM, thread)["prompts"] == prompts["prompts"]
    assert lite.model_requests() == [] and statuses(lite) == []


@pytest.mark.parametrize("prompts", [["Summarise this thread for me"], []])
async def test_the_suggested_prompts_come_from_the_settings(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic, prompts: list[str]
) -> None:
    url = f"sqlite:///{tmp_path}/haven.db"
    async for h in harness_on(url, slack_mock, anthropic, HAVEN_SUGGESTED_PROMPTS=prompts):
        thread = await start_thread(h, context={})
        assert [p["text"] for p in h.posts(thread_ts=thread)] == [GREETING]
        sent = [c["prompts"] for c in h.slack.calls_to(PROMPTS)]
        # Slack refuses an empty list: with no prompts configured, none are set.
        assert sent == ([[{"title": p, "message": p} for p in prompts]] if prompts else [])


async def test_a_workspace_sets_its_own_suggested_prompts_with_the_settings_command(
    lite: SlackHarness,
) -> None:
    # An admin's one-line command: prompts separated by "|", Slack's escaped "&" read as the character.
    await lite.command("settings prompts Draft a stand-up update | Review my SQL &amp; explain it", user=ADA)
    assert "Saved" in lite.responses()[-1]["text"]
    await start_thread(lite)
    own = ["Draft a stand-up update", "Review my SQL & explain it"]
    assert [c["prompts"] for c in lite.slack.calls_to(PROMPTS)] == [[{"title": p, "message": p} for p in own]]

    await lite.command("settings prompts none", user=ADA)  # an empty list: no suggestions at all
    await start_thread(lite)
    assert len(lite.slack.calls_to(PROMPTS)) == 1

    await lite.command("settings prompts default", user=ADA)  # back to the process-wide list
    await start_thread(lite)
    assert lite.slack.calls_to(PROMPTS)[-1]["prompts"] == [
        {"title": p, "message": p} for p in DEFAULT_PROMPTS
    ]

    await lite.command("settings prompts a | b | c | d | e", user=ADA)  # Slack shows at most four
    assert "didn't work" in lite.responses()[-1]["text"]
    await lite.command("settings prompts Only admins may set these", user=BOB)
    assert lite.responses()[-1]["text"] == ADMIN_ONLY
    settings = await lite.services.repo.get_settings("slack", lite.slack.team_id)
    assert settings.suggested_prompts is None
    [audit, *_] = await lite.services.repo.list_admin_audit("slack", lite.slack.team_id, 10)
    assert (audit.setting, audit.new) == ("prompts", None)


async def test_with_the_database_away_a_new_thread_still_gets_the_process_wide_prompts(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(lite.services.repo.database, "run", unreachable)
    await start_thread(lite)
    assert [p["text"] for p in lite.posts()] == [GREETING]
    [prompts] = lite.slack.calls_to(PROMPTS)
    assert prompts["prompts"] == [{"title": p, "message": p} for p in DEFAULT_PROMPTS]


# -- a person writes --------------------------------------------------------------------------------------


async def test_a_message_shows_thinking_before_the_model_answers_then_streams_the_answer(
    harness: SlackHarness,
) -> None:
    thread = await start_thread(harness)
    answer = long_answer()
    status_when_asked: list[list[str]] = []

    def model(body: dict[str, Any]) -> Step:
        # Read while the model's request is open: what the thread showed before any answer existed.
        status_when_asked.append(statuses(harness))
        return text(answer)

    harness.anthropic.default = model
    await write(harness, "Help me plan my week\nI have three deadlines", thread)

    assert status_when_asked == [[THINKING]]
    [status] = harness.slack.calls_to(STATUS)
    assert (status["channel_id"], status["thread_ts"]) == (DM, thread)
    order = method_order(harness.slack)
    assert order.index(STATUS) < order.index("chat.startStream")
    [start] = harness.slack.calls_to("chat.startStream")
    assert (start["channel"], start["thread_ts"]) == (DM, thread)
    greeting, reply = harness.shown(thread, channel=DM)
    assert greeting["text"] == GREETING
    assert reply["text"] == answer and reply["format"] == "markdown" and not reply["streaming"]
    shows = harness.slack.assistant_thread(DM, thread)
    assert shows["status"] == ""  # the reply cleared "thinking…"
    assert shows["title"] == "Help me plan my week"  # from the first message's first line

    # The next message continues the same conversation: a status again, the title stays.
    await write(harness, "Move the gym to Thursday", thread)
    assert statuses(harness) == [THINKING, THINKING]
    assert harness.slack.count(TITLE) == 1
    history = json.dumps(harness.model_requests()[-1]["messages"])
    assert "three deadlines" in history and "Move the gym to Thursday" in history
    assert harness.history_reads() == 0


async def test_abuse_in_an_assistant_thread_ends_with_the_closure_notice_then_silence(
    harness: SlackHarness,
) -> None:
    script_abuse(harness)
    thread = await start_thread(harness)
    for _ in range(3):
        await write(harness, ABUSIVE, thread)

    posts = harness.shown(thread, channel=DM)  # posted or streamed, as the person sees them
    assert posts[0]["text"] == GREETING
    assert posts[1]["text"].startswith("Warning:") and posts[2]["text"].startswith("Second warning:")
    assert [is_closure(p) for p in posts[1:]] == [False, False, False, True]
    closure = posts[-1]
    assert closure["channel"] == DM and "ended after repeated warnings" in closure["text"]
    assert "Edit & fork" in closure["text"]
    calls_at_end, statuses_at_end = len(harness.model_requests()), statuses(harness)
    assert calls_at_end == 5 and statuses_at_end == [THINKING] * 3
    assert harness.slack.assistant_thread(DM, thread)["status"] == ""

    # Afterwards: no model calls, no posts, no "thinking…", one private reminder.
    for words in ("hello?", "are you there?", "please answer"):
        await write(harness, words, thread)
    assert len(harness.model_requests()) == calls_at_end
    assert len(harness.shown(thread, channel=DM)) == len(posts)
    assert statuses(harness) == statuses_at_end
    [reminder] = harness.ephemerals(ALICE)
    assert (reminder["channel"], reminder["thread_ts"]) == (DM, thread)
    assert "/haven new" in reminder["text"]

    # "This ending was a mistake" works here as in a channel thread.
    conversation_id = closure["blocks"][-1]["elements"][0]["value"]
    message = {"ts": closure["ts"], "thread_ts": thread, "text": closure["text"], "blocks": closure["blocks"]}
    await harness.click("haven_mistake", conversation_id, channel=DM, message=message)
    await harness.submit(harness.last_view(), "it was a joke between friends")
    [report] = await harness.services.admin.feedback(OPERATOR, "slack", harness.slack.team_id)
    assert (report.conversation_id, report.user_id) == (conversation_id, ALICE)


async def test_crisis_resources_come_first_in_an_assistant_thread(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("I'm really glad you told me. I'm here with you."))
    thread = await start_thread(lite)
    await write(lite, "I want to kill myself", thread)

    posts = lite.shown(thread, channel=DM)
    assert [is_crisis(p) for p in posts] == [False, True, False]  # greeting, card, reply
    assert "988" in json.dumps(posts[1]["blocks"])
    conv = await lite.services.repo.find_conversation(thread_ref(TEAM, DM, thread))
    assert conv is not None and conv.at_risk and not conv.ended


async def test_an_assistant_message_is_recorded_before_it_is_acknowledged_and_answered_once(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    lite.anthropic.enqueue(text("Here after all."))
    thread = await start_thread(lite)
    event = in_thread(lite, "are you there?", thread)
    database = lite.services.repo.database
    real_run = database.run

    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(database, "run", unreachable)
    refused = await lite.event(event)
    assert refused.status == 503  # not recorded, so not acknowledged: Slack delivers it again
    assert statuses(lite) == [] and lite.model_requests() == []

    monkeypatch.setattr(database, "run", real_run)
    assert (await lite.event(event, retry=1)).status == 200
    assert (await lite.event(event, retry=2)).status == 200  # a duplicate: acknowledged, nothing shown
    assert [p["text"] for p in lite.shown(thread, channel=DM)] == [GREETING, "Here after all."]
    assert statuses(lite) == [THINKING] and len(lite.model_requests()) == 1
    assert await lite.services.engine.pending() == 0


async def test_editing_a_message_in_an_ended_assistant_thread_offers_a_fork(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("Sure."))
    thread = await start_thread(lite)
    first = await write(lite, "plan my week", thread)
    await lite.command(f"end {lite.slack.permalink(DM, thread)}", channel=DM)
    assert is_closure(lite.shown(thread, channel=DM)[-1])

    edited = in_thread(lite, "plan my month", thread, ts=first)
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": DM,
        "channel_type": "im",
        "hidden": True,
        "ts": "1799999999.000001",
        "event_ts": "1799999999.000001",
        "message": {**edited, "edited": {"user": ALICE, "ts": "1799999999.000000"}},
        "previous_message": in_thread(lite, "plan my week", thread, ts=first),
    }
    assert (await lite.event(event)).status == 200

    [offer] = lite.ephemerals(ALICE)
    assert (offer["channel"], offer["thread_ts"]) == (DM, thread)
    button = offer["blocks"][-1]["elements"][0]
    assert button["action_id"] == "haven_fork_edit"
    assert len(lite.model_requests()) == 1

    # Taking the offer continues in a new thread of the same DM, from the edited words.
    lite.anthropic.enqueue(text("A month it is."))
    await lite.click("haven_fork_edit", button["value"], channel=DM, message={"ts": "1.2", "ephemeral": True})
    header = lite.posts(top_level=True)[-1]
    assert header["channel"] == DM and header["text"].startswith("Forked from <")
    [answer] = lite.shown(lite.slack.ts_of(header), channel=DM)
    assert answer["text"] == "A month it is."
    assert "plan my month" in json.dumps(lite.model_requests()[-1]["messages"])


async def test_a_context_change_is_remembered_for_the_thread_and_logged_without_it(
    lite: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    thread = await start_thread(lite)
    [greeting] = lite.posts(thread_ts=thread)
    changed = lite.assistant_event(
        "assistant_thread_context_changed",
        thread_ts=thread,
        context={"channel_id": "CSECRET01", "team_id": TEAM},
    )
    with caplog.at_level(logging.DEBUG, logger="adapters"):
        assert (await lite.event(changed)).status == 200

    # Bolt's store keeps it in the metadata of Haven's first message in the thread.
    [update] = lite.slack.calls_to("chat.update")
    assert update["ts"] == lite.slack.ts_of(greeting) and update["channel"] == DM
    assert update["metadata"]["event_payload"]["channel_id"] == "CSECRET01"
    ours = [r for r in caplog.records if r.name.startswith("adapters.")]
    assert any("context changed" in r.getMessage() for r in ours)
    assert not any("CSECRET01" in json.dumps(r.__dict__, default=str) for r in ours)
    assert lite.model_requests() == []
