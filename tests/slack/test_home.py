"""The App Home tab through Bolt with signed requests against the mock Slack: what it shows whom, that
the view Slack receives is within Block Kit's limits, and "forget me"."""

from __future__ import annotations

import json
import time
from typing import Any

from slack_sdk.models.views import View

from adapters.slack.blocks import VIEW_NEW, VIEW_RESOURCES
from adapters.slack.home_blocks import ACTION_EDIT_RESOURCES, ACTION_FORGET, ACTION_HOME_NEW, VIEW_FORGET
from bot.admin import MAX_CRISIS_CHARS
from bot.home import FORGET_ACTION
from bot.i18n import strings_for
from bot.notices import ADMIN_ONLY
from bot.types import Author, Decision, NewMessage, ThreadRef
from fakes.fake_anthropic import text
from fakes.slack_harness import ADA, ALICE, BOB, CHANNEL, TEAM, SlackHarness

ADMIN_HEADERS = {
    "For admins: crisis resources",
    "Settings",
    "Recent endings",
    "Endings reported as mistakes",
    "Usage this week",
}
OTHER_TEAM = "T0OTHER01"
ESTEBAN = "UESTEBAN1"
ES = strings_for("es-ES")


def dm_of(user: str) -> str:
    return f"D{user}"


async def open_home(h: SlackHarness, user: str) -> dict[str, Any]:
    """Open the Home tab as ``user``; the view Haven published for them."""
    before = h.slack.count("views.publish")
    event = {
        "type": "app_home_opened",
        "user": user,
        "channel": dm_of(user),
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    resp = await h.event(event)
    assert resp.status == 200
    assert h.slack.count("views.publish") == before + 1
    return published(h, user)


def published(h: SlackHarness, user: str) -> dict[str, Any]:
    call = h.slack.calls_to("views.publish")[-1]
    assert call["user_id"] == user
    view: dict[str, Any] = call["view"]
    assert view["type"] == "home"
    return view


def validated(view: dict[str, Any]) -> dict[str, Any]:
    """The published JSON parsed back into slack_sdk's models and validated against Block Kit's limits
    (``to_dict`` raises ``SlackObjectFormationError`` on any breach)."""
    again: dict[str, Any] = View(**view).to_dict()
    assert len(view["blocks"]) <= 100 and len(again["blocks"]) == len(view["blocks"])
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    return again


def headers(view: dict[str, Any]) -> set[str]:
    return {b["text"]["text"] for b in view["blocks"] if b["type"] == "header"}


def shown(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


async def press(h: SlackHarness, user: str, view: dict[str, Any], action_id: str) -> Any:
    return await h.interact(
        {
            "type": "block_actions",
            "trigger_id": f"trigger.{time.time_ns()}",
            "team": {"id": TEAM, "domain": "haven-test"},
            "user": {"id": user, "team_id": TEAM},
            "api_app_id": "AHAVEN001",
            "container": {"type": "view", "view_id": "VHOME0001"},
            "view": {**view, "id": "VHOME0001", "team_id": TEAM},
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "x"}],
        }
    )


def submission(view: dict[str, Any], user: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "haven-test"},
        "user": {"id": user, "team_id": TEAM},
        "view": {**view, "id": "VMODAL01", "team_id": TEAM, "state": {"values": {}}},
        "trigger_id": f"trigger.{time.time_ns()}",
    }


async def seed(h: SlackHarness, thread: ThreadRef, author: str, words: str, key: str) -> str:
    said = NewMessage("user", "text", ({"type": "text", "text": words},), author, author, key, words)
    began = await h.services.repo.begin_turn(thread, key, said, create=True, started_by=author)
    assert began.conversation is not None
    return began.conversation.id


async def test_a_person_sees_their_conversations_with_links_and_no_admin_part(lite: SlackHarness) -> None:
    roots = [lite.ts() for _ in range(3)]
    for n, root in enumerate(roots):
        await lite.mention(f"question number {n}", ts=root)
    await lite.mention("bob's own question", ts=lite.ts(), user=BOB)

    view = validated(await open_home(lite, ALICE))
    assert headers(view) == {"Haven", "Your recent conversations"}
    sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    listed = [s for s in sections if "you last wrote" in s]
    # Newest first, each with its thread's link and the start of the person's own latest message.
    assert len(listed) == 3
    for n, (section, root) in enumerate(zip(listed, reversed(roots), strict=True)):
        assert lite.slack.permalink(CHANNEL, root) in section
        assert f"question number {2 - n}" in section and "open" in section
    assert "bob" not in shown(view)
    buttons = {e["action_id"] for b in view["blocks"] for e in [b.get("accessory") or {}] if e}
    assert buttons == {ACTION_HOME_NEW, ACTION_FORGET}
    assert json.loads(view["private_metadata"]) == {"c": dm_of(ALICE)}


async def test_the_messages_tab_publishes_nothing(lite: SlackHarness) -> None:
    event = {"type": "app_home_opened", "user": ALICE, "channel": dm_of(ALICE), "tab": "messages"}
    assert (await lite.event({**event, "event_ts": "1.0"})).status == 200
    assert lite.slack.count("views.publish") == 0


async def test_an_admin_also_sees_resources_settings_endings_reports_and_usage(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("hi"))
    root = lite.ts()
    await lite.mention("hello", ts=root)
    await lite.command(f"end {lite.slack.permalink(CHANNEL, root)}")
    home = await open_home(lite, ALICE)
    assert not headers(home) & ADMIN_HEADERS  # Alice is no admin

    view = validated(await open_home(lite, ADA))
    assert headers(view) >= ADMIN_HEADERS
    blocks = shown(view)
    assert "Support is available" in blocks and "Haven's built-in default" in blocks
    assert "ended with the end command" in blocks and lite.slack.permalink(CHANNEL, root) in blocks
    calls = len(lite.anthropic.model_requests())
    assert calls > 0 and f"*{calls}* model calls since" in blocks
    assert any(
        e.get("action_id") == ACTION_EDIT_RESOURCES
        for b in view["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    )


async def test_the_home_stays_within_block_kit_limits_for_long_content(lite: SlackHarness) -> None:
    """Many long conversations with markup-heavy text, a 3,000-character crisis message, long reports."""
    services = lite.services
    heavy = "<&> " * 1500  # every character escaped for Slack grows
    for n in range(25):
        await seed(lite, ThreadRef("slack", TEAM, CHANNEL, f"1700000{n:03d}.000100"), ADA, heavy, f"m{n}")
    ada = Author(ADA, "ada", is_platform_admin=True)
    crisis = ("**Call** [the line](https://example.org/help) now & <breathe>. " * 60)[:MAX_CRISIS_CHARS]
    await services.admin.set_crisis_message(ada, "slack", TEAM, crisis)
    for n in range(12):
        conv = await services.repo.get_conversation(
            "slack", TEAM, await seed(lite, ThreadRef("slack", TEAM, "CENDED01", f"{n}.1"), BOB, "x", f"e{n}")
        )
        assert conv is not None
        assert await services.repo.end_conversation(
            conv.id, TEAM, "user_command", Decision("END", "user_command", None, 0, {})
        )
        await services.repo.record_feedback(conv, BOB, heavy[:3000])

    view = validated(await open_home(lite, ADA))
    assert headers(view) >= ADMIN_HEADERS
    blocks = shown(view)
    assert "…and" in blocks  # the report list was cut to fit, and says so
    assert "example.org/help" in blocks  # the crisis preview is the card people see


async def test_forget_me_removes_this_workspaces_texts_audits_and_refreshes_the_home(
    harness: SlackHarness,
) -> None:
    repo = harness.services.repo
    root = harness.ts()
    harness.anthropic.enqueue(text("first answer"), text("second answer"))
    await harness.mention("my private worry", ts=root)
    await harness.reply("a colleague adds this", thread_ts=root, user=BOB)
    conversation = await repo.find_conversation(ThreadRef("slack", TEAM, CHANNEL, root))
    assert conversation is not None
    elsewhere = await seed(harness, ThreadRef("slack", OTHER_TEAM, CHANNEL, root), ALICE, "kept there", "o1")

    home = await open_home(harness, ALICE)
    assert "my private worry" in shown(home)
    await press(harness, ALICE, home, ACTION_FORGET)
    confirm = harness.last_view()
    assert confirm["callback_id"] == VIEW_FORGET and confirm["submit"]["text"] == "Forget me"
    assert repo_texts(await repo.history(conversation.id, TEAM), ALICE) == ["my private worry"]  # not yet

    payload = submission(confirm, ALICE)
    assert (await harness.interact(payload)).status == 200
    history = await repo.history(conversation.id, TEAM)
    assert repo_texts(history, ALICE) == [None]
    assert repo_texts(history, BOB) == ["a colleague adds this"]
    assert "my private worry" not in json.dumps([m.content for m in history])
    assert repo_texts(await repo.history(elsewhere, OTHER_TEAM), ALICE) == ["kept there"]
    [record] = await repo.list_admin_audit("slack", TEAM)
    assert (record.actor_id, record.action, record.new) == (
        ALICE,
        FORGET_ACTION,
        {"messages": 1, "comments": 0},
    )
    assert await repo.list_admin_audit("slack", OTHER_TEAM) == []

    refreshed = validated(published(harness, ALICE))
    assert "my private worry" not in shown(refreshed)
    assert "your text was removed" in shown(refreshed) and "Done: the text of 1 of your" in shown(refreshed)
    # The same submission delivered again forgets and audits nothing more.
    await harness.interact(payload)
    assert len(await repo.list_admin_audit("slack", TEAM)) == 1
    # The conversation goes on.
    harness.anthropic.enqueue(text("still here"))
    await harness.reply("are you there?", thread_ts=root)
    assert harness.shown(root)[-1]["text"] == "still here"


async def test_new_conversation_button_opens_the_new_modal_and_starts_in_the_dm(lite: SlackHarness) -> None:
    home = await open_home(lite, ALICE)
    await press(lite, ALICE, home, ACTION_HOME_NEW)
    modal = lite.last_view()
    assert modal["callback_id"] == VIEW_NEW and json.loads(modal["private_metadata"]) == {"c": dm_of(ALICE)}
    lite.anthropic.enqueue(text("Hello from your Home."))
    await lite.submit(modal, "What can you do?")
    header = lite.posts(top_level=True)[-1]
    assert header["channel"] == dm_of(ALICE) and "What can you do?" in header["text"]
    assert lite.shown(lite.slack.ts_of(header), channel=dm_of(ALICE))[-1]["text"] == "Hello from your Home."


async def test_edit_crisis_resources_opens_the_resources_modal_for_admins_only(lite: SlackHarness) -> None:
    home = await open_home(lite, ADA)
    await press(lite, ADA, home, ACTION_EDIT_RESOURCES)
    modal = lite.last_view()
    assert modal["callback_id"] == VIEW_RESOURCES
    refused = await lite.submit(modal, "Alice's own line")  # the form's submitter is checked too
    assert ADMIN_ONLY in refused.body
    await lite.submit(modal, "Call the team line: 555-0100", user=ADA)
    ada = Author(ADA, "ada", is_platform_admin=True)
    assert (
        await lite.services.admin.settings(ada, "slack", TEAM)
    ).crisis_message == "Call the team line: 555-0100"
    assert "Call the team line" in shown(await open_home(lite, ADA))

    # A stale admin Home in a demoted person's hands opens nothing.
    opened = lite.slack.count("views.open")
    await press(lite, ALICE, home, ACTION_EDIT_RESOURCES)
    assert lite.slack.count("views.open") == opened
    told = lite.slack.calls_to("chat.postMessage")[-1]
    assert told["text"] == ADMIN_ONLY and told["channel"].startswith("D")


def repo_texts(history: Any, author: str) -> list[str | None]:
    return [m.text for m in history if m.author_id == author and m.role == "user"]


async def test_a_spanish_person_sees_their_home_and_forget_me_in_spanish(lite: SlackHarness) -> None:
    lite.slack.add_user(ESTEBAN, "esteban", locale="es-ES")
    await lite.mention("una pregunta mía", ts=lite.ts(), user=ESTEBAN)

    home = validated(await open_home(lite, ESTEBAN))
    assert headers(home) == {"Haven", "Tus conversaciones recientes"}
    blocks = shown(home)
    assert ES("home.start") in blocks and "`/haven new`" in ES("home.start")
    assert "Nueva conversación" in blocks and "Olvídame" in blocks and "abierta" in blocks
    assert "escribiste por última vez" in blocks and "you last wrote" not in blocks

    await press(lite, ESTEBAN, home, ACTION_FORGET)
    confirm = lite.last_view()
    assert confirm["callback_id"] == VIEW_FORGET
    assert (confirm["title"]["text"], confirm["submit"]["text"], confirm["close"]["text"]) == (
        "Olvídame",
        "Olvídame",
        ES("slack.cancel"),
    )
    assert confirm["blocks"][0]["text"]["text"] == ES("home.forget_confirm")
    assert (await lite.interact(submission(confirm, ESTEBAN))).status == 200
    refreshed = shown(validated(published(lite, ESTEBAN)))
    assert ES("home.text_removed") in refreshed
    assert ES("home.forgotten", messages=1, comments=0) in refreshed


async def test_a_spanish_admin_gets_the_admin_part_in_english(lite: SlackHarness) -> None:
    """Admin texts stay English (``bot.i18n``); the admin's own part of the Home is in their language."""
    lite.slack.add_user(ESTEBAN, "esteban", locale="es-ES", is_admin=True)
    home = validated(await open_home(lite, ESTEBAN))
    assert {"Haven", "Tus conversaciones recientes"} | ADMIN_HEADERS <= headers(home)
    assert "Your recent conversations" not in headers(home)
    assert f"_{ES('home.none_yet')}_" in shown(home)
