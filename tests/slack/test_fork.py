"""Edit & fork on Slack: the message shortcut, its modal, `/haven fork`, and who may fork."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.blocks import VIEW_FORK
from bot.notices import NOT_AUTHOR
from fakes.fake_anthropic import text
from fakes.slack_harness import ADA, ALICE, BOB, CHANNEL, SlackHarness, post_words


async def _three_turns(h: SlackHarness) -> tuple[str, str]:
    h.anthropic.enqueue(text("A1: pasta."), text("A2: with garlic."), text("A3: and wine."))
    root = h.ts()
    await h.mention("What should I cook tonight?", ts=root)
    second = await h.reply("Something vegetarian, please", thread_ts=root)
    await h.reply("And a drink?", thread_ts=root)
    return root, second


def _texts(request: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for m in request["messages"]:
        content = m["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        out.append((m["role"], "".join(b.get("text", "") for b in blocks if b.get("type") == "text")))
    return out


async def test_shortcut_modal_fork_posts_top_level_and_answers_with_the_right_history(
    harness: SlackHarness,
) -> None:
    root, second = await _three_turns(harness)
    message = harness.message("Something vegetarian, please", ts=second, thread_ts=root)

    await harness.shortcut(message)

    view = harness.last_view()
    assert view["callback_id"] == VIEW_FORK
    assert view["blocks"][-1]["element"]["initial_value"] == "Something vegetarian, please"

    harness.anthropic.enqueue(text("Forked answer: fish tacos."))
    await harness.submit(view, "Something with fish, please")

    header = harness.posts(top_level=True)[-1]
    assert header["channel"] == CHANNEL
    assert header["text"].startswith(f"Forked from <{harness.slack.permalink(CHANNEL, second)}|")
    assert f"by <@{ALICE}>" in header["text"] and "Something with fish, please" in header["text"]
    new_thread = harness.slack.ts_of(header)
    [answer] = harness.posts(thread_ts=new_thread)
    assert post_words(answer) == "Forked answer: fish tacos."

    sent = _texts(harness.model_requests()[-1])
    assert [role for role, _ in sent] == ["user", "assistant", "user"]
    assert "What should I cook tonight?" in sent[0][1]
    assert sent[1][1] == "A1: pasta."
    assert "Something with fish, please" in sent[2][1]
    assert "vegetarian" not in json.dumps(harness.model_requests()[-1]["messages"])

    # The new thread is a conversation of its own: a reply there continues it.
    harness.anthropic.enqueue(text("Fish it is."))
    await harness.reply("great, thanks", thread_ts=new_thread)
    assert post_words(harness.posts(thread_ts=new_thread)[-1]) == "Fish it is."
    # …and the original thread is untouched.
    assert len(harness.posts(thread_ts=root)) == 3


async def test_only_the_author_or_an_admin_may_fork(lite: SlackHarness) -> None:
    root, second = await _three_turns(lite)
    message = lite.message("Something vegetarian, please", ts=second, thread_ts=root)

    await lite.shortcut(message, user=BOB)
    assert lite.slack.count("views.open") == 0
    assert lite.ephemerals(BOB)[-1]["text"] == NOT_AUTHOR

    # A forged submission (the modal was never opened for Bob) is refused by the same check.
    forged = {
        "type": "modal",
        "callback_id": VIEW_FORK,
        "private_metadata": json.dumps({"c": CHANNEL, "t": root, "m": second}),
    }
    refusals = len(lite.ephemerals(BOB))
    await lite.submit(forged, "hijack", user=BOB)
    assert lite.posts(top_level=True) == []
    assert len(lite.ephemerals(BOB)) == refusals + 1
    assert lite.ephemerals(BOB)[-1]["text"] == NOT_AUTHOR

    lite.anthropic.enqueue(text("Admin fork answer."))
    await lite.shortcut(message, user=ADA)
    await lite.submit(lite.last_view(), "Admin edit", user=ADA)
    assert lite.posts(top_level=True)[-1]["text"].startswith("Forked from")


async def test_shortcut_on_a_message_outside_haven_or_on_its_replies_is_refused(lite: SlackHarness) -> None:
    root, _ = await _three_turns(lite)
    await lite.shortcut(lite.message("random chatter", ts=lite.ts()))
    bot_reply = lite.posts(thread_ts=root)[0]
    await lite.shortcut({**bot_reply, "ts": lite.slack.ts_of(bot_reply), "user": "UHAVENBOT"})
    assert lite.slack.count("views.open") == 0
    assert len(lite.ephemerals(ALICE)) == 2


async def test_fork_command_with_a_message_link(lite: SlackHarness) -> None:
    root, second = await _three_turns(lite)
    link = lite.slack.permalink(CHANNEL, second, root)
    lite.anthropic.enqueue(text("Command fork answer."))

    await lite.command(f"fork {link} Something spicy, please")

    header = lite.posts(top_level=True)[-1]
    assert "Something spicy, please" in header["text"]
    assert post_words(lite.posts(thread_ts=lite.slack.ts_of(header))[-1]) == "Command fork answer."
    assert "Something spicy, please" in json.dumps(lite.model_requests()[-1]["messages"])

    await lite.command(f"fork {link}")  # no new text
    assert "Usage" in lite.responses()[-1]["text"]


async def test_fork_of_an_ended_conversation_starts_with_zero_warnings(lite: SlackHarness) -> None:
    root, second = await _three_turns(lite)
    await lite.command(f"end {lite.slack.permalink(CHANNEL, root)}")
    lite.anthropic.enqueue(text("A fresh start."))

    await lite.shortcut(lite.message("Something vegetarian, please", ts=second, thread_ts=root))
    await lite.submit(lite.last_view(), "Something sweet")

    header = lite.posts(top_level=True)[-1]
    thread = lite.slack.ts_of(header)
    assert post_words(lite.posts(thread_ts=thread)[-1]) == "A fresh start."
    from adapters.slack.translate import thread_ref

    forked = await lite.services.repo.find_conversation(thread_ref(lite.slack.team_id, CHANNEL, thread))
    assert forked is not None and not forked.ended and forked.warnings == 0 and forked.forked_from
