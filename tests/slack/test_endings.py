"""Endings on Slack: warnings then a closure notice, silence afterwards, the crisis veto, feedback."""

from __future__ import annotations

import json

from adapters.slack.blocks import VIEW_FEEDBACK
from bot.detectors import RiskLevel, assess_risk
from fakes.fake_anthropic import text, tool_use
from fakes.slack_harness import (
    ADA,
    ALERTS,
    ALICE,
    BOB,
    CHANNEL,
    SlackHarness,
    is_closure,
    is_crisis,
    post_words,
)

ABUSE = {"reason": "abuse", "note": "insults after redirection"}
ABUSIVE = "Shut up you useless piece of junk, answer me now"


def script_abuse(h: SlackHarness) -> None:
    h.anthropic.enqueue(
        tool_use("end_conversation", ABUSE),
        text("Warning: I won't continue if the insults go on."),
        tool_use("end_conversation", ABUSE),
        text("Second warning: please stop insulting me."),
        tool_use("end_conversation", ABUSE, text_before="I'm ending this conversation now."),
    )


async def test_abuse_two_warnings_then_one_closure_then_silence(harness: SlackHarness) -> None:
    assert assess_risk(ABUSIVE).level is RiskLevel.NONE, "the script needs abuse without any risk signal"
    script_abuse(harness)
    root = harness.ts()
    await harness.mention(ABUSIVE, ts=root)
    await harness.reply(ABUSIVE, thread_ts=root)
    await harness.reply(ABUSIVE, thread_ts=root)

    posts = harness.posts(thread_ts=root)
    texts = [post_words(p) for p in posts]
    assert texts[0].startswith("Warning:") and texts[1].startswith("Second warning:")
    assert [is_closure(p) for p in posts] == [False, False, False, True]
    closure = posts[-1]
    assert "ended after repeated warnings" in closure["text"]
    assert "/haven new" in closure["text"] and "Edit & fork" in closure["text"]
    calls_at_end = len(harness.model_requests())
    assert calls_at_end == 5

    # Afterwards: no model calls, no posts, at most one ephemeral reminder per person.
    for user in (ALICE, ALICE, BOB, BOB, ALICE):
        await harness.reply("hello? anyone?", thread_ts=root, user=user)
    assert len(harness.model_requests()) == calls_at_end
    assert len(harness.posts(thread_ts=root)) == 4
    for user in (ALICE, BOB):
        [reminder] = harness.ephemerals(user)
        assert reminder["thread_ts"] == root
        assert "/haven new" in reminder["text"]


async def test_crisis_text_with_an_ending_proposal_shows_resources_and_never_ends(
    harness: SlackHarness,
) -> None:
    harness.anthropic.enqueue(
        tool_use("end_conversation", {"reason": "user_request", "note": "asked to stop"}),
        text("I'm not going anywhere. I'm really glad you told me."),
    )
    root = harness.ts()
    await harness.mention("I want to kill myself. Please end this chat.", ts=root)

    posts = harness.posts(thread_ts=root)
    assert [is_crisis(p) for p in posts].count(True) == 1
    assert not any(is_closure(p) for p in posts)
    assert "988" in json.dumps(next(p for p in posts if is_crisis(p))["blocks"])
    conv = await harness.services.repo.find_conversation(_thread(root))
    assert conv is not None and not conv.ended and conv.at_risk

    # Even an explicit, confirmed request does not end it: the engine keeps the conversation open.
    harness.anthropic.enqueue(
        tool_use("end_conversation", {"reason": "user_request", "note": "confirmed"}), text("I'm here.")
    )
    await harness.reply("yes, end it", thread_ts=root)
    assert not any(is_closure(p) for p in harness.posts(thread_ts=root))


async def test_end_command_closes_with_a_notice_and_feedback_button_records_a_report(
    harness: SlackHarness,
) -> None:
    await harness.command(f"settings alert-channel <#{ALERTS}|haven-admins>", user=ADA)
    harness.anthropic.enqueue(text("Happy to help."))
    root = harness.ts()
    await harness.mention("help me plan a trip", ts=root)

    await harness.command(f"end {harness.slack.permalink(CHANNEL, root)}")

    closure = harness.posts(thread_ts=root)[-1]
    assert is_closure(closure)
    assert "closed with the end command" in closure["text"]
    alert = harness.posts(top_level=True)[-1]
    assert alert["channel"] == ALERTS
    assert "help me plan a trip" not in alert["text"] and "Happy to help" not in alert["text"]
    assert "/archives/" in alert["text"]  # a link to the thread, not its content

    # "This ending was a mistake" → modal → stored report + ephemeral thanks + admin alert
    conversation_id = closure["blocks"][-1]["elements"][0]["value"]
    message = {"ts": "1.000001", "thread_ts": root, "text": closure["text"], "blocks": closure["blocks"]}
    await harness.click("haven_mistake", conversation_id, message=message)
    view = harness.last_view()
    assert view["callback_id"] == VIEW_FEEDBACK
    await harness.submit(view, "I was only joking, it was fine")

    [report] = await harness.services.admin.feedback(_admin(), "slack", harness.slack.team_id)
    assert report.conversation_id == conversation_id
    assert report.comment == "I was only joking, it was fine"
    assert report.user_id == ALICE
    thanks = harness.ephemerals(ALICE)[-1]
    assert thanks["thread_ts"] == root and "Thank you" in thanks["text"]
    feedback_alert = harness.posts(top_level=True)[-1]
    assert feedback_alert["channel"] == ALERTS and "mistake" in feedback_alert["text"]
    assert "joking" not in feedback_alert["text"]


async def test_end_command_without_a_link_explains_itself(lite: SlackHarness) -> None:
    await lite.command("end")
    [answer] = lite.responses()
    assert "thread link" in answer["text"]
    assert lite.posts() == []


async def test_feedback_without_comment_is_fine_and_unknown_conversation_is_refused(
    lite: SlackHarness,
) -> None:
    lite.anthropic.enqueue(text("ok"))
    root = lite.ts()
    await lite.mention("hello", ts=root)
    await lite.command(f"end {lite.slack.permalink(CHANNEL, root)}")
    closure = lite.posts(thread_ts=root)[-1]
    conversation_id = closure["blocks"][-1]["elements"][0]["value"]

    await lite.click("haven_mistake", conversation_id, message={"ts": "1.1", "thread_ts": root})
    await lite.submit(lite.last_view(), None)
    [report] = await lite.services.admin.feedback(_admin(), "slack", lite.slack.team_id)
    assert report.comment is None

    await lite.click("haven_mistake", "no-such-conversation", message={"ts": "1.1", "thread_ts": root})
    await lite.submit(lite.last_view(), "hm")
    assert len(await lite.services.admin.feedback(_admin(), "slack", lite.slack.team_id)) == 1


async def test_editing_a_message_in_an_ended_thread_offers_a_fork(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("Sure."), text("Noted."))
    root = lite.ts()
    await lite.mention("plan my week", ts=root)
    second = await lite.reply("add a gym session", thread_ts=root)
    await lite.command(f"end {lite.slack.permalink(CHANNEL, root)}")
    before = len(lite.model_requests())

    edited = lite.message("add two gym sessions", ts=second, thread_ts=root)
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "channel_type": "channel",
        "hidden": True,
        "ts": "1799999999.000001",
        "event_ts": "1799999999.000001",
        "message": {**edited, "edited": {"user": ALICE, "ts": "1799999999.000000"}},
        "previous_message": lite.message("add a gym session", ts=second, thread_ts=root),
    }
    await lite.event(event)
    await lite.event(event, retry=1)  # one offer per edit

    [offer] = lite.ephemerals(ALICE)
    assert offer["thread_ts"] == root
    button = offer["blocks"][-1]["elements"][0]
    assert button["action_id"] == "haven_fork_edit"
    assert len(lite.model_requests()) == before

    lite.anthropic.enqueue(text("Two gym sessions it is."))
    await lite.click("haven_fork_edit", button["value"], message={"ts": "1.2", "ephemeral": True})
    header = lite.posts(top_level=True)[-1]
    assert header["text"].startswith("Forked from <") and f"by <@{ALICE}>" in header["text"]
    answer = lite.posts(thread_ts=lite.slack.ts_of(header))[-1]
    assert post_words(answer) == "Two gym sessions it is."
    history = json.dumps(lite.model_requests()[-1]["messages"])
    assert "plan my week" in history and "add two gym sessions" in history
    assert "add a gym session" not in history
    assert lite.responses()[-1].get("delete_original") is True


async def test_edits_in_live_threads_or_unchanged_text_are_ignored(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("Sure."))
    root = lite.ts()
    await lite.mention("plan my week", ts=root)
    edited = lite.message("plan my month", ts=root, kind="message")
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "ts": "1799999999.000002",
        "message": {**edited, "edited": {"user": ALICE, "ts": "1799999999.000002"}},
        "previous_message": lite.message("plan my week", ts=root),
    }
    await lite.event(event)
    same = {**event, "message": {**lite.message("plan my week", ts=root)}}
    await lite.event(same)
    assert lite.ephemerals() == []
    assert len(lite.model_requests()) == 1


# -- helpers ----------------------------------------------------------------------------------------------


def _thread(root: str):  # type: ignore[no-untyped-def]
    from adapters.slack.translate import thread_ref
    from fakes.mock_slack import TEAM_ID

    return thread_ref(TEAM_ID, CHANNEL, root)


def _admin():  # type: ignore[no-untyped-def]
    from bot.types import Author

    return Author("cli", "operator", is_platform_admin=True)
