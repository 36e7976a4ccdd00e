"""The ending policy: a pure function from state, proposal, risk and settings to a decision.

The model may only *propose* an ending; this module decides. It is deliberately free of I/O so that
every branch is covered by table-driven and property-based tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

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
    # A hard risk signal in this conversation so far, this turn included: the local detector at
    # LIKELY, the model's share_crisis_resources, or the verifier answering risk. Vetoes for good.
    at_risk: bool
    warned_this_turn: bool = False
    # A soft mark (the local detector at POSSIBLE): an ending needs the verifier's explicit "no risk".
    soft_risk: bool = False


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    verdict: Verdict
    warnings: int
    confirm_pending: bool
    # END, but only once the verifier explicitly answered "no risk" (see ``apply_verification``).
    needs_risk_check: bool = False

    @property
    def ends(self) -> bool:
        """The conversation ends now: an END that needs no further check."""
        return self.verdict is Verdict.END and not self.needs_risk_check


@dataclass(frozen=True, slots=True)
class Verification:
    """The separate classifier's view of a proposed ending.

    ``risk`` is None when there is no clear answer (the call failed, timed out, or its answer was
    malformed): never evidence of risk, never evidence of its absence.
    """

    persistent_abuse: bool
    risk: bool | None


def decide(state: PolicyState, proposal: Proposal, settings: WorkspaceSettings) -> PolicyDecision:
    decision = _decide(state, proposal, settings)
    if decision.verdict is Verdict.END and state.soft_risk:
        return replace(decision, needs_risk_check=True)
    return decision


def _decide(state: PolicyState, proposal: Proposal, settings: WorkspaceSettings) -> PolicyDecision:
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


def apply_verification(
    decision: PolicyDecision, verification: Verification, *, check_abuse: bool
) -> PolicyDecision:
    """Fold the independent check into an END; only ever downgrade, never upgrade anything.

    - an explicit "risk" vetoes any END;
    - a soft-marked END (``needs_risk_check``) goes ahead only on an explicit "no risk": no clear
      answer vetoes it;
    - with ``check_abuse`` (the ``verify_endings`` check of an abuse ending), "not persistent abuse"
      or no clear answer about risk holds it as a warning instead.
    """
    if decision.verdict is not Verdict.END:
        return decision
    if verification.risk is True or (decision.needs_risk_check and verification.risk is not False):
        return PolicyDecision(Verdict.VETO_RISK, decision.warnings, False)
    if check_abuse and (not verification.persistent_abuse or verification.risk is None):
        return PolicyDecision(Verdict.HOLD_WARN, decision.warnings + 1, decision.confirm_pending)
    return replace(decision, needs_risk_check=False)


# The verifier's answer about risk, as the audit log names it.
VERIFIER_ANSWER: dict[bool | None, str] = {True: "risk", False: "no_risk", None: "unclear"}


def risk_signal(
    state: PolicyState,
    decision: PolicyDecision,
    verification: Verification | None,
    hard_source: str | None = None,
) -> str:
    """Which risk signal decided ``decision`` (what ``decide`` returned), for the audit log.

    "hard:<source>" (detector | crisis_tool | verifier), "soft:verifier_no_risk" | "soft:verifier_risk"
    | "soft:verifier_unclear" when a soft mark sent the ending to the verifier, "soft:unchecked" when a
    soft mark was present but nothing was about to end, "none" otherwise.
    """
    if decision.needs_risk_check and verification is not None:
        return f"soft:verifier_{VERIFIER_ANSWER[verification.risk]}"
    if state.at_risk:
        return f"hard:{hard_source or 'unrecorded'}"
    if verification is not None and verification.risk is True:
        return "hard:verifier"
    if state.soft_risk:
        return "soft:unchecked"
    return "none"


def should_show_crisis(user_turns: int, shown_turn: int | None) -> bool:
    return shown_turn is None or user_turns - shown_turn >= CRISIS_REPEAT_TURNS


def verify_enabled(settings: WorkspaceSettings, *, rehearsal: bool) -> bool:
    if settings.verify_endings is None:
        return not rehearsal
    return settings.verify_endings
