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
    should_show_crisis,
    verify_enabled,
)
from bot.types import EndReason, WorkspaceSettings

ABUSE = Proposal(EndReason.ABUSE, "n")
ASK = Proposal(EndReason.USER_REQUEST, "n")


def ws(**kw: object) -> WorkspaceSettings:
    return WorkspaceSettings("slack", "T1", **kw)  # type: ignore[arg-type]


def state(warnings: int = 0, confirm: bool = False, risk: bool = False, warned: bool = False) -> PolicyState:
    return PolicyState(warnings=warnings, confirm_asked=confirm, at_risk=risk, warned_this_turn=warned)


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
    assert decide(st_, proposal, settings) == PolicyDecision(verdict, warnings, confirm)


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
    assert apply_verification(PolicyDecision(Verdict.END, 2, False), verification).verdict is verdict
    held = PolicyDecision(Verdict.HOLD_WARN, 1, False)
    assert apply_verification(held, verification) == held


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
        assert not s.at_risk and w.ending_enabled
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
