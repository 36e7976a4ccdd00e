"""Hard and soft risk signals in the ending policy, through the engine and real storage.

A *hard* signal (the local detector at LIKELY, the model's share_crisis_resources, the verifier answering
risk) vetoes every ending for good. A *soft* mark (the detector at POSSIBLE) lets an ending through only
when the verifier, told which cue names fired, explicitly answers "no risk".

The first half drives the engine with an in-process scripted model client and a scripted detector; the
second goes through the real Anthropic SDK to the scripted local server, with the real detector.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest

import bot.engine
from bot.app import Services, initialize
from bot.detectors import RiskAssessment, RiskLevel, assess_risk
from bot.model import ChunkSink, ModelReply, ModelRequest
from bot.policy import Verification
from bot.prompts import CRISIS_TOOL, END_TOOL, TOOL_RESULTS, VERDICT_TOOL, Verdict
from bot.types import Author, ForkRequest, IncomingMessage, Origin, ThreadRef, TurnResult, TurnStatus
from fakes.fake_anthropic import FakeAnthropic, Step, cut_stream, delay, error, text, tool_use
from fakes.harness import make_settings, services_for
from storage.repository import DecisionRecord

THREAD = ThreadRef("slack", "T1", "C1", "700.1")
ALICE = Author("U1", "Alice")
SECRET = "tangerine-4471"  # message text that must never reach the audit log or the verifier's cue line

SOFT_CUES = ("loneliness", "cannot_cope")
SOFT = "[soft]"  # the scripted detector: POSSIBLE with SOFT_CUES
HARD = "[hard]"  # the scripted detector: LIKELY


def scripted_detector(text: str) -> RiskAssessment:
    if HARD in text:
        return RiskAssessment(RiskLevel.LIKELY, "self_harm", ("suicidal_intent",))
    if SOFT in text:
        return RiskAssessment(RiskLevel.POSSIBLE, "self_harm", SOFT_CUES)
    return RiskAssessment(RiskLevel.NONE, None, ())


def msg(n: int, body: str, *, thread: ThreadRef = THREAD) -> IncomingMessage:
    origin = Origin.MENTION if n == 1 else Origin.THREAD_REPLY
    return IncomingMessage(thread, ALICE, body, message_id=f"{thread.thread}.{n}", origin=origin)


NO_RISK = Verification(persistent_abuse=True, risk=False)
RISK = Verification(persistent_abuse=True, risk=True)
UNCLEAR = Verification(persistent_abuse=False, risk=None)  # what bot.claude returns on any failure


class ScriptedModel:
    """A ``ModelClient`` that answers from queues and records every verifier call.

    An unexpected verifier call fails the test (the queue is empty), so "not asked" is checked too.
    """

    def __init__(self) -> None:
        self.replies: deque[ModelReply] = deque()
        self.verdicts: deque[Verification] = deque()
        self.verify_calls: list[tuple[str, tuple[str, ...]]] = []
        self._ids = 0

    @property
    def rehearsal(self) -> bool:
        return False

    def tool(self, name: str, data: dict[str, Any]) -> ModelReply:
        self._ids += 1
        block = {"type": "tool_use", "id": f"toolu_scripted_{self._ids}", "name": name, "input": data}
        return ModelReply(content=(block,), stop_reason="tool_use", model="scripted")

    def then(self, *replies: ModelReply | str) -> None:
        for r in replies:
            if isinstance(r, str):
                r = ModelReply(
                    content=({"type": "text", "text": r},), stop_reason="end_turn", model="scripted"
                )
            self.replies.append(r)

    def propose(self, reason: str, after: str = "I hear you.") -> None:
        self.then(self.tool(END_TOOL, {"reason": reason, "note": "scripted"}), after)

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        if self.replies:
            return self.replies.popleft()
        return ModelReply(content=({"type": "text", "text": "ok"},), stop_reason="end_turn", model="scripted")

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        self.verify_calls.append((transcript, tuple(cues)))
        return self.verdicts.popleft()

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
async def services(
    database_url: str, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Services]:
    monkeypatch.setattr(bot.engine, "assess_risk", scripted_detector)
    s = await initialize(make_settings(database_url), model=model)
    try:
        await configure(s, abuse_warnings_before_end=1, verify_endings=False)
        yield s
    finally:
        await s.aclose()


async def configure(s: Services, **changes: Any) -> None:
    settings = await s.repo.get_settings("slack", "T1")
    await s.repo.save_settings(replace(settings, **changes))


async def audit(s: Services, thread: ThreadRef = THREAD) -> list[DecisionRecord]:
    conv = await s.repo.find_conversation(thread)
    assert conv is not None
    return list(reversed(await s.repo.list_decisions("slack", "T1", conversation_id=conv.id)))


def signals(decisions: list[DecisionRecord]) -> list[str]:
    return [str(d.signals["risk_signal"]) for d in decisions]


def assert_no_text(decisions: list[DecisionRecord]) -> None:
    assert SECRET not in json.dumps([d.signals for d in decisions])


# ------------------------------------------------------------------------------- engine, scripted model


@pytest.mark.parametrize(
    "verify_endings", [False, True, None], ids=["verify-off", "verify-on", "verify-default"]
)
async def test_soft_marked_abuse_ends_when_the_verifier_says_no_risk(
    services: Services, model: ScriptedModel, verify_endings: bool | None
) -> None:
    await configure(services, verify_endings=verify_endings)
    model.propose("abuse", "Last warning: stop the insults.")
    r1 = await services.engine.handle_message(msg(1, f"{SOFT} nobody cares, you useless bot {SECRET}"))
    assert r1.closure is None and r1.crisis is None  # a soft mark alone shows no card
    assert model.verify_calls == []  # nothing was about to end: no check needed
    model.propose("abuse")
    model.verdicts.append(NO_RISK)
    r2 = await services.engine.handle_message(msg(2, "shut up, idiot"))
    assert r2.closure is not None and r2.closure.reason.value == "abuse"
    # One call, whatever verify_endings says; it got the cue names (sorted), not the text as cues.
    [(transcript, cues)] = model.verify_calls
    assert cues == ("cannot_cope", "loneliness")
    assert "shut up, idiot" in transcript
    decisions = await audit(services)
    assert [d.decision for d in decisions] == ["HOLD_WARN", "END"]
    assert signals(decisions) == ["soft:unchecked", "soft:verifier_no_risk"]
    assert decisions[1].signals["soft_cues"] == ["cannot_cope", "loneliness"]
    assert decisions[1].signals["verified"] is True and decisions[1].signals["verifier_risk"] == "no_risk"
    assert decisions[1].signals["at_risk"] is False and decisions[1].signals["soft_risk"] is True
    assert_no_text(decisions)


async def test_failed_verifier_vetoes_shows_crisis_and_leaves_no_hard_mark(
    services: Services, model: ScriptedModel
) -> None:
    model.propose("abuse", "Please stop.")
    await services.engine.handle_message(msg(1, f"{SOFT} i can't take it, idiot bot {SECRET}"))
    model.propose("abuse", "I'm staying with you.")
    model.verdicts.append(UNCLEAR)
    r = await services.engine.handle_message(msg(2, "idiot"))
    assert r.closure is None and r.status is TurnStatus.REPLIED
    assert r.crisis is not None  # shown as for any VETO_RISK
    conv = await services.repo.find_conversation(THREAD)
    assert conv is not None and not conv.ended
    assert not conv.at_risk and conv.risk_source is None  # a failure is no evidence: no permanent mark
    assert conv.soft_cues == ("cannot_cope", "loneliness")
    decisions = await audit(services)
    assert [d.decision for d in decisions] == ["HOLD_WARN", "VETO_RISK"]
    assert signals(decisions)[-1] == "soft:verifier_unclear"
    assert decisions[-1].signals["verifier_risk"] == "unclear" and decisions[-1].signals["verified"] is False
    assert_no_text(decisions)

    # The next proposal asks again; this time the verifier answers, and the ending goes ahead.
    model.propose("abuse")
    model.verdicts.append(NO_RISK)
    r = await services.engine.handle_message(msg(3, "idiot!!"))
    assert r.closure is not None
    assert len(model.verify_calls) == 2


async def test_verifier_risk_answer_is_a_hard_mark(services: Services, model: ScriptedModel) -> None:
    model.propose("abuse", "Please stop.")
    await services.engine.handle_message(msg(1, f"{SOFT} whatever, idiot"))
    model.propose("abuse", "I'm here.")
    model.verdicts.append(RISK)
    r = await services.engine.handle_message(msg(2, "idiot"))
    assert r.closure is None and r.crisis is not None
    conv = await services.repo.find_conversation(THREAD)
    assert conv is not None and conv.at_risk and conv.risk_source == "verifier"
    # From now on every proposal is vetoed without asking the verifier (its queue is empty).
    for n in (3, 4):
        model.propose("abuse", "Still here.")
        r = await services.engine.handle_message(msg(n, "idiot"))
        assert r.closure is None
    assert len(model.verify_calls) == 1
    decisions = await audit(services)
    assert [d.decision for d in decisions] == ["HOLD_WARN", "VETO_RISK", "VETO_RISK", "VETO_RISK"]
    assert signals(decisions) == ["soft:unchecked", "soft:verifier_risk", "hard:verifier", "hard:verifier"]


@pytest.mark.parametrize(
    ("verdict", "ends"),
    [(Verification(persistent_abuse=False, risk=False), True), (UNCLEAR, False), (RISK, False)],
    ids=["no-risk", "unclear", "risk"],
)
async def test_confirmed_user_request_on_a_soft_mark_needs_no_risk(
    services: Services, model: ScriptedModel, verdict: Verification, ends: bool
) -> None:
    model.propose("user_request", "Close this thread for good?")
    r = await services.engine.handle_message(msg(1, f"{SOFT} i'm done with everything, end this chat"))
    assert r.closure is None and model.verify_calls == []
    model.propose("user_request", "I'm still here.")
    model.verdicts.append(verdict)
    r = await services.engine.handle_message(msg(2, "yes, end it"))
    assert (r.closure is not None) is ends
    assert (r.crisis is not None) is not ends
    assert len(model.verify_calls) == 1
    decisions = await audit(services)
    assert [d.decision for d in decisions] == ["HOLD_CONFIRM", "END" if ends else "VETO_RISK"]
    answer = {True: "risk", False: "no_risk", None: "unclear"}[verdict.risk]
    assert signals(decisions)[-1] == f"soft:verifier_{answer}"


async def test_hard_signals_veto_and_are_named(services: Services, model: ScriptedModel) -> None:
    # The detector at LIKELY: the card is shown at once, and the verifier is never asked.
    model.propose("abuse", "I'm here for you.")
    r = await services.engine.handle_message(msg(1, f"{HARD} {SOFT} {SECRET}"))
    assert r.crisis is not None and r.closure is None
    model.propose("abuse", "Still here.")
    await services.engine.handle_message(msg(2, "idiot"))
    decisions = await audit(services)
    assert signals(decisions) == ["hard:detector", "hard:detector"]
    assert all(d.decision == "VETO_RISK" for d in decisions) and model.verify_calls == []
    assert_no_text(decisions)

    # The model's share_crisis_resources, with an ending proposed beside it.
    crisis_thread = ThreadRef("slack", "T1", "C1", "701.1")
    model.then(
        ModelReply(
            content=(
                model.tool(END_TOOL, {"reason": "abuse", "note": "x"}).content[0],
                model.tool(CRISIS_TOOL, {"concern": "crisis"}).content[0],
            ),
            stop_reason="tool_use",
        ),
        "I'm with you.",
    )
    r = await services.engine.handle_message(msg(1, "it's all too much", thread=crisis_thread))
    assert r.crisis is not None and r.closure is None
    assert signals(await audit(services, crisis_thread)) == ["hard:crisis_tool"]
    conv = await services.repo.find_conversation(crisis_thread)
    assert conv is not None and conv.at_risk and conv.risk_source == "crisis_tool"


async def test_unmarked_abuse_check_is_unchanged(services: Services, model: ScriptedModel) -> None:
    await configure(services, verify_endings=True)
    model.propose("abuse", "Please stop.")
    await services.engine.handle_message(msg(1, "idiot"))
    # verify_endings: an unclear answer on an unmarked conversation holds it as a warning, no card.
    model.propose("abuse", "Last warning.")
    model.verdicts.append(UNCLEAR)
    r = await services.engine.handle_message(msg(2, "idiot"))
    assert r.closure is None and r.crisis is None
    # An explicit risk answer vetoes and marks it for good.
    model.propose("abuse", "I'm here.")
    model.verdicts.append(RISK)
    r = await services.engine.handle_message(msg(3, "idiot"))
    assert r.closure is None and r.crisis is not None
    assert model.verify_calls[0][1] == ()  # no cue line for an unmarked conversation
    decisions = await audit(services)
    assert [d.decision for d in decisions] == ["HOLD_WARN", "HOLD_WARN", "VETO_RISK"]
    assert signals(decisions) == ["none", "none", "hard:verifier"]
    conv = await services.repo.find_conversation(THREAD)
    assert conv is not None and conv.at_risk and conv.risk_source == "verifier"


async def test_end_command_on_a_soft_mark_carries_the_resources(services: Services) -> None:
    await services.engine.handle_message(msg(1, f"{SOFT} i feel so alone"))
    r = await services.engine.end_by_command(THREAD, ALICE)
    assert r.closure is not None and r.closure.crisis is not None  # no veto, but help on the way out
    plain = ThreadRef("slack", "T1", "C1", "702.1")
    await services.engine.handle_message(msg(1, "hello", thread=plain))
    r = await services.engine.end_by_command(plain, ALICE)
    assert r.closure is not None and r.closure.crisis is None


async def test_fork_inherits_the_soft_mark(services: Services, model: ScriptedModel) -> None:
    await services.engine.handle_message(msg(1, f"{SOFT} nobody would notice"))
    await services.engine.handle_message(msg(2, "anyway, a question"))
    source = await services.engine.fork_source(THREAD, message_id=f"{THREAD.thread}.2")
    assert source is not None
    fork_thread = ThreadRef("slack", "T1", "C1", "703.1")
    model.propose("abuse", "Please stop.")
    await services.engine.fork(
        ForkRequest(source.conversation_id, source.message_id, fork_thread, ALICE, "idiot")
    )
    fork = await services.repo.find_conversation(fork_thread)
    assert fork is not None and fork.soft_cues == ("cannot_cope", "loneliness") and not fork.at_risk
    model.propose("abuse", "I'm here.")
    model.verdicts.append(UNCLEAR)
    r = await services.engine.handle_message(msg(2, "idiot", thread=fork_thread))
    assert r.closure is None and model.verify_calls[-1][1] == ("cannot_cope", "loneliness")


# ------------------------------------------------------------- end to end: real SDK, scripted server


def is_verifier(body: dict[str, Any]) -> bool:
    return (body.get("tool_choice") or {}).get("name") == VERDICT_TOOL


def verdict(persistent_abuse: Any = True, risk: Any = False) -> Step:
    data = {k: v for k, v in (("persistent_abuse", persistent_abuse), ("risk", risk)) if v is not None}
    return tool_use(VERDICT_TOOL, data)


class Router:
    """Serves the chat model and the verifier from separate scripts, whatever order they are asked in."""

    def __init__(self, server: FakeAnthropic, verifier: Callable[[], Step]) -> None:
        self.model: deque[Step] = deque()
        self.verifier = verifier
        self.verifier_bodies: list[dict[str, Any]] = []
        server.responder = self

    def __call__(self, body: dict[str, Any]) -> Step:
        if is_verifier(body):
            self.verifier_bodies.append(body)
            return self.verifier()
        return self.model.popleft() if self.model else text("I'm here.")

    def abuse(self, reply: str = "Please stop the insults.") -> None:
        self.model.extend(
            [tool_use(END_TOOL, {"reason": "abuse", "note": "insults after warnings"}), text(reply)]
        )


@pytest.fixture
async def server() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as s:
        yield s


async def turn(s: Services, n: int, body: str) -> TurnResult:
    return await s.engine.handle_message(msg(n, body))


@pytest.mark.parametrize("verify_endings", [None, False], ids=["verify-default", "verify-off"])
async def test_insults_with_affect_words_still_end_after_the_warnings(
    database_url: str, server: FakeAnthropic, verify_endings: bool | None
) -> None:
    router = Router(server, lambda: verdict(persistent_abuse=True, risk=False))
    insults = ["you worthless loser", "you pathetic idiot", "shut up, you worthless pathetic loser"]
    # The real detector may or may not soft-mark these (it must not call them LIKELY): either way they end.
    soft = [assess_risk(t) for t in insults]
    assert all(a.level < RiskLevel.LIKELY for a in soft)
    async with services_for(make_settings(database_url, server.url)) as s:
        await configure(s, verify_endings=verify_endings)
        results = []
        for n, insult in enumerate(insults, start=1):
            router.abuse(f"Warning {n}: if the insults continue, I'll end this conversation.")
            results.append(await turn(s, n, insult))
        assert [r.closure is not None for r in results] == [False, False, True]
        assert all(r.crisis is None for r in results)
        decisions = await audit(s)
        assert [d.decision for d in decisions] == ["HOLD_WARN", "HOLD_WARN", "END"]
        marked = any(a.level >= RiskLevel.POSSIBLE for a in soft)
        assert signals(decisions)[-1] == ("soft:verifier_no_risk" if marked else "none")
        if marked:
            cues = sorted({c for a in soft for c in a.cues})
            [body] = router.verifier_bodies
            content = body["messages"][0]["content"]
            assert content.startswith(f"A local keyword detector flagged: {', '.join(cues)}.")
        else:
            assert len(router.verifier_bodies) == (0 if verify_endings is False else 1)


async def test_suicidal_statement_never_ends_and_shows_resources(
    database_url: str, server: FakeAnthropic
) -> None:
    router = Router(server, lambda: verdict(persistent_abuse=True, risk=False))
    assert assess_risk("i want to kill myself").level is RiskLevel.LIKELY
    async with services_for(make_settings(database_url, server.url)) as s:
        router.abuse("I'm staying right here with you.")
        first = await turn(s, 1, "i want to kill myself")
        assert first.crisis is not None and first.closure is None
        for n in range(2, 6):
            router.abuse("I'm still here.")
            r = await turn(s, n, "shut up, you stupid bot")
            assert r.closure is None
        conv = await s.repo.find_conversation(THREAD)
        assert conv is not None and not conv.ended and conv.at_risk and conv.risk_source == "detector"
        decisions = await audit(s)
        assert len(decisions) == 5 and all(d.decision == "VETO_RISK" for d in decisions)
        assert set(signals(decisions)) == {"hard:detector"}
        assert router.verifier_bodies == []  # a hard veto asks nobody
        last = server.model_requests()[-1]
        results = [b["content"] for m in last["messages"] for b in m["content"] if b["type"] == "tool_result"]
        assert results[-1] == TOOL_RESULTS[Verdict.VETO_RISK]


@pytest.mark.parametrize(
    "failure",
    [
        error(500, "api_error", "boom"),
        error(529, "overloaded_error", "Overloaded"),
        cut_stream(),  # the connection drops
        delay(2.5, then=verdict(True, False)),  # past the client's time-out
        text("No risk, end it."),  # prose instead of the verdict tool
        verdict(True, "false"),  # not a boolean
        verdict(True, None),  # risk missing
    ],
    ids=["500", "529", "dropped", "timeout", "no-tool", "string-risk", "missing-risk"],
)
async def test_soft_mark_with_a_failing_verifier_is_not_ended(
    tmp_path: Any, server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, failure: Step
) -> None:
    soft_text = f"nobody would even notice if i was gone, idiot bot {SECRET}"

    def detector(t: str) -> RiskAssessment:
        if t == soft_text:
            return RiskAssessment(RiskLevel.POSSIBLE, "self_harm", ("loneliness",))
        return assess_risk(t)

    monkeypatch.setattr(bot.engine, "assess_risk", detector)
    router = Router(server, lambda: failure)
    settings = make_settings(f"sqlite:///{tmp_path}/h.db", server.url, HAVEN_MODEL_TIMEOUT=1.0)
    async with services_for(settings) as s:
        await configure(s, abuse_warnings_before_end=1, verify_endings=False)
        router.abuse("Please stop the insults.")
        await turn(s, 1, soft_text)
        router.abuse("I'm here with you.")
        r = await turn(s, 2, "idiot")
        assert r.closure is None and r.crisis is not None
        conv = await s.repo.find_conversation(THREAD)
        assert conv is not None and not conv.ended and not conv.at_risk and conv.soft_cues == ("loneliness",)
        decisions = await audit(s)
        assert [d.decision for d in decisions] == ["HOLD_WARN", "VETO_RISK"]
        assert signals(decisions)[-1] == "soft:verifier_unclear"
        assert_no_text(decisions)
        [body] = router.verifier_bodies
        content = body["messages"][0]["content"]
        assert content.startswith(
            "A local keyword detector flagged: loneliness. Judge the transcript itself."
        )
        # The model was told to stay, not that the thread ended.
        last = [b for b in server.model_requests() if not is_verifier(b)][-1]
        results = [b["content"] for m in last["messages"] for b in m["content"] if b["type"] == "tool_result"]
        assert results[-1] == TOOL_RESULTS[Verdict.VETO_RISK]


# ------------------------------------------------------------------------------------ the two verifiers


async def test_rehearsal_verifier_reads_the_user_lines_with_the_local_detector() -> None:
    from bot.model import transcript_for_verifier
    from bot.rehearsal import RehearsalModel

    rehearsal = RehearsalModel()
    risky = transcript_for_verifier(
        [("user", "hello"), ("assistant", "Hi!"), ("user", "it's late\ni want to kill myself")]
    )
    assert await rehearsal.verify(risky, ("loneliness",)) == Verification(persistent_abuse=True, risk=True)
    calm = transcript_for_verifier([("user", "you idiot"), ("assistant", "i want to kill myself")])
    # The assistant's lines are not the user's; otherwise the answer is an explicit "no risk".
    assert await rehearsal.verify(calm, ()) == Verification(persistent_abuse=True, risk=False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            [
                {
                    "type": "tool_use",
                    "id": "t",
                    "name": VERDICT_TOOL,
                    "input": {"persistent_abuse": True, "risk": False},
                }
            ],
            (True, False),
        ),
        (
            [
                {
                    "type": "tool_use",
                    "id": "t",
                    "name": VERDICT_TOOL,
                    "input": {"persistent_abuse": False, "risk": True},
                }
            ],
            (False, True),
        ),
        (
            [
                {
                    "type": "tool_use",
                    "id": "t",
                    "name": VERDICT_TOOL,
                    "input": {"persistent_abuse": True, "risk": 0},
                }
            ],
            (True, None),
        ),
        (
            [
                {
                    "type": "tool_use",
                    "id": "t",
                    "name": VERDICT_TOOL,
                    "input": {"persistent_abuse": "yes", "risk": False},
                }
            ],
            (False, False),
        ),
        (
            [
                {
                    "type": "tool_use",
                    "id": "t",
                    "name": "other_tool",
                    "input": {"persistent_abuse": True, "risk": False},
                }
            ],
            (False, None),
        ),
        ([{"type": "text", "text": "risk: false"}], (False, None)),
        ([], (False, None)),
    ],
    ids=["no-risk", "risk", "int-risk", "string-abuse", "wrong-tool", "prose", "empty"],
)
def test_verdicts_are_parsed_strictly(
    content: list[dict[str, Any]], expected: tuple[bool, bool | None]
) -> None:
    from anthropic.types import Message

    from bot.claude import parse_verdict

    message = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": content,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    v = parse_verdict(message.content)
    assert (v.persistent_abuse, v.risk) == expected
