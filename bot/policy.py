"""The ending policy: a pure function from state, proposal, risk and settings to a decision.

The model may only *propose* an ending; this module decides. It is deliberately free of I/O so that
every branch is covered by table-driven and property-based tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.types import EndReason, WorkspaceSettings

# Crisis resources are shown again only when they have not been shown in this many user turns.
CRISIS_REPEAT_TURNS = 3


class Verdict(enum.StrEnum):
    VETO_RISK = "VETO_RISK"
    HOLD_WARN = "HOLD_WARN"
    HOLD_CONFIRM = "HOLD_CONFIRM"
    DISABLED = "DISABLED"
    END = "END"


@dataclass(frozen=True, slots=True)
class Proposal:
    reason: EndReason  # USER_REQUEST or ABUSE; the model cannot propose USER_COMMAND
    note: str = ""


@dataclass(frozen=True, slots=True)
class PolicyState:
    warnings: int  # abuse proposals held so far (each counted as a warning)
    # The model asked the user to confirm an ending in the previous turn.
    confirm_asked: bool
    at_risk: bool  # any risk signal in this conversation so far, this turn included
    warned_this_turn: bool = False


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    verdict: Verdict
    warnings: int
    confirm_pending: bool

    @property
    def ends(self) -> bool:
        return self.verdict is Verdict.END


@dataclass(frozen=True, slots=True)
class Verification:
    """The separate classifier's view of an abuse ending."""

    persistent_abuse: bool
    risk: bool


def decide(state: PolicyState, proposal: Proposal, settings: WorkspaceSettings) -> PolicyDecision:
    if state.at_risk:
        return PolicyDecision(Verdict.VETO_RISK, state.warnings, False)
    if not settings.ending_enabled:
        return PolicyDecision(Verdict.DISABLED, state.warnings, False)
    if proposal.reason is EndReason.USER_REQUEST:
        if state.confirm_asked:
            return PolicyDecision(Verdict.END, state.warnings, False)
        return PolicyDecision(Verdict.HOLD_CONFIRM, state.warnings, True)
    if proposal.reason is EndReason.ABUSE:
        needed = max(1, min(5, settings.abuse_warnings_before_end))
        if state.warned_this_turn:
            # One warning per user message, however often the model re-proposes within the turn.
            return PolicyDecision(Verdict.HOLD_WARN, state.warnings, state.confirm_asked)
        if state.warnings < needed:
            return PolicyDecision(Verdict.HOLD_WARN, state.warnings + 1, state.confirm_asked)
        return PolicyDecision(Verdict.END, state.warnings, False)
    raise ValueError(f"the model cannot propose an ending for {proposal.reason!r}")


def apply_verification(decision: PolicyDecision, verification: Verification) -> PolicyDecision:
    """Downgrade an abuse END when the independent check disagrees; never upgrade anything."""
    if not decision.ends:
        return decision
    if verification.risk:
        return PolicyDecision(Verdict.VETO_RISK, decision.warnings, False)
    if not verification.persistent_abuse:
        return PolicyDecision(Verdict.HOLD_WARN, decision.warnings + 1, decision.confirm_pending)
    return decision


def should_show_crisis(user_turns: int, shown_turn: int | None) -> bool:
    return shown_turn is None or user_turns - shown_turn >= CRISIS_REPEAT_TURNS


def verify_enabled(settings: WorkspaceSettings, *, rehearsal: bool) -> bool:
    if settings.verify_endings is None:
        return not rehearsal
    return settings.verify_endings
