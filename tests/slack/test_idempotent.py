"""Commands and interactions act once per delivery, feedback is one record per person, and with the
database away every command answers a private note and leaves nothing half-done.

A replay here is the very same signed request (same body, same signature headers) dispatched again
through Bolt, as a proxy retry or a captured request replayed within Slack's five minutes would be.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt.response import BoltResponse

from adapters.slack.blocks import VIEW_FEEDBACK, VIEW_RESOURCES
from adapters.slack.listeners import shared as shared_module
from adapters.slack.listeners.shared import Shared
from bot.i18n import strings_for
from bot.notices import DATABASE_UNAVAILABLE
from bot.ports import StorageUnavailable
from bot.types import Author, ThreadRef
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.mock_slack import MockSlack
from fakes.postgres import PostgresServer
from fakes.slack_harness import (
    ADA,
    ALERTS,
    ALICE,
    CHANNEL,
    TEAM,
    SlackHarness,
    harness_on,
    post_words,
    signed_headers,
)

FORM = "application/x-www-form-urlencoded"


def _trigger() -> str:
    return f"{time.time_ns()}.738474920.8088930838d88f008e0"


def command_body(h: SlackHarness, words: str, *, user: str = ALICE, trigger_id: str | None = None) -> str:
    return urlencode(
        {
            "token": "legacy",
            "team_id": TEAM,
            "team_domain": "haven-test",
            "channel_id": CHANNEL,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/haven",
            "text": words,
            "api_app_id": "AHAVEN001",
            "response_url": h.slack.response_url("cmd"),
            "trigger_id": trigger_id or _trigger(),
        }
    )


def interaction_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps({"trigger_id": _trigger(), **payload})})


async def deliver(h: SlackHarness, body: str, times: int) -> list[BoltResponse]:
    """The same signed request, ``times`` times."""
    headers = signed_headers(body, content_type=FORM)
    return [await h.dispatch(body, headers) for _ in range(times)]


def click_payload(action_id: str, value: str, message: dict[str, Any], user: str = ALICE) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "haven-test"},
        "user": {"id": user, "team_id": TEAM},
        "channel": {"id": CHANNEL, "name": "general"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL},
        "message": message,
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "b"}],
    }


def submit_payload(view: dict[str, Any], value: str | None, user: str = ALICE) -> dict[str, Any]:
    state = {"values": {"text": {"text": {"type": "plain_text_input", "value": value}}}}
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "haven-test"},
        "user": {"id": user, "team_id": TEAM},
        "view": {**view, "id": "VMODAL01", "team_id": TEAM, "state": state},
    }


def admin() -> Author:
    return Author(ADA, "ada", is_platform_admin=True)


async def ended_conversation(h: SlackHarness) -> tuple[str, str, dict[str, Any]]:
    """A conversation closed with ``/haven end``: its thread, id and closure notice as Slack shows it."""
    h.anthropic.enqueue(text("Happy to help."))
    root = h.ts()
    await h.mention("help me plan a trip", ts=root)
    await h.command(f"end {h.slack.permalink(CHANNEL, root)}")
    closure = h.posts(thread_ts=root)[-1]
    conversation_id = closure["blocks"][-1]["elements"][0]["value"]
    message = {"ts": h.slack.ts_of(closure), "thread_ts": root, "text": closure["text"]}
    return root, conversation_id, {**message, "blocks": closure["blocks"]}


# -- once per delivery -------------------------------------------------------------------------------


async def test_the_same_new_command_delivered_three_times_starts_one_conversation(
    harness: SlackHarness,
) -> None:
    harness.anthropic.enqueue(text("Hello there."), text("A second answer nobody asked for."))

    responses = await deliver(harness, command_body(harness, "new plan my week"), 3)

    assert [r.status for r in responses] == [200, 200, 200]
    [header] = harness.posts(top_level=True)
    thread = harness.slack.ts_of(header)
    assert [post_words(p) for p in harness.posts(thread_ts=thread)] == ["Hello there."]
    assert len(harness.model_requests()) == 1
    conversation = await harness.services.engine.thread_status(ThreadRef("slack", TEAM, CHANNEL, thread))
    assert conversation is not None
    # A new command (a new trigger) with the same words is a new conversation, as it should be.
    harness.anthropic.enqueue(text("Hello again."))
    await harness.command("new plan my week")
    assert len(harness.posts(top_level=True)) == 2


async def test_the_same_shortcut_delivered_twice_opens_one_form(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("ok"))
    root = lite.ts()
    await lite.mention("hello", ts=root)
    mine = {"type": "message", "user": ALICE, "ts": root, "text": "hello"}
    body = interaction_body(
        {
            "type": "message_action",
            "callback_id": "haven_edit_fork",
            "team": {"id": TEAM, "domain": "haven-test"},
            "user": {"id": ALICE, "team_id": TEAM},
            "channel": {"id": CHANNEL, "name": "general"},
            "message": mine,
            "message_ts": root,
            "response_url": lite.slack.response_url("shortcut"),
        }
    )
    await deliver(lite, body, 2)
    assert lite.slack.count("views.open") == 1


async def test_the_same_button_press_delivered_twice_opens_one_form(lite: SlackHarness) -> None:
    _, conversation_id, closure = await ended_conversation(lite)
    await deliver(lite, interaction_body(click_payload("haven_mistake", conversation_id, closure)), 2)
    assert lite.slack.count("views.open") == 1
    assert lite.last_view()["callback_id"] == VIEW_FEEDBACK


async def test_the_same_form_submission_delivered_twice_records_and_alerts_once(lite: SlackHarness) -> None:
    await lite.command(f"settings alert-channel <#{ALERTS}|haven-admins>", user=ADA)
    _, conversation_id, closure = await ended_conversation(lite)
    alerts_before = len(lite.posts(top_level=True))
    await lite.click("haven_mistake", conversation_id, message=closure)

    await deliver(lite, interaction_body(submit_payload(lite.last_view(), "it was fine")), 2)

    [report] = await lite.services.admin.feedback(admin(), "slack", TEAM)
    assert report.comment == "it was fine"
    assert len([e for e in lite.ephemerals(ALICE) if "Thank you" in e["text"]]) == 1
    assert len(lite.posts(top_level=True)) == alerts_before + 1


async def test_the_same_resources_form_delivered_twice_is_saved_and_confirmed_once(
    lite: SlackHarness,
) -> None:
    await lite.command("resources set", user=ADA)
    view = lite.last_view()
    assert view["callback_id"] == VIEW_RESOURCES
    responses = await deliver(lite, interaction_body(submit_payload(view, "Call 112.", user=ADA)), 2)
    assert [r.status for r in responses] == [200, 200] and not any("errors" in r.body for r in responses)
    assert (await lite.services.admin.settings(admin(), "slack", TEAM)).crisis_message == "Call 112."
    assert len([e for e in lite.ephemerals(ADA) if "saved" in e["text"]]) == 1


# -- one feedback record per person per ending ---------------------------------------------------------


async def test_feedback_pressed_five_times_is_one_record_with_the_latest_comment_and_one_alert(
    harness: SlackHarness,
) -> None:
    await harness.command(f"settings alert-channel <#{ALERTS}|haven-admins>", user=ADA)
    _, conversation_id, closure = await ended_conversation(harness)
    alerts_before = len(harness.posts(top_level=True))

    for _ in range(5):  # five separate presses, each submitting the form without a comment
        await harness.click("haven_mistake", conversation_id, message=closure)
        await harness.submit(harness.last_view(), None)
    for comment in ("too early", "on reflection: it ended while I was still asking"):
        await harness.click("haven_mistake", conversation_id, message=closure)
        await harness.submit(harness.last_view(), comment)

    [report] = await harness.services.admin.feedback(admin(), "slack", TEAM)
    assert (report.user_id, report.comment) == (ALICE, "on reflection: it ended while I was still asking")
    alerts = harness.posts(top_level=True)[alerts_before:]
    assert [a["channel"] for a in alerts] == [ALERTS]
    # Each submission is still thanked: the person's report was taken (and edited).
    assert len([e for e in harness.ephemerals(ALICE) if "Thank you" in e["text"]]) == 7
    # The admins' list shows the one report.
    await harness.command("feedback", user=ADA)
    listing = harness.responses()[-1]["text"]
    assert listing.count("\n•") == 1 and "on reflection" in listing


# -- the database away ---------------------------------------------------------------------------------


def database_down(h: SlackHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every storage call fails as ``storage.db.Database.run`` fails while the server is unreachable."""

    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(h.services.repo.database, "run", unreachable)


async def test_commands_answer_the_database_note_and_post_nothing(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    lite.anthropic.enqueue(text("ok"))
    root = lite.ts()
    await lite.mention("hello", ts=root)
    posts_before = len(lite.posts())
    database_down(lite, monkeypatch)

    for words in ("new hello there", f"end {lite.slack.permalink(CHANNEL, root)}", "settings", "endings"):
        resp = await lite.command(words, user=ADA)
        assert resp.status == 200, words  # acknowledged in time either way
        assert lite.responses()[-1]["text"] == DATABASE_UNAVAILABLE, words

    assert len(lite.posts()) == posts_before
    assert lite.slack.count("chat.delete") == 0
    assert len(lite.model_requests()) == 1


async def test_a_database_failure_after_the_new_post_takes_the_post_back(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fails(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(lite.services.engine, "handle_message", fails)
    await lite.command("new hello there")

    [header] = lite.posts(top_level=True)
    [deleted] = lite.slack.calls_to("chat.delete")
    assert deleted["ts"] == lite.slack.ts_of(header)
    assert lite.responses()[-1]["text"] == DATABASE_UNAVAILABLE


async def test_buttons_and_forms_answer_the_database_note(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, conversation_id, closure = await ended_conversation(lite)
    await lite.click("haven_mistake", conversation_id, message=closure)
    feedback_view = lite.last_view()
    await lite.command("resources set", user=ADA)
    resources_view = lite.last_view()
    opened = lite.slack.count("views.open")
    database_down(lite, monkeypatch)

    await lite.click("haven_mistake", conversation_id, message=closure)
    assert lite.slack.count("views.open") == opened
    assert lite.ephemerals(ALICE)[-1]["text"] == DATABASE_UNAVAILABLE
    resp = await lite.submit(feedback_view, "it was a mistake")
    assert resp.status == 200
    assert [e["text"] for e in lite.ephemerals(ALICE)[-2:]] == [DATABASE_UNAVAILABLE] * 2
    # The resources form keeps the admin's text and says why it was not saved.
    resp = await lite.submit(resources_view, "Call 112.", user=ADA)
    assert resp.status == 200
    assert json.loads(resp.body) == {"response_action": "errors", "errors": {"text": DATABASE_UNAVAILABLE}}


@pytest.fixture
async def on_postgres(
    postgres_server: PostgresServer, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[tuple[SlackHarness, PostgresServer]]:
    url = postgres_server.create_database()
    async for h in harness_on(url, slack_mock, anthropic):
        try:
            yield h, postgres_server
        finally:
            postgres_server.start()


@pytest.mark.postgres
async def test_with_postgresql_stopped_commands_answer_the_note_and_post_nothing(
    on_postgres: tuple[SlackHarness, PostgresServer],
) -> None:
    h, server = on_postgres
    h.anthropic.enqueue(text("ok"), text("answered after the outage"))
    root = h.ts()
    await h.mention("hello", ts=root)
    posts_before = len(h.posts())

    server.shutdown()
    for words in ("new hello there", f"end {h.slack.permalink(CHANNEL, root)}", "settings"):
        started = time.monotonic()
        resp = await h.command(words)
        assert resp.status == 200 and time.monotonic() - started < 3, words
        assert h.responses()[-1]["text"] == DATABASE_UNAVAILABLE, words
    assert len(h.posts()) == posts_before

    server.start()
    await h.command("new hello there")
    assert h.posts(top_level=True)[-1]["text"].endswith("hello there")


async def test_the_database_note_is_in_the_persons_language_and_english_if_that_fails(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The locale comes from users.info (Slack's, there while the database is away); a failed lookup
    still says the note, in English."""
    lite.slack.add_user("UESTEBAN1", "esteban", locale="es-ES")
    lite.slack.add_user("UELENA001", "elena", locale="es-ES")
    spanish = strings_for("es-ES")("notice.database_unavailable")
    assert spanish != DATABASE_UNAVAILABLE
    _, conversation_id, closure = await ended_conversation(lite)
    database_down(lite, monkeypatch)

    await lite.command("new hola", user="UESTEBAN1")
    assert lite.responses()[-1]["text"] == spanish
    await lite.click("haven_mistake", conversation_id, message=closure, user="UESTEBAN1")
    assert lite.ephemerals("UESTEBAN1")[-1]["text"] == spanish

    lite.slack.fail("users.info", "ratelimited")
    await lite.command("new hola", user="UELENA001")
    assert lite.responses()[-1]["text"] == DATABASE_UNAVAILABLE


class _Stuck:
    def known_person(self, team: str, user: str) -> None:
        return None

    async def person(self, team: str, user: str) -> Any:
        await asyncio.sleep(60)


class _Broken(_Stuck):
    async def person(self, team: str, user: str) -> Any:
        raise RuntimeError("anything at all")


async def test_the_database_note_never_waits_long_nor_fails_on_the_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shared_module, "LOCALE_LOOKUP_SECONDS", 0.05)
    for api in (_Stuck(), _Broken()):
        note = await Shared.unavailable_note(SimpleNamespace(api=api), "T1", "U1")  # type: ignore[arg-type]
        assert note == DATABASE_UNAVAILABLE
    assert await Shared.unavailable_note(SimpleNamespace(api=_Broken()), "T1", None) == DATABASE_UNAVAILABLE  # type: ignore[arg-type]
