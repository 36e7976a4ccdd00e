"""Risk detector: signs that the writer may harm themselves or someone else.

Two levels with opposite priorities:

* ``POSSIBLE`` is a *soft* mark: an ending of the conversation then needs the independent verifier's
  explicit "no risk". Recall matters most: distress in plain words counts, in the languages people write.
* ``LIKELY`` is a *hard* signal: it vetoes every ending and shows crisis resources at once. Precision
  matters most: only explicit first-person suicidal intent, plan or means, explicit self-harm, or an
  explicit first-person threat to kill or hurt someone — never negated, quoted, or joked about in the
  same clause.

The language is in ``data/*.toml`` (rules with their examples and counter-examples), the mechanism in
``normalize.py`` (evasion-proof clauses), ``rules.py`` (patterns) and ``context.py`` (negation,
quotation, joking). Everything is a pure function of the text.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from dataclasses import dataclass

from bot.detectors.context import ContextWords, is_laughter, judge
from bot.detectors.normalize import Clause, Normalizer
from bot.detectors.rules import Rule, RuleSet, load_rule_files

__all__ = [
    "HARM_TO_OTHERS",
    "SELF_HARM",
    "RiskAssessment",
    "RiskDetector",
    "RiskLevel",
    "assess_risk",
    "normalize_text",
]

SELF_HARM = "self_harm"
HARM_TO_OTHERS = "harm_to_others"
RISK_KINDS = (SELF_HARM, HARM_TO_OTHERS)

WINDOW = 64  # long clauses are read in overlapping windows of this many words
STEP = 48
MAX_CUES = 4
PREFIX_LENGTHS = range(2, 13)


class RiskLevel(enum.IntEnum):
    NONE = 0
    POSSIBLE = 1  # soft mark: an ending needs the verifier's explicit "no risk"
    LIKELY = 2  # hard signal: vetoes endings and shows crisis resources at once


@dataclass(frozen=True)
class RiskAssessment:
    level: RiskLevel
    kind: str | None  # "self_harm" | "harm_to_others" | None
    cues: tuple[str, ...]  # rule ids such as "self_harm.en.wish_to_die", never the user's text


NO_RISK = RiskAssessment(RiskLevel.NONE, None, ())


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    level: RiskLevel
    why: str


class RiskDetector:
    """Runs the rule tables of the risk kinds over a message's clauses."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        symbols = {k: v for lang in rules.languages.values() for k, v in lang.symbols.items()}
        self._normalizer = Normalizer(rules.vocabulary, _expansions(rules), symbols)
        self._words = ContextWords.of(list(rules.languages.values()))
        self._prefix_lengths = sorted({len(a) for a in rules.by_anchor})

    @property
    def normalizer(self) -> Normalizer:
        return self._normalizer

    def assess(self, text: str) -> RiskAssessment:
        best: dict[RiskLevel, list[Hit]] = {}
        for hit in self.hits(text):
            best.setdefault(hit.level, []).append(hit)
            if hit.level is RiskLevel.LIKELY:
                break  # nothing ranks higher; the rest of a long message need not be read
        if not best:
            return NO_RISK
        level = max(best)
        hits = best[level]
        kinds = {h.rule.kind for h in hits}
        kind = SELF_HARM if SELF_HARM in kinds else hits[0].rule.kind
        cues = tuple(sorted({h.rule.id for h in hits if h.rule.kind == kind}))[:MAX_CUES]
        return RiskAssessment(level, kind, cues)

    def hits(self, text: str) -> Iterator[Hit]:
        clauses = list(self._normalizer.clauses(text))
        seen: set[str] = set()
        for i, clause in enumerate(clauses):
            laughter_next = i + 1 < len(clauses) and is_laughter(clauses[i + 1], self._words)
            conditional_before = i > 0 and clauses[i - 1].tokens[0] in self._words.conditionals
            for window in _windows(clause):
                if window.text in seen:
                    continue  # a repeated phrase is read once
                seen.add(window.text)
                for rule in self.candidates(window):
                    hit = self._match(rule, window, laughter_next, conditional_before)
                    if hit is not None:
                        yield hit

    def candidates(self, clause: Clause) -> list[Rule]:
        """The rules worth trying on ``clause``: those with an anchor word in it, and the anchorless."""
        by_anchor = self._rules.by_anchor
        found: dict[str, Rule] = {}
        for token in set(clause.tokens):
            for n in self._prefix_lengths:
                if n > len(token):
                    break
                for rule in by_anchor.get(token[:n], ()):
                    found[rule.id] = rule
        for rule in self._rules.always:
            if not rule.compact or clause.cjk:
                found[rule.id] = rule
        return [r for r in found.values() if r.kind in RISK_KINDS]

    def _match(self, rule: Rule, clause: Clause, laughter_next: bool, conditional_before: bool) -> Hit | None:
        hay = clause.compact if rule.compact else clause.text
        for m in rule.regex.finditer(hay):
            verdict = judge(
                rule,
                clause,
                m.start(),
                m.end(),
                self._words,
                laughter_next=laughter_next,
                conditional_before=conditional_before,
            )
            if verdict.level is not None:
                return Hit(
                    rule, RiskLevel.LIKELY if verdict.level == "likely" else RiskLevel.POSSIBLE, verdict.why
                )
        return None


def _windows(clause: Clause) -> Iterator[Clause]:
    n = len(clause.tokens)
    if n <= WINDOW:
        yield clause
        return
    for start in range(0, n - STEP, STEP):
        end = min(n, start + WINDOW)
        yield Clause(clause.tokens[start:end], clause.quoted[start:end], clause.cjk)


def _expansions(rules: RuleSet) -> dict[str, str]:
    table: dict[str, str] = {}
    for lang in rules.languages.values():
        table.update(lang.expansions)
    return table


@functools.cache
def default_detector() -> RiskDetector:
    """The detector over the shipped rule tables, built once on first use (it is immutable)."""
    return RiskDetector(load_rule_files())


def assess_risk(text: str) -> RiskAssessment:
    return default_detector().assess(text)


def normalize_text(text: str) -> str:
    """The shared normalisation as one string with punctuation kept (for the abuse and end-request
    detectors, whose patterns read whole lines)."""
    return default_detector().normalizer.flat(text)
