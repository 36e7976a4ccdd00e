"""Haven on Slack speaks each person's language: the locale from users.info picks the closure notice,
its button, the feedback form and the reminders; the model is told it; English stays English."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.blocks import ACTION_MISTAKE, VIEW_FEEDBACK
from bot.i18n import strings_for
from bot.notices import MISTAKE_BUTTON
from fakes.fake_anthropic import text, tool_use
from fakes.mock_slack import MockSlack
from fakes.slack_harness import ALICE, SlackHarness, is_closure

ESTEBAN = "UESTEBAN1"
ES = strings_for("es-ES")
ABUSE = {"reason": "abuse", "note": "insults after redirection"}
ABUSIVE = "Shut up you useless piece of junk, answer me now"


def script_abuse(h: SlackHarness) -> None:
    h.anthropic.enqueue(
        tool_use("end_conversation", ABUSE),
        text("Aviso: no seguiré si continúan los insultos."),
        tool_use("end_conversation", ABUSE),
        text("Segundo aviso: deja de insultarme, por favor."),
        tool_use("end_conversation", ABUSE, text_before="Termino esta conversación ahora."),
    )


async def ended_thread(h: SlackHarness, user: str) -> tuple[str, dict[str, Any]]:
    script_abuse(h)
    root = h.ts()
    await h.mention(ABUSIVE, ts=root, user=user)
    await h.reply(ABUSIVE, thread_ts=root, user=user)
    await h.reply(ABUSIVE, thread_ts=root, user=user)
    closure = h.posts(thread_ts=root)[-1]
    assert is_closure(closure)
    return root, closure


def button_label(post: dict[str, Any]) -> str:
    [label] = [
        e["text"]["text"]
        for b in post["blocks"]
        for e in b.get("elements") or []
        if e.get("action_id") == ACTION_MISTAKE
    ]
    return str(label)


async def test_a_spanish_user_sees_the_spanish_closure_notice_button_form_and_reminder(
    harness: SlackHarness, slack_mock: MockSlack
) -> None:
    slack_mock.add_user(ESTEBAN, "esteban", locale="es-ES")
    root, closure = await ended_thread(harness, ESTEBAN)

    header = closure["blocks"][0]
    assert header["type"] == "header" and header["text"]["text"] == "Esta conversación ha terminado"
    assert ES("notice.reason_abuse") in closure["text"]
    assert ES("slack.hint_new") in closure["text"] and "/haven new" in closure["text"]
    assert button_label(closure) == "Este cierre fue un error"

    # The model was told, in the stored user message (not the system prompt, which stays one cache).
    request = harness.model_requests()[0]
    assert "[esteban · locale es-ES] " in str(request["messages"][0]["content"])
    assert "esteban" not in str(request["system"])

    # The feedback form of the button is in Spanish too (block actions carry no locale: users.info).
    conversation_id = closure["blocks"][-1]["elements"][0]["value"]
    message = {"ts": "1.000001", "thread_ts": root, "text": closure["text"], "blocks": closure["blocks"]}
    await harness.click(ACTION_MISTAKE, conversation_id, user=ESTEBAN, message=message)
    form = harness.last_view()
    assert form["callback_id"] == VIEW_FEEDBACK
    assert form["title"]["text"] == ES("slack.feedback_title")
    assert form["submit"]["text"] == ES("slack.feedback_submit")
    await harness.submit(form, "Era una broma", user=ESTEBAN)
    assert [e["text"] for e in harness.ephemerals(ESTEBAN)] == [ES("notice.feedback_thanks")]

    # Someone writing in the ended thread is reminded once, each in their own language.
    await harness.reply("¿hola?", thread_ts=root, user=ESTEBAN)
    await harness.reply("hello?", thread_ts=root, user=ALICE)
    reminder = harness.ephemerals(ESTEBAN)[-1]["text"]
    assert reminder.startswith("Esta conversación ha terminado, así que Haven no responderá aquí.")
    [english] = harness.ephemerals(ALICE)
    assert english["text"].startswith("This conversation has ended, so Haven won't reply here.")


async def test_help_is_in_the_persons_language(harness: SlackHarness, slack_mock: MockSlack) -> None:
    slack_mock.add_user(ESTEBAN, "esteban", locale="es-ES")
    await harness.command("help", user=ESTEBAN)
    await harness.command("help")
    spanish, english = harness.responses()
    assert spanish["text"] == ES("help.slack") and english["text"].startswith("*Haven* talks with you")


async def test_an_english_user_still_sees_english(harness: SlackHarness) -> None:
    _, closure = await ended_thread(harness, ALICE)
    assert closure["blocks"][0]["text"]["text"] == "This conversation has ended"
    assert "ended after repeated warnings" in closure["text"]
    assert button_label(closure) == MISTAKE_BUTTON


async def test_a_failed_users_info_falls_back_to_english_and_still_answers(
    harness: SlackHarness, slack_mock: MockSlack
) -> None:
    slack_mock.add_user(ESTEBAN, "esteban", locale="es-ES")
    slack_mock.fail("users.info", "ratelimited")
    _, closure = await ended_thread(harness, ESTEBAN)
    assert closure["blocks"][0]["text"]["text"] == "This conversation has ended"


async def test_the_public_posts_of_new_and_fork_are_in_the_starters_language(
    harness: SlackHarness, slack_mock: MockSlack
) -> None:
    """``/haven new``'s post and a fork's "Forked from" post speak the language of whoever made them."""
    slack_mock.add_user(ESTEBAN, "esteban", locale="es-ES")
    harness.anthropic.enqueue(text("¡Hola!"), text("Otra respuesta."))
    await harness.command("new ¿Qué cocino hoy?", user=ESTEBAN)
    header = harness.posts(top_level=True)[-1]
    assert header["text"] == f"<@{ESTEBAN}> inició una conversación con Haven:\n>¿Qué cocino hoy?"
    root = harness.slack.ts_of(header)

    await harness.shortcut(harness.message("¿Qué cocino hoy?", ts=root, user=ESTEBAN), user=ESTEBAN)
    empty = await harness.submit(harness.last_view(), "  ", user=ESTEBAN)
    assert json.loads(empty.body)["errors"] == {"text": "Escribe el mensaje desde el que continuar."}
    await harness.submit(harness.last_view(), "¿Y para cenar?", user=ESTEBAN)
    forked = harness.posts(top_level=True)[-1]
    link = harness.slack.permalink(header["channel"], root)
    assert forked["text"] == f"<@{ESTEBAN}> continúa desde <{link}|este mensaje>:\n>¿Y para cenar?"
