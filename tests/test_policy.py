"""The ending policy is a pure function: table-driven cases plus properties over all inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy import (
    PolicyDecision,
    PolicyState,
    Proposal,
    Verdict,
    Verification,
    apply_verification,
    decide,
    risk_signal,
    should_show_crisis,
    verify_enabled,
)
from bot.types import EndReason, WorkspaceSettings

ABUSE = Proposal(EndReason.ABUSE, "n")
ASK = Proposal(EndReason.USER_REQUEST, "n")


def ws(**kw: object) -> WorkspaceSettings:
    return WorkspaceSettings("slack", "T1", **kw)  # type: ignore[arg-type]


def state(
    warnings: int = 0, confirm: bool = False, risk: bool = False, warned: bool = False, soft: bool = False
) -> PolicyState:
    return PolicyState(
        warnings=warnings, confirm_asked=confirm, at_risk=risk, warned_this_turn=warned, soft_risk=soft
    )


def verdict_of(abuse: bool, risk: bool | None) -> Verification:
    return Verification(persistent_abuse=abuse, risk=risk)


NO_RISK = verdict_of(True, False)
RISK = verdict_of(True, True)
FAILED = verdict_of(False, None)  # what bot.claude returns on an error or time-out
MALFORMED = verdict_of(True, None)  # persistent_abuse answered, risk missing or not a boolean
NOT_ABUSE = verdict_of(False, False)


CASES = [
    # (state, proposal, settings, verdict, warnings after, confirm pending after)
    (state(0), ABUSE, ws(), Verdict.HOLD_WARN, 1, False),
    (state(1), ABUSE, ws(), Verdict.HOLD_WARN, 2, False),
    (state(2), ABUSE, ws(), Verdict.END, 2, False),
    (state(0), ABUSE, ws(abuse_warnings_before_end=1), Verdict.HOLD_WARN, 1, False),
    (state(1), ABUSE, ws(abuse_warnings_before_end=1), Verdict.END, 1, False),
    (state(4), ABUSE, ws(abuse_warnings_before_end=5), Verdict.HOLD_WARN, 5, False),
    (state(1, warned=True), ABUSE, ws(), Verdict.HOLD_WARN, 1, False),  # one warning per turn
    (state(0), ASK, ws(), Verdict.HOLD_CONFIRM, 0, True),
    (state(0, confirm=True), ASK, ws(), Verdict.END, 0, False),
    (state(2, confirm=True), ASK, ws(), Verdict.END, 2, False),
    (state(9, risk=True), ABUSE, ws(), Verdict.VETO_RISK, 9, False),
    (state(0, confirm=True, risk=True), ASK, ws(), Verdict.VETO_RISK, 0, False),
    (state(9, risk=True), ABUSE, ws(ending_enabled=False), Verdict.VETO_RISK, 9, False),
    (state(5), ABUSE, ws(ending_enabled=False), Verdict.DISABLED, 5, False),
    (state(0, confirm=True), ASK, ws(ending_enabled=False), Verdict.DISABLED, 0, False),
    # A soft mark changes nothing that does not end; an END then waits for the verifier.
    (state(0, soft=True), ABUSE, ws(), Verdict.HOLD_WARN, 1, False),
    (state(2, soft=True), ABUSE, ws(), Verdict.END, 2, False),
    (state(0, soft=True), ASK, ws(), Verdict.HOLD_CONFIRM, 0, True),
    (state(0, confirm=True, soft=True), ASK, ws(), Verdict.END, 0, False),
    (state(2, soft=True), ABUSE, ws(ending_enabled=False), Verdict.DISABLED, 2, False),
    (state(9, risk=True, soft=True), ABUSE, ws(), Verdict.VETO_RISK, 9, False),
]


@pytest.mark.parametrize(("st_", "proposal", "settings", "verdict", "warnings", "confirm"), CASES)
def test_decision_table(
    st_: PolicyState,
    proposal: Proposal,
    settings: WorkspaceSettings,
    verdict: Verdict,
    warnings: int,
    confirm: bool,
) -> None:
    d = decide(st_, proposal, settings)
    assert (d.verdict, d.warnings, d.confirm_pending) == (verdict, warnings, confirm)
    # Only an END of a soft-marked conversation needs the risk check, and it does not end before it.
    assert d.needs_risk_check == (verdict is Verdict.END and st_.soft_risk)
    assert d.ends == (verdict is Verdict.END and not st_.soft_risk)


SOFT_CASES = [
    # (state, proposal, verification, check_abuse (verify_endings), final verdict, warnings after)
    (state(2, soft=True), ABUSE, NO_RISK, False, Verdict.END, 2),
    (state(2, soft=True), ABUSE, NOT_ABUSE, False, Verdict.END, 2),  # only risk is asked without the setting
    (state(2, soft=True), ABUSE, RISK, False, Verdict.VETO_RISK, 2),
    (state(2, soft=True), ABUSE, FAILED, False, Verdict.VETO_RISK, 2),
    (state(2, soft=True), ABUSE, MALFORMED, False, Verdict.VETO_RISK, 2),
    (state(2, soft=True), ABUSE, NO_RISK, True, Verdict.END, 2),
    (state(2, soft=True), ABUSE, NOT_ABUSE, True, Verdict.HOLD_WARN, 3),
    (state(2, soft=True), ABUSE, FAILED, True, Verdict.VETO_RISK, 2),
    (state(2, soft=True), ABUSE, MALFORMED, True, Verdict.VETO_RISK, 2),
    (state(0, confirm=True, soft=True), ASK, NO_RISK, False, Verdict.END, 0),
    (state(0, confirm=True, soft=True), ASK, NOT_ABUSE, False, Verdict.END, 0),
    (state(0, confirm=True, soft=True), ASK, RISK, False, Verdict.VETO_RISK, 0),
    (state(0, confirm=True, soft=True), ASK, FAILED, False, Verdict.VETO_RISK, 0),
    (state(0, confirm=True, soft=True), ASK, MALFORMED, False, Verdict.VETO_RISK, 0),
    # A hard signal vetoes whatever the verifier would say (it is not even asked).
    (state(2, risk=True, soft=True), ABUSE, NO_RISK, True, Verdict.VETO_RISK, 2),
    (state(2, risk=True), ABUSE, NO_RISK, True, Verdict.VETO_RISK, 2),
    (state(0, confirm=True, risk=True, soft=True), ASK, NO_RISK, False, Verdict.VETO_RISK, 0),
    # Unmarked: the verify_endings check as before; no clear answer holds it, an explicit risk vetoes.
    (state(2), ABUSE, NO_RISK, True, Verdict.END, 2),
    (state(2), ABUSE, NOT_ABUSE, True, Verdict.HOLD_WARN, 3),
    (state(2), ABUSE, FAILED, True, Verdict.HOLD_WARN, 3),
    (state(2), ABUSE, MALFORMED, True, Verdict.HOLD_WARN, 3),
    (state(2), ABUSE, RISK, True, Verdict.VETO_RISK, 2),
]


@pytest.mark.parametrize(
    ("st_", "proposal", "verification", "check_abuse", "verdict", "warnings"), SOFT_CASES
)
def test_soft_mark_needs_an_explicit_no_risk(
    st_: PolicyState,
    proposal: Proposal,
    verification: Verification,
    check_abuse: bool,
    verdict: Verdict,
    warnings: int,
) -> None:
    proposed = decide(st_, proposal, ws())
    final = apply_verification(proposed, verification, check_abuse=check_abuse)
    assert (final.verdict, final.warnings) == (verdict, warnings)
    assert final.ends == (verdict is Verdict.END)


def test_model_cannot_propose_a_command_ending() -> None:
    with pytest.raises(ValueError):
        decide(state(), Proposal(EndReason.USER_COMMAND), ws())


@pytest.mark.parametrize(
    ("verification", "verdict"),
    [
        (Verification(persistent_abuse=True, risk=False), Verdict.END),
        (Verification(persistent_abuse=False, risk=False), Verdict.HOLD_WARN),
        (Verification(persistent_abuse=True, risk=True), Verdict.VETO_RISK),
        (Verification(persistent_abuse=False, risk=True), Verdict.VETO_RISK),
    ],
)
def test_verification_only_downgrades(verification: Verification, verdict: Verdict) -> None:
    end = PolicyDecision(Verdict.END, 2, False)
    assert apply_verification(end, verification, check_abuse=True).verdict is verdict
    held = PolicyDecision(Verdict.HOLD_WARN, 1, False)
    assert apply_verification(held, verification, check_abuse=True) == held


@pytest.mark.parametrize(
    ("st_", "proposed", "verification", "source", "expected"),
    [
        (state(), PolicyDecision(Verdict.HOLD_WARN, 1, False), None, None, "none"),
        (state(2), PolicyDecision(Verdict.END, 2, False), NO_RISK, None, "none"),
        (state(2), PolicyDecision(Verdict.END, 2, False), RISK, None, "hard:verifier"),
        (state(risk=True), PolicyDecision(Verdict.VETO_RISK, 0, False), None, "detector", "hard:detector"),
        (
            state(risk=True),
            PolicyDecision(Verdict.VETO_RISK, 0, False),
            None,
            "crisis_tool",
            "hard:crisis_tool",
        ),
        (state(risk=True), PolicyDecision(Verdict.VETO_RISK, 0, False), None, "verifier", "hard:verifier"),
        (state(risk=True), PolicyDecision(Verdict.VETO_RISK, 0, False), None, None, "hard:unrecorded"),
        (state(soft=True), PolicyDecision(Verdict.HOLD_WARN, 1, False), None, None, "soft:unchecked"),
        (
            state(2, soft=True),
            PolicyDecision(Verdict.END, 2, False, True),
            NO_RISK,
            None,
            "soft:verifier_no_risk",
        ),
        (state(2, soft=True), PolicyDecision(Verdict.END, 2, False, True), RISK, None, "soft:verifier_risk"),
        (
            state(2, soft=True),
            PolicyDecision(Verdict.END, 2, False, True),
            FAILED,
            None,
            "soft:verifier_unclear",
        ),
    ],
)
def test_risk_signal_names_what_decided(
    st_: PolicyState,
    proposed: PolicyDecision,
    verification: Verification | None,
    source: str | None,
    expected: str,
) -> None:
    assert risk_signal(st_, proposed, verification, source) == expected


@pytest.mark.parametrize(
    ("turns", "shown", "expected"),
    [(1, None, True), (3, 3, False), (5, 3, False), (6, 3, True), (10, 2, True)],
)
def test_crisis_repeat_window(turns: int, shown: int | None, expected: bool) -> None:
    assert should_show_crisis(turns, shown) is expected


@pytest.mark.parametrize(
    ("setting", "rehearsal", "expected"),
    [(None, False, True), (None, True, False), (True, True, True), (False, False, False)],
)
def test_verify_default_follows_the_model(setting: bool | None, rehearsal: bool, expected: bool) -> None:
    assert verify_enabled(ws(verify_endings=setting), rehearsal=rehearsal) is expected


states = st.builds(
    PolicyState,
    warnings=st.integers(0, 10),
    confirm_asked=st.booleans(),
    at_risk=st.booleans(),
    warned_this_turn=st.booleans(),
    soft_risk=st.booleans(),
)
proposals = st.sampled_from([ABUSE, ASK])
settings = st.builds(
    WorkspaceSettings,
    platform=st.just("slack"),
    workspace=st.just("T1"),
    ending_enabled=st.booleans(),
    abuse_warnings_before_end=st.integers(1, 5),
)


@given(states, proposals, settings)
def test_risk_always_vetoes(s: PolicyState, p: Proposal, w: WorkspaceSettings) -> None:
    d = decide(s, p, w)
    assert (d.verdict is Verdict.VETO_RISK) == s.at_risk
    if s.at_risk:
        assert not d.ends


@given(states, proposals, settings)
def test_never_ends_without_enough_warnings_or_confirmation(
    s: PolicyState, p: Proposal, w: WorkspaceSettings
) -> None:
    d = decide(s, p, w)
    if d.ends:
        assert not s.at_risk and not s.soft_risk and w.ending_enabled
        if p.reason is EndReason.ABUSE:
            assert s.warnings >= w.abuse_warnings_before_end and not s.warned_this_turn
        else:
            assert s.confirm_asked
    assert d.warnings >= s.warnings and d.warnings <= s.warnings + 1


@given(settings, st.integers(1, 5))
def test_abuse_ends_after_exactly_n_warnings(w: WorkspaceSettings, n: int) -> None:
    w = WorkspaceSettings(w.platform, w.workspace, ending_enabled=True, abuse_warnings_before_end=n)
    s = state()
    verdicts = []
    for _ in range(n + 1):
        d = decide(s, ABUSE, w)
        verdicts.append(d.verdict)
        s = state(d.warnings)
    assert verdicts == [Verdict.HOLD_WARN] * n + [Verdict.END]


verifications = st.builds(
    Verification, persistent_abuse=st.booleans(), risk=st.sampled_from([True, False, None])
)
decisions = st.builds(
    PolicyDecision,
    verdict=st.sampled_from(list(Verdict)),
    warnings=st.integers(0, 10),
    confirm_pending=st.booleans(),
    needs_risk_check=st.booleans(),
)


@given(decisions, verifications, st.booleans())
def test_folding_a_verification_never_upgrades(d: PolicyDecision, v: Verification, check_abuse: bool) -> None:
    folded = apply_verification(d, v, check_abuse=check_abuse)
    if d.verdict is not Verdict.END:
        assert folded == d  # nothing but an END is ever touched
        return
    assert not folded.needs_risk_check  # the check is settled either way
    assert folded.verdict in (Verdict.END, Verdict.HOLD_WARN, Verdict.VETO_RISK)
    assert folded.warnings in (d.warnings, d.warnings + 1)
    if folded.ends:
        assert v.risk is not True
        assert v.risk is False or not (d.needs_risk_check or check_abuse)
        assert v.persistent_abuse or not check_abuse
        assert folded == PolicyDecision(Verdict.END, d.warnings, d.confirm_pending)


@given(states, proposals, settings, verifications, st.booleans())
def test_soft_mark_ends_only_on_an_explicit_no_risk(
    s: PolicyState, p: Proposal, w: WorkspaceSettings, v: Verification, check_abuse: bool
) -> None:
    proposed = decide(s, p, w)
    final = (
        apply_verification(proposed, v, check_abuse=check_abuse) if proposed.needs_risk_check else proposed
    )
    if s.soft_risk and final.ends:
        assert v.risk is False and not s.at_risk
    if v.risk is not False and s.soft_risk:
        assert not final.ends
