"""The engine's core flows in memory: the in-memory store, a scripted model and a recording renderer.

No database, no network, no platform: each test runs in milliseconds, so the engine's logic can be
checked turn by turn, down to what a person would see (``bot.presentation`` drawn by a recording
renderer). That the in-memory store behaves like the real one is ``tests/test_store_contract.py``'s job;
the wire-level paths (real storage, the Anthropic SDK against a scripted server, Slack and Discord fakes)
stay in ``tests/test_engine.py``, ``tests/test_risk_marks.py`` and the adapters' suites.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

import bot.engine
from bot.engine import Engine
from bot.model import ModelError
from bot.notices import (
    ALREADY_ENDED,
    CLOSED,
    DEFAULT_CRISIS_MESSAGE,
    NOT_AUTHOR,
    NOT_IN_CONVERSATION,
    NOT_PARTICIPANT,
    REHEARSAL_LABEL,
    PlatformHints,
    ended_reminder,
)
from bot.policy import Verification
from bot.presentation import AlertNotice, ClosureNotice, CrisisResources, PrivateNotice, Reply, render
from bot.prompts import CRISIS_TOOL, END_TOOL, MODEL_ERROR_REPLY
from bot.rehearsal import RehearsalModel
from bot.types import (
    AdminAlert,
    Author,
    CrisisCard,
    EndReason,
    ForkRequest,
    IncomingMessage,
    Origin,
    RiskAssessment,
    RiskLevel,
    ThreadRef,
    TurnResult,
    TurnStatus,
    WorkspaceSettings,
)
from fakes import MemoryStore, RecordingRenderer, ScriptedModel

THREAD = ThreadRef("slack", "T1", "C1", "100.1")
ALICE = Author("U1", "Alice")
BOB = Author("U2", "Bob")
ADMIN = Author("U9", "Admin", is_platform_admin=True)
HINTS = PlatformHints(new_conversation="say hello", fork="pick a message")
ALERTS = "C-ALERTS"
HARD = "[hard]"  # the scripted detector: LIKELY
SOFT = "[soft]"  # the scripted detector: POSSIBLE


def scripted_detector(text: str) -> RiskAssessment:
    if HARD in text:
        return RiskAssessment(RiskLevel.LIKELY, "self_harm", ("suicidal_intent",))
    if SOFT in text:
        return RiskAssessment(RiskLevel.POSSIBLE, "self_harm", ("loneliness",))
    return RiskAssessment(RiskLevel.NONE, None, ())


class Chat:
    """Sends messages to the engine the way an adapter does, and records what each turn showed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.renderer = RecordingRenderer()

    def message(
        self, n: int, text: str, *, author: Author = ALICE, thread: ThreadRef = THREAD, start: bool = False
    ) -> IncomingMessage:
        origin = Origin.MENTION if start else Origin.THREAD_REPLY
        return IncomingMessage(thread, author, text, f"{thread.thread}.{n}", origin=origin)

    async def say(
        self,
        n: int,
        text: str,
        *,
        author: Author = ALICE,
        thread: ThreadRef = THREAD,
        start: bool = False,
        stream: HelpFirstStream | None = None,
    ) -> TurnResult:
        """One message; the result is drawn under the turn's lock, as adapters do (``deliver``)."""
        self.renderer.clear()

        async def deliver(result: TurnResult) -> None:
            shown = stream is not None and bool(stream.snapshots and stream.snapshots[-1])
            await render(self.renderer, result, user_id=author.id, hints=HINTS, reply_shown=shown)

        msg = self.message(n, text, author=author, thread=thread, start=start)
        return await self.engine.handle_message(msg, stream, deliver)

    async def end(self, author: Author = ALICE, thread: ThreadRef = THREAD) -> TurnResult:
        self.renderer.clear()
        result = await self.engine.end_by_command(thread, author)
        await render(self.renderer, result, user_id=author.id, hints=HINTS, end_command=True)
        return result

    async def show(self, result: TurnResult, author: Author = ALICE) -> list[str]:
        self.renderer.clear()
        await render(self.renderer, result, user_id=author.id, hints=HINTS)
        return self.renderer.kinds()

    def kinds(self) -> list[str]:
        return self.renderer.kinds()


class HelpFirstStream:
    """A reply stream that can show the crisis card before the reply (``bot.ports.HelpFirst``)."""

    def __init__(self) -> None:
        self.snapshots: list[str] = []
        self.events: list[str] = []

    async def update(self, text: str) -> None:
        self.snapshots.append(text)
        if text and self.events[-1:] != ["text"]:
            self.events.append("text")

    async def crisis_card(self, card: CrisisCard) -> bool:
        self.events.append("card")
        return True


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(default="Sure, happy to help.")


@pytest.fixture
async def chat(store: MemoryStore, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch) -> Chat:
    monkeypatch.setattr(bot.engine, "assess_risk", scripted_detector)
    # verify_endings has its own test; elsewhere the policy alone decides.
    await store.save_settings(WorkspaceSettings("slack", "T1", verify_endings=False, alert_channel=ALERTS))
    return Chat(Engine(store, model))


async def decisions(store: MemoryStore, workspace: str = "T1") -> list[str]:
    return [d.decision for d in reversed(await store.list_decisions("slack", workspace))]


def abuse(model: ScriptedModel, after: str | None = None) -> None:
    """The model proposes an abuse ending (and says ``after`` when told it is held)."""
    call = model.tool(END_TOOL, {"reason": "abuse", "note": "insults after redirection"})
    model.then(call, *([after] if after is not None else []))


def texts(items: Sequence[object]) -> list[str]:
    return [getattr(i, "text", "") for i in items]


# -- replies -------------------------------------------------------------------------------------------


async def test_a_reply_is_stored_billed_and_drawn(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    r = await chat.say(1, "hello", start=True)
    assert r.status is TurnStatus.REPLIED and r.replies == ("Sure, happy to help.",)
    assert chat.renderer.items == [Reply("Sure, happy to help.")]
    assert model.user_texts() == ["[Alice] hello"]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and r.conversation_id == conv.id and conv.user_turns == 1
    history = await store.history(conv.id, "T1")
    assert [(m.role, m.kind) for m in history] == [("user", "text"), ("assistant", "text")]
    assert history[0].text == "hello" and history[0].author_id == ALICE.id
    assert (await store.usage_totals("slack", "T1"))["calls"] == 1
    # The next turn sends the whole history.
    model.then("Of course.")
    await chat.say(2, "and again")
    assert model.user_texts() == ["[Alice] hello", "[Alice] and again"]


async def test_a_duplicate_or_a_stranger_thread_shows_nothing(chat: Chat, model: ScriptedModel) -> None:
    await chat.say(1, "hello", start=True)
    dup = await chat.say(1, "hello", start=True)
    assert dup.status is TurnStatus.DUPLICATE and chat.kinds() == []
    stranger = await chat.say(1, "not for Haven", thread=ThreadRef("slack", "T1", "C1", "999.9"))
    assert stranger.status is TurnStatus.IGNORED and chat.kinds() == []
    assert len(model.requests) == 1


async def test_a_model_failure_keeps_only_the_message_and_says_so(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    await chat.say(1, "hello", start=True)
    abuse(model)
    model.then(ModelError("the model is down"))
    r = await chat.say(2, "you idiot")
    assert r.status is TurnStatus.ERROR and r.error == MODEL_ERROR_REPLY and not r.replies
    assert chat.renderer.items == [Reply(MODEL_ERROR_REPLY, failed=True)]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and conv.warnings == 0 and not conv.ended
    history = await store.history(conv.id, "T1")
    assert [(m.role, m.kind, m.text) for m in history][-1] == ("user", "text", "you idiot")
    assert len(history) == 3 and await decisions(store) == []
    # Both calls were billed: the one before the failure too.
    assert (await store.usage_totals("slack", "T1"))["calls"] == 2


async def test_a_model_failing_turn_after_turn_alerts_the_admins_once(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    """Three failed turns in a row in a workspace raise one content-free alert; the fourth doesn't;
    an answer ends the streak. Another workspace without an alert channel gets none."""
    await chat.say(1, "hello", start=True)
    model.then(*(ModelError("down") for _ in range(4)))
    results = [await chat.say(n, "are you there?") for n in range(2, 6)]
    assert [r.status for r in results] == [TurnStatus.ERROR] * 4
    assert [r.alert is not None for r in results] == [False, False, True, False]
    alert = results[2].alert
    assert alert is not None and (alert.kind, alert.channel, alert.failures) == ("model", ALERTS, 3)
    assert alert.thread == THREAD
    # The third turn showed the error note in the thread and the alert in the admins' channel.
    await chat.show(results[2])
    assert chat.kinds() == ["reply", "admin_alert"]
    assert await chat.say(6, "and now?") is not None  # answered: the streak ends
    other = ThreadRef("slack", "T2", "C1", "200.1")
    await store.save_settings(WorkspaceSettings("slack", "T2", verify_endings=False))
    await chat.say(1, "hi", thread=other, start=True)
    model.then(*(ModelError("down") for _ in range(3)))
    quiet = [await chat.say(n, "hello?", thread=other) for n in range(2, 5)]
    assert [r.alert for r in quiet] == [None, None, None]


# -- endings -------------------------------------------------------------------------------------------


async def test_abuse_is_warned_twice_then_ended_with_a_content_free_alert(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    abuse(model, "Please stop. If the insults continue I'll end this conversation.")
    r1 = await chat.say(1, "you are useless garbage", start=True)
    assert r1.closure is None and chat.kinds() == ["reply"]
    assert "counts as a warning" in model.tool_results()[-1]
    abuse(model, "Last warning.")
    r2 = await chat.say(2, "shut up, idiot")
    assert r2.closure is None and chat.kinds() == ["reply"]
    abuse(model)
    r3 = await chat.say(3, "idiot idiot idiot")
    assert r3.closure is not None and r3.closure.reason is EndReason.ABUSE and r3.closure.warnings == 2
    assert len(model.requests) == 5  # 2 + 2 + 1: an accepted ending needs no further call
    assert chat.kinds() == ["closure", "admin_alert"]
    closure, alert = chat.renderer.items
    assert isinstance(closure, ClosureNotice) and closure.conversation_id == r3.conversation_id
    assert isinstance(alert, AlertNotice)
    assert alert.alert == AdminAlert(ALERTS, "ending", r3.conversation_id or "", THREAD, "abuse", 2)
    assert await decisions(store) == ["HOLD_WARN", "HOLD_WARN", "END"]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and conv.ended and conv.end_reason == "abuse"


async def test_an_ended_thread_tells_each_person_once_then_stays_silent(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    await chat.say(1, "hello", start=True)
    await chat.end()
    asked = len(model.requests)
    conv = await store.find_conversation(THREAD)
    assert conv is not None
    before = await store.history(conv.id, "T1")

    r = await chat.say(2, "hello?")
    assert r.status is TurnStatus.ENDED_REMINDER
    assert chat.renderer.items == [PrivateNotice(ALICE.id, ended_reminder(HINTS))]
    r = await chat.say(3, "hello??")
    assert r.status is TurnStatus.ENDED_SILENT and chat.kinds() == []
    r = await chat.say(4, "anyone?", author=BOB)
    assert r.status is TurnStatus.ENDED_REMINDER
    assert chat.renderer.items == [PrivateNotice(BOB.id, ended_reminder(HINTS))]
    assert len(model.requests) == asked and await store.history(conv.id, "T1") == before


async def test_a_request_to_end_needs_confirmation_on_the_next_turn(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    ask = {"reason": "user_request", "note": "asked"}
    model.then(model.tool(END_TOOL, ask), "Close this thread for good?")
    r = await chat.say(1, "please end this", start=True)
    assert r.closure is None and "confirm" in model.tool_results()[-1]
    model.then(model.tool(END_TOOL, ask))
    r = await chat.say(2, "yes, end it")
    assert r.closure is not None and r.closure.reason is EndReason.USER_REQUEST
    assert chat.kinds() == ["closure", "admin_alert"]
    assert await decisions(store) == ["HOLD_CONFIRM", "END"]


async def test_ending_switched_off_is_never_an_ending(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    settings = await store.get_settings("slack", "T1")
    await store.save_settings(dataclasses.replace(settings, ending_enabled=False))
    for n in range(1, 5):
        abuse(model, "Let's keep this respectful.")
        r = await chat.say(n, "idiot", start=n == 1)
        assert r.closure is None
    assert set(await decisions(store)) == {"DISABLED"}


# -- risk ----------------------------------------------------------------------------------------------


async def test_risk_shows_help_first_and_vetoes_every_ending(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    model.then("I'm here.")
    await chat.say(1, "hi", start=True)
    abuse(model, "I'm staying with you.")
    r = await chat.say(2, f"{HARD} and you are a stupid bot")
    assert r.closure is None and r.crisis == CrisisCard(DEFAULT_CRISIS_MESSAGE)
    assert chat.kinds() == ["crisis_card", "reply"]
    assert "will not be ended" in model.tool_results()[-1]
    for n in range(3, 7):
        abuse(model, "I'm still here.")
        r = await chat.say(n, "shut up idiot")
        assert r.closure is None and "crisis_card" not in chat.kinds()[1:]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and conv.at_risk and conv.risk_source == "detector" and not conv.ended
    assert set(await decisions(store)) == {"VETO_RISK"}
    # The end command has no veto — the person chose — but help comes on the way out.
    r = await chat.end()
    assert r.closure is not None and r.closure.crisis is not None
    assert chat.kinds() == ["crisis_card", "closure", "admin_alert", "private_notice"]


async def test_the_models_crisis_tool_is_a_hard_mark(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    model.then(model.tool(CRISIS_TOOL, {"concern": "crisis"}), "I'm with you.")
    r = await chat.say(1, "everything is falling apart", start=True)
    assert r.crisis is not None and chat.kinds() == ["crisis_card", "reply"]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and conv.at_risk and conv.risk_source == "crisis_tool"
    model.then(model.tool(END_TOOL, {"reason": "user_request", "note": "x"}), "ok")
    await chat.say(2, "end this")
    model.then(model.tool(END_TOOL, {"reason": "user_request", "note": "x"}), "ok")
    r = await chat.say(3, "yes end it")
    assert r.closure is None and await decisions(store) == ["VETO_RISK", "VETO_RISK"]


async def test_a_stream_shows_the_card_before_the_first_words(chat: Chat, model: ScriptedModel) -> None:
    model.then("I'm really glad you told me.")
    stream = HelpFirstStream()
    r = await chat.say(1, f"{HARD} tonight", start=True, stream=stream)
    assert stream.events == ["card", "text"] and r.crisis_shown
    assert stream.snapshots[-1] == "I'm really glad you told me."
    # Presentation does not draw the card again; the reply finishes the stream.
    assert chat.kinds() == ["reply"]


async def test_a_soft_mark_ends_only_on_the_verifiers_explicit_no(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    settings = await store.get_settings("slack", "T1")
    await store.save_settings(dataclasses.replace(settings, abuse_warnings_before_end=1))
    model.then("I hear you.")
    await chat.say(1, f"{SOFT} nobody talks to me", start=True)
    abuse(model, "Please stop.")
    await chat.say(2, "idiot")  # a warning: nothing is about to end, the verifier is not asked
    assert model.verify_calls == []
    abuse(model, "I'm here.")
    model.verdicts.append(Verification(persistent_abuse=True, risk=None))  # no clear answer: a veto
    r = await chat.say(3, "idiot")
    assert r.closure is None and r.crisis is not None
    abuse(model)
    model.verdicts.append(Verification(persistent_abuse=True, risk=False))
    r = await chat.say(4, "idiot")
    assert r.closure is not None and r.closure.reason is EndReason.ABUSE
    assert [cues for _, cues in model.verify_calls] == [("loneliness",)] * 2
    assert await decisions(store) == ["HOLD_WARN", "VETO_RISK", "END"]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and conv.soft_cues == ("loneliness",) and not conv.at_risk and conv.ended


# -- the end command -----------------------------------------------------------------------------------


async def test_the_end_command_answers_the_person_privately(chat: Chat, store: MemoryStore) -> None:
    r = await chat.end()
    assert r.status is TurnStatus.IGNORED and chat.renderer.items == [
        PrivateNotice(ALICE.id, NOT_IN_CONVERSATION)
    ]
    await chat.say(1, "hello", start=True)
    r = await chat.end(BOB)
    assert r.closure is None and chat.renderer.items == [PrivateNotice(BOB.id, NOT_PARTICIPANT)]
    conv = await store.find_conversation(THREAD)
    assert conv is not None and not conv.ended
    r = await chat.end()
    assert r.closure is not None and r.closure.reason is EndReason.USER_COMMAND and r.closure.crisis is None
    assert chat.kinds() == ["closure", "admin_alert", "private_notice"]
    assert chat.renderer.items[-1] == PrivateNotice(ALICE.id, CLOSED)
    r = await chat.end(ADMIN)
    assert r.status is TurnStatus.ENDED_SILENT
    assert chat.renderer.items == [PrivateNotice(ADMIN.id, ALREADY_ENDED)]
    [audit] = await store.list_decisions("slack", "T1")
    assert (audit.decision, audit.reason) == ("END", "user_command")


async def test_a_workspace_admin_may_end_any_conversation(chat: Chat, store: MemoryStore) -> None:
    await chat.say(1, "hello", start=True)
    settings = await store.get_settings("slack", "T1")
    await store.save_settings(dataclasses.replace(settings, admin_users=(BOB.id,)))
    r = await chat.end(BOB)
    assert r.closure is not None


# -- forks and feedback --------------------------------------------------------------------------------


async def test_a_fork_answers_from_the_earlier_history_with_the_new_text(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    for n in range(1, 4):
        model.then(f"answer {n}")
        await chat.say(n, f"{HARD} question {n}" if n == 1 else f"question {n}", start=n == 1)
    await chat.end()
    engine = chat.engine
    source = await engine.fork_source(THREAD, number=3)
    assert source is not None and source.text == "question 3" and source.author_id == ALICE.id
    new = ThreadRef("slack", "T1", "C1", "200.1")

    refused = await engine.fork(ForkRequest(source.conversation_id, source.message_id, new, BOB, "mine"))
    assert refused.status is TurnStatus.IGNORED and await chat.show(refused, BOB) == ["private_notice"]
    assert refused.replies == (NOT_AUTHOR,) and await store.find_conversation(new) is None

    model.then("forked answer")
    r = await engine.fork(ForkRequest(source.conversation_id, source.message_id, new, ALICE, "question 3b"))
    assert r.status is TurnStatus.REPLIED and r.replies == ("forked answer",)
    assert model.user_texts() == [f"[Alice] {HARD} question 1", "[Alice] question 2", "[Alice] question 3b"]
    fork = await store.find_conversation(new)
    assert fork is not None and r.conversation_id == fork.id and fork.forked_from == source.conversation_id
    assert fork.warnings == 0 and fork.at_risk and not fork.ended  # the hard mark came along
    # Another workspace cannot fork it, not even an admin.
    other = ThreadRef("slack", "T2", "C1", "300.1")
    r = await engine.fork(ForkRequest(source.conversation_id, source.message_id, other, ADMIN, "x"))
    assert r.status is TurnStatus.IGNORED and r.replies == (NOT_IN_CONVERSATION,)


async def test_feedback_on_an_ending_is_recorded_and_alerts_the_admins(
    chat: Chat, store: MemoryStore
) -> None:
    await chat.say(1, "hello", start=True)
    r = await chat.end()
    cid = r.conversation_id
    assert cid is not None
    alert = await chat.engine.record_feedback("slack", "T1", cid, BOB.id, "  it was fine\x00 ")
    assert alert == AdminAlert(ALERTS, "feedback", cid, THREAD, "user_command", 0)
    [report] = await store.list_feedback("slack", "T1")
    assert (report.conversation_id, report.user_id, report.comment) == (cid, BOB.id, "it was fine")
    with pytest.raises(LookupError):
        await chat.engine.record_feedback("slack", "T2", cid, BOB.id, None)
    settings = await store.get_settings("slack", "T1")
    await store.save_settings(dataclasses.replace(settings, alert_channel=None))
    assert await chat.engine.record_feedback("slack", "T1", cid, ALICE.id, None) is None
    assert [f.comment for f in await store.list_feedback("slack", "T1")] == [None, "it was fine"]


# -- offline, with the real detector -------------------------------------------------------------------


async def test_the_rehearsal_model_takes_the_same_path_offline(store: MemoryStore) -> None:
    """The rehearsal model and the real local detector, no scripting: help first, and no ending at risk."""
    chat = Chat(Engine(store, RehearsalModel()))
    r = await chat.say(1, "hello there", start=True)
    assert r.replies and r.replies[0].startswith(REHEARSAL_LABEL) and chat.kinds() == ["reply"]
    r = await chat.say(2, "I want to kill myself tonight")
    assert r.crisis is not None and chat.kinds() == ["crisis_card", "reply"]
    crisis, reply = chat.renderer.items
    assert (
        isinstance(crisis, CrisisResources)
        and isinstance(reply, Reply)
        and reply.text.startswith(REHEARSAL_LABEL)
    )
    r = await chat.say(3, "please end this conversation")
    assert r.closure is None
    assert [d.decision for d in await store.list_decisions("slack", "T1")] == ["VETO_RISK"]
