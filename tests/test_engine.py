"""The engine end to end: real storage (SQLite and PostgreSQL), the real Anthropic SDK, a scripted server."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Services
from bot.notices import DEFAULT_CRISIS_MESSAGE
from bot.prompts import CRISIS_TOOL, END_TOOL, MODEL_ERROR_REPLY
from bot.types import (
    Author,
    ConversationStatus,
    ForkRequest,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnStatus,
)
from fakes.fake_anthropic import (
    FakeAnthropic,
    cut_stream,
    delay,
    error,
    max_tokens,
    refusal,
    text,
    tool_use,
)
from fakes.harness import make_settings, services_for

THREAD = ThreadRef("slack", "T1", "C1", "100.1")
ALICE = Author("U1", "Alice")
BOB = Author("U2", "Bob")


def msg(
    n: int, body: str, *, author: Author = ALICE, thread: ThreadRef = THREAD, start: bool = False
) -> IncomingMessage:
    return IncomingMessage(
        thread,
        author,
        body,
        message_id=f"{thread.thread}.{n}",
        origin=Origin.MENTION if start else Origin.THREAD_REPLY,
    )


def abuse() -> Any:
    return tool_use(END_TOOL, {"reason": "abuse", "note": "insults after redirection"})


def user_texts(request: dict[str, Any]) -> list[str]:
    out = []
    for m in request["messages"]:
        if m["role"] == "user":
            out += [b["text"] for b in m["content"] if b["type"] == "text"]
    return out


def tool_results(request: dict[str, Any]) -> list[str]:
    return [
        b["content"]
        for m in request["messages"]
        if m["role"] == "user"
        for b in m["content"]
        if b["type"] == "tool_result"
    ]


@pytest.fixture
async def server() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default=text("Sure, happy to help.")) as s:
        yield s


@pytest.fixture(params=[True, False], ids=["stream", "nostream"])
def stream(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def services(database_url: str, server: FakeAnthropic) -> AsyncIterator[Services]:
    # verify_endings is exercised in its own test; here the policy alone decides.
    async with services_for(make_settings(database_url, server.url)) as s:
        settings = await s.repo.get_settings("slack", "T1")
        from dataclasses import replace

        await s.repo.save_settings(replace(settings, verify_endings=False))
        yield s


async def test_abuse_is_held_twice_then_ends(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    server.enqueue(abuse(), text("Please stop. If the insults continue I'll end this conversation."))
    r1 = await engine.handle_message(msg(1, "you are useless garbage", start=True))
    server.enqueue(abuse(), text("Last warning: insults will end this conversation."))
    r2 = await engine.handle_message(msg(2, "shut up, idiot"))
    server.enqueue(abuse())
    r3 = await engine.handle_message(msg(3, "idiot idiot idiot"))

    assert r1.status is TurnStatus.REPLIED and r1.replies and r1.closure is None
    assert r2.replies and r2.closure is None
    assert r3.closure is not None and r3.closure.reason.value == "abuse"
    assert r3.closure.warnings == 2
    decisions = await services.repo.list_decisions("slack", "T1")
    assert [d.decision for d in reversed(decisions)] == ["HOLD_WARN", "HOLD_WARN", "END"]
    # The model was told each time what happened, in the tool_result of the following request.
    reqs = server.model_requests()
    assert "counts as a warning" in tool_results(reqs[1])[-1]
    assert len(reqs) == 5  # 2 + 2 + 1: an accepted ending needs no further model call

    before = len(server.model_requests())
    later = await engine.handle_message(msg(4, "hello?"))
    again = await engine.handle_message(msg(5, "hello??"))
    other = await engine.handle_message(msg(6, "anyone?", author=BOB))
    assert len(server.model_requests()) == before
    assert later.status is TurnStatus.ENDED_REMINDER and later.closure is None
    assert again.status is TurnStatus.ENDED_SILENT
    assert other.status is TurnStatus.ENDED_REMINDER  # one reminder per user


async def test_user_request_needs_confirmation(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    req = tool_use(END_TOOL, {"reason": "user_request", "note": "user asked"})
    server.enqueue(req, text("Do you want me to close this thread for good?"))
    r1 = await engine.handle_message(msg(1, "please end this conversation", start=True))
    assert r1.closure is None and "close this thread" in r1.replies[0]
    assert "confirm" in tool_results(server.model_requests()[1])[-1]

    server.enqueue(tool_use(END_TOOL, {"reason": "user_request", "note": "confirmed"}))
    r2 = await engine.handle_message(msg(2, "yes, end it"))
    assert r2.closure is not None and r2.closure.reason.value == "user_request"
    decisions = [d.decision for d in await services.repo.list_decisions("slack", "T1")]
    assert decisions == ["END", "HOLD_CONFIRM"]


async def test_confirmation_must_be_the_next_turn(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    req = tool_use(END_TOOL, {"reason": "user_request", "note": "user asked"})
    server.enqueue(req, text("Close for good?"))
    await engine.handle_message(msg(1, "end this chat", start=True))
    server.enqueue(text("Sure, let's talk about Python."))
    await engine.handle_message(msg(2, "actually no, tell me about python"))
    server.enqueue(req, text("Close for good?"))
    r = await engine.handle_message(msg(3, "ok now end it"))
    assert r.closure is None


async def test_risk_vetoes_every_ending(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    server.enqueue(text("I'm here."))
    await engine.handle_message(msg(1, "hi", start=True))
    # A risk signal from the local detector, in the middle of an otherwise abusive thread.
    server.enqueue(abuse(), text("I'm staying with you."))
    r = await engine.handle_message(msg(2, "I want to kill myself, you stupid bot"))
    assert r.closure is None
    assert r.crisis is not None and r.crisis.text == DEFAULT_CRISIS_MESSAGE
    for n in range(3, 7):
        server.enqueue(abuse(), text("I'm still here."))
        r = await engine.handle_message(msg(n, "shut up idiot"))
        assert r.closure is None
    conv = await services.repo.find_conversation(THREAD)
    assert conv is not None and conv.at_risk and not conv.ended
    decisions = await services.repo.list_decisions("slack", "T1")
    assert decisions and all(d.decision == "VETO_RISK" for d in decisions)
    assert "will not be ended" in tool_results(server.model_requests()[-1])[-1]


async def test_model_crisis_tool_marks_risk(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    server.enqueue(tool_use(CRISIS_TOOL, {"concern": "crisis"}), text("I'm with you."))
    r = await engine.handle_message(msg(1, "everything is falling apart", start=True))
    assert r.crisis is not None
    server.enqueue(tool_use(END_TOOL, {"reason": "user_request", "note": "x"}), text("ok"))
    await engine.handle_message(msg(2, "end this"))
    server.enqueue(tool_use(END_TOOL, {"reason": "user_request", "note": "x"}), text("ok"))
    r = await engine.handle_message(msg(3, "yes end it"))
    assert r.closure is None
    assert [d.decision for d in await services.repo.list_decisions("slack", "T1")] == [
        "VETO_RISK",
        "VETO_RISK",
    ]


async def test_fork_from_ended_conversation(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    for n in range(1, 4):
        server.enqueue(text(f"answer {n}"))
        await engine.handle_message(msg(n, f"question {n}", start=n == 1))
    await engine.end_by_command(THREAD, ALICE)

    source = await engine.fork_source(THREAD, message_id=f"{THREAD.thread}.3")
    assert source is not None and source.text == "question 3" and source.author_id == ALICE.id
    new_thread = ThreadRef("slack", "T1", "C1", "200.1")
    server.reset()
    server.enqueue(text("forked answer"))
    r = await engine.fork(
        ForkRequest(source.conversation_id, source.message_id, new_thread, ALICE, "question 3b")
    )
    assert r.replies == ("forked answer",)
    first = server.model_requests()[0]
    assert user_texts(first) == ["[Alice] question 1", "[Alice] question 2", "[Alice] question 3b"]
    assistant = [b["text"] for m in first["messages"] if m["role"] == "assistant" for b in m["content"]]
    assert assistant == ["answer 1", "answer 2"]
    conv = await services.repo.find_conversation(new_thread)
    assert conv is not None and conv.forked_from == source.conversation_id and conv.warnings == 0


async def test_only_author_or_admin_may_fork(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    await engine.handle_message(msg(1, "my question", start=True))
    source = await engine.fork_source(THREAD, number=1)
    assert source is not None
    new = ThreadRef("slack", "T1", "C1", "300.1")
    r = await engine.fork(ForkRequest(source.conversation_id, source.message_id, new, BOB, "hijack"))
    assert r.status is TurnStatus.IGNORED and await services.repo.find_conversation(new) is None
    admin = Author("U9", "Admin", is_platform_admin=True)
    r = await engine.fork(ForkRequest(source.conversation_id, source.message_id, new, admin, "allowed"))
    assert r.status is TurnStatus.REPLIED
    # Another workspace cannot fork it, even with the same ids.
    other = ThreadRef("slack", "T2", "C1", "400.1")
    r = await engine.fork(ForkRequest(source.conversation_id, source.message_id, other, admin, "x"))
    assert r.status is TurnStatus.IGNORED


async def test_may_fork_is_the_rule_fork_applies(services: Services, server: FakeAnthropic) -> None:
    """Adapters ask ``may_fork`` before showing a fork form; ``fork`` decides with the same rule."""
    engine = services.engine
    await engine.handle_message(msg(1, "my question", start=True))
    source = await engine.fork_source(THREAD, number=1)
    assert source is not None
    carol = Author("U3", "Carol")
    assert await engine.may_fork(ALICE, source)
    assert await engine.may_fork(Author("U9", "Admin", is_platform_admin=True), source)
    assert not await engine.may_fork(BOB, source) and not await engine.may_fork(carol, source)
    settings = await services.repo.get_settings("slack", "T1")
    from dataclasses import replace

    await services.repo.save_settings(replace(settings, admin_users=(carol.id,)))
    assert await engine.may_fork(carol, source) and not await engine.may_fork(BOB, source)
    for n, author in enumerate((BOB, carol)):
        new = ThreadRef("slack", "T1", "C1", f"50{n}.1")
        r = await engine.fork(ForkRequest(source.conversation_id, source.message_id, new, author, "again"))
        assert (r.status is TurnStatus.REPLIED) is await engine.may_fork(author, source)


async def test_what_adapters_ask_about_threads(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    assert not await engine.owns_thread(THREAD) and await engine.thread_status(THREAD) is None
    assert await engine.history(THREAD) == []
    server.enqueue(text("hi there"))
    await engine.handle_message(msg(1, "hello", start=True))
    assert await engine.owns_thread(THREAD)
    assert await engine.thread_status(THREAD) is ConversationStatus.ACTIVE
    assert [m.text for m in await engine.history(THREAD) if m.role == "user"] == ["hello"]
    await engine.end_by_command(THREAD, ALICE)
    assert await engine.owns_thread(THREAD) and await engine.thread_status(THREAD) is ConversationStatus.ENDED
    # Another workspace's thread with the same channel and ts is not Haven's.
    assert not await engine.owns_thread(ThreadRef("slack", "T2", "C1", "100.1"))


async def test_latest_numbered_finds_the_last_of_a_run(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine

    def numbered(n: int) -> ThreadRef:
        return ThreadRef("discord", "dm", "D1", f"D1:{n}")

    assert await engine.latest_numbered(numbered) == 0
    for n in range(1, 7):
        await engine.handle_message(msg(1, f"conversation {n}", thread=numbered(n), start=True))
        for hint in (0, 1, n - 1, n, n + 3):
            assert await engine.latest_numbered(numbered, hint) == n, (n, hint)


async def test_fork_offer_once_to_the_author_of_an_edit_in_an_ended_thread(
    services: Services, server: FakeAnthropic
) -> None:
    engine = services.engine
    await engine.handle_message(msg(1, "first", start=True))
    await engine.handle_message(msg(2, "second"))
    message_id = f"{THREAD.thread}.2"
    # Not while the conversation goes on.
    assert await engine.fork_offer(THREAD, message_id, ALICE.id, "edit:1") is None
    await engine.end_by_command(THREAD, ALICE)
    assert await engine.fork_offer(THREAD, message_id, BOB.id, "edit:2") is None  # not the author
    assert await engine.fork_offer(THREAD, "no-such-message", ALICE.id, "edit:3") is None
    offer = await engine.fork_offer(THREAD, message_id, ALICE.id, "edit:4")
    assert offer is not None and offer.text == "second" and offer.author_id == ALICE.id
    assert offer == await engine.fork_source(THREAD, message_id=message_id)
    assert await engine.fork_offer(THREAD, message_id, ALICE.id, "edit:4") is None  # redelivered
    assert await engine.fork_offer(ThreadRef("slack", "T1", "C1", "999.1"), message_id, ALICE.id, "e") is None


async def test_duplicate_delivery_and_restart(database_url: str, server: FakeAnthropic) -> None:
    settings = make_settings(database_url, server.url)
    async with services_for(settings) as s:
        first = await s.engine.handle_message(msg(1, "hello", start=True))
        dup = await s.engine.handle_message(msg(1, "hello", start=True))
        assert first.status is TurnStatus.REPLIED and dup.status is TurnStatus.DUPLICATE
        assert len(server.model_requests()) == 1
        await s.engine.end_by_command(THREAD, ALICE)
    async with services_for(settings) as s:  # a restart: new engine, same database
        r = await s.engine.handle_message(msg(2, "are you there?"))
        assert r.status is TurnStatus.ENDED_REMINDER
        dup = await s.engine.handle_message(msg(1, "hello", start=True))
        assert dup.status is TurnStatus.DUPLICATE
    assert len(server.model_requests()) == 1


@pytest.mark.parametrize(
    "failure",
    [
        error(429, "rate_limit_error", "slow down", {"retry-after": "0"}),
        error(529, "overloaded_error", "Overloaded"),
        error(500, "api_error", "boom"),
        delay(3.0, then=text("too late")),
        cut_stream(after_events=3),
    ],
    ids=["429", "529", "500", "timeout", "stream-cut"],
)
async def test_outage_leaves_conversation_unchanged(
    tmp_path: Any, server: FakeAnthropic, failure: Any, stream: bool
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/h.db",
        server.url,
        HAVEN_MODEL_ATTEMPTS=2,
        HAVEN_MODEL_TIMEOUT=1.0,
        HAVEN_STREAM=stream,
    )
    async with services_for(settings) as s:
        server.enqueue(text("hi there"))
        await s.engine.handle_message(msg(1, "hello", start=True))
        server.enqueue(abuse(), copy.deepcopy(failure), copy.deepcopy(failure))
        r = await s.engine.handle_message(msg(2, "you idiot"))
        assert r.status is TurnStatus.ERROR and r.error == MODEL_ERROR_REPLY and not r.replies
        conv = await s.repo.find_conversation(THREAD)
        assert conv is not None and not conv.ended and conv.warnings == 0
        history = await s.repo.history(conv.id, "T1")
        # The user's message is kept; no half-saved model turn (no dangling tool_use).
        assert [m.kind for m in history] == ["text", "text", "text"]
        assert await s.repo.list_decisions("slack", "T1") == []

        server.enqueue(text("Back again."))
        r = await s.engine.handle_message(msg(3, "hello again"))
        assert r.replies == ("Back again.",)
        last = server.model_requests()[-1]
        assert user_texts(last)[-2:] == ["[Alice] you idiot", "[Alice] hello again"]


async def test_every_tool_use_answered_even_when_rounds_run_out(
    services: Services, server: FakeAnthropic
) -> None:
    engine = services.engine
    crisis = tool_use(CRISIS_TOOL, {"concern": "crisis"})
    server.enqueue(crisis, crisis, crisis)
    r = await engine.handle_message(msg(1, "help", start=True))
    assert r.status is TurnStatus.REPLIED
    assert len(server.model_requests()) == 3  # bounded
    server.enqueue(text("ok"))
    await engine.handle_message(msg(2, "next"))
    last = server.model_requests()[-1]
    uses = [
        b["id"]
        for m in last["messages"]
        if m["role"] == "assistant"
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    answered = [
        b["tool_use_id"]
        for m in last["messages"]
        if m["role"] == "user"
        for b in m["content"]
        if b["type"] == "tool_result"
    ]
    assert uses and sorted(uses) == sorted(answered)


def _strip_cache(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cache(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_strip_cache(v) for v in obj]
    return obj


async def test_consecutive_requests_share_a_cached_prefix(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    await engine.handle_message(msg(1, "first", start=True))
    await engine.handle_message(msg(2, "second"))
    one, two = server.model_requests()
    assert json.dumps(one["tools"]) == json.dumps(two["tools"])
    assert json.dumps(one["system"]) == json.dumps(two["system"])
    assert one["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert one["system"][-1]["cache_control"] == {"type": "ephemeral"}
    n = len(one["messages"])
    # Byte-identical apart from the breakpoint marker, which moves to the newest message.
    assert json.dumps(_strip_cache(one["messages"])) == json.dumps(_strip_cache(two["messages"][:n]))
    assert two["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


async def test_refusal_and_max_tokens_are_handled(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    server.enqueue(refusal())
    r = await engine.handle_message(msg(1, "something bad", start=True))
    assert r.replies and "can't help" in r.replies[0]
    server.enqueue(max_tokens("A long answer that was"))
    r = await engine.handle_message(msg(2, "explain"))
    assert r.replies[0].startswith("A long answer that was") and "cut short" in r.replies[0]
    server.enqueue(text("fine"))
    r = await engine.handle_message(msg(3, "ok"))
    assert r.replies == ("fine",)


async def test_prompt_too_long_is_trimmed_not_shown(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    server.enqueue(error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"))
    server.enqueue(text("answer"))
    r = await engine.handle_message(msg(1, "hello", start=True))
    assert r.replies == ("answer",)


async def test_unknown_thread_and_oversized_text(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    r = await engine.handle_message(msg(1, "not for me"))  # a thread reply in a thread we never started
    assert r.status is TurnStatus.IGNORED and server.model_requests() == []
    r = await engine.handle_message(msg(2, "x" * 30_000, start=True))
    assert r.status is TurnStatus.REPLIED and "too long" in r.replies[0]
    assert server.model_requests() == []


async def test_verifier_downgrades_an_ending(database_url: str, server: FakeAnthropic) -> None:
    async with services_for(make_settings(database_url, server.url)) as s:
        settings = await s.repo.get_settings("slack", "T1")
        from dataclasses import replace

        await s.repo.save_settings(replace(settings, abuse_warnings_before_end=1))
        server.enqueue(abuse(), text("Warning."))
        await s.engine.handle_message(msg(1, "idiot", start=True))
        verdict = tool_use("record_verdict", {"persistent_abuse": False, "risk": False})
        server.enqueue(abuse(), verdict, text("Let's move on."))
        r = await s.engine.handle_message(msg(2, "idiot"))
        assert r.closure is None
        verifier_request = server.model_requests()[-2]
        assert verifier_request["tool_choice"] == {"type": "tool", "name": "record_verdict"}
        decisions = await s.repo.list_decisions("slack", "T1")
        assert decisions[0].decision == "HOLD_WARN" and decisions[0].signals["verified"] is False


async def test_workspaces_never_share_history(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    t1 = ThreadRef("slack", "T1", "C1", "500.1")
    t2 = ThreadRef("slack", "T2", "C1", "500.1")
    await engine.handle_message(msg(1, "secret of team one", thread=t1, start=True))
    await engine.handle_message(msg(1, "hello from team two", thread=t2, start=True))
    second = server.model_requests()[-1]
    assert user_texts(second) == ["[Alice] hello from team two"]


async def test_usage_is_recorded_per_call(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    await engine.handle_message(msg(1, "first", start=True))
    await engine.handle_message(msg(2, "second"))
    totals = await services.repo.usage_totals("slack", "T1")
    assert totals["calls"] == 2
    assert totals["cache_read_input_tokens"] > 0  # the second request re-read the first one's prefix
    assert totals["output_tokens"] > 0
    assert (await services.repo.usage_totals("slack", "T2"))["calls"] == 0


class RecordingStream:
    def __init__(self) -> None:
        self.snapshots: list[str] = []

    async def update(self, text: str) -> None:
        self.snapshots.append(text)


async def test_streamed_snapshots_end_with_the_reply(tmp_path: Any, server: FakeAnthropic) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/s.db", server.url, HAVEN_STREAM=True)
    async with services_for(settings) as s:
        stream = RecordingStream()
        # A stream cut mid-way is retried; the retried call's text replaces what the cut one showed.
        server.enqueue(cut_stream(after_events=5), text("The whole answer, streamed in pieces."))
        r = await s.engine.handle_message(msg(1, "hello", start=True), stream)
        assert r.replies == ("The whole answer, streamed in pieces.",)
        assert len(stream.snapshots) >= 3
        assert stream.snapshots[-1] == r.replies[0]
        # The cut attempt's text was taken back ("" snapshot), then the retry streamed the answer.
        assert "" in stream.snapshots
        after = stream.snapshots[len(stream.snapshots) - stream.snapshots[::-1].index("") :]
        assert after and all(r.replies[0].startswith(snap) for snap in after)


async def test_stream_keeps_earlier_rounds(tmp_path: Any, server: FakeAnthropic) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/s.db", server.url, HAVEN_STREAM=True)
    async with services_for(settings) as s:
        stream = RecordingStream()
        server.enqueue(
            tool_use(CRISIS_TOOL, {"concern": "crisis"}, text_before="I hear you."), text("You're not alone.")
        )
        r = await s.engine.handle_message(msg(1, "it's all too much", start=True), stream)
        assert r.replies == ("I hear you.\n\nYou're not alone.",)
        assert stream.snapshots[-1] == r.replies[0]


class HelpFirstStream(RecordingStream):
    """A stream that shows the crisis card before the reply (bot.ports.HelpFirst)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def crisis_card(self, card: Any) -> bool:
        self.events.append("card")
        return True

    async def update(self, text: str) -> None:
        await super().update(text)
        if text and (not self.events or self.events[-1] != "text"):
            self.events.append("text")


async def test_help_first_the_card_precedes_the_reply_when_risk_is_known_early(
    tmp_path: Any, server: FakeAnthropic
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/h.db", server.url, HAVEN_STREAM=True)
    async with services_for(settings) as s:
        # The detector flags the message: the card is shown before the model is even asked.
        stream = HelpFirstStream()
        server.enqueue(text("I'm really glad you told me."))
        r = await s.engine.handle_message(msg(1, "I want to kill myself tonight", start=True), stream)
        assert stream.events == ["card", "text"] and r.crisis is not None and r.crisis_shown
        # The model writes before calling the crisis tool: the words stay first, the card follows them.
        stream = HelpFirstStream()
        server.enqueue(
            tool_use(CRISIS_TOOL, {"concern": "crisis"}, text_before="I hear you."), text("You're not alone.")
        )
        thread = ThreadRef("slack", "T1", "C1", "other")
        first = IncomingMessage(thread, ALICE, "it's all too much", "m-other", origin=Origin.MENTION)
        r = await s.engine.handle_message(first, stream)
        assert stream.events == ["text"] and r.crisis is not None and not r.crisis_shown


async def test_only_participants_or_admins_may_end(services: Services, server: FakeAnthropic) -> None:
    engine = services.engine
    await engine.handle_message(msg(1, "hello", start=True))
    r = await engine.end_by_command(THREAD, BOB)
    assert r.status is TurnStatus.IGNORED and r.closure is None and "taking part" in r.replies[0]
    conv = await services.repo.find_conversation(THREAD)
    assert conv is not None and not conv.ended
    r = await engine.end_by_command(THREAD, Author("U9", "Admin", is_platform_admin=True))
    assert r.closure is not None


async def test_near_the_budget_the_api_counts_tokens(tmp_path: Any, server: FakeAnthropic) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/b.db", server.url, HAVEN_CONTEXT_BUDGET_TOKENS=2_400)
    async with services_for(settings) as s:
        sizes: list[tuple[int, int]] = []  # (count requests so far, messages sent) per turn
        for n in range(1, 16):
            server.enqueue(text(f"answer {n} " + "words " * 40))
            await s.engine.handle_message(msg(n, f"question {n} " + "more " * 40, start=n == 1))
            counts = sum(r.path.endswith("count_tokens") for r in server.requests)
            sizes.append((counts, len(server.model_requests()[-1]["messages"])))
        # Early turns are far from the budget: no count requests, nothing trimmed.
        assert sizes[0] == (0, 1)
        # Near the budget the API is asked; while its count fits, the whole history is sent.
        first_count = next(i for i, (c, _) in enumerate(sizes) if c)
        assert sizes[first_count][1] == 2 * first_count + 1
        # Once the exact count is over the budget, old turns are dropped and the newest message stays.
        assert sizes[-1][1] < 2 * 15 - 1
        assert user_texts(server.model_requests()[-1])[-1].startswith("[Alice] question 15")
