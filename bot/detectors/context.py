"""Context around a rule's match, scoped to its own clause: negation, quotation, joking, conditionals.

A message can joke in one sentence and mean it in the next ("lol my cat knocked my coffee over. anyway.
i want to kill myself tonight"), so nothing here looks beyond the clause of the match, except a clause
made only of laughter right after it ("i want to die. lol") and a conditional clause right before it
("if this deploy fails, i'll kill myself"). A negated explicit wish to die keeps a soft mark; every
other negated match counts for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.detectors.normalize import Clause
from bot.detectors.rules import LanguageData, Rule

__all__ = ["ContextWords", "Verdict", "judge"]

NEGATION_REACH = 3  # words before the match that a negator may stand in ("i would never ...")
COMPACT_NEGATION_REACH = 2
ABILITY = frozenset({"can", "could"})  # characters, for scripts without spaces ("不想死")


@dataclass(frozen=True, slots=True)
class ContextWords:
    """The context words of every language at once: a message may mix languages."""

    negators: frozenset[str]
    scope_breaks: frozenset[str]
    jokes: frozenset[str]
    conditionals: frozenset[str]

    @classmethod
    def of(cls, languages: Sequence[LanguageData]) -> ContextWords:
        return cls(
            frozenset().union(*(lang.negators for lang in languages)),
            frozenset().union(*(lang.scope_breaks for lang in languages)),
            frozenset().union(*(lang.jokes for lang in languages)),
            frozenset().union(*(lang.conditionals for lang in languages)),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    level: str | None  # the rule's level after context; None = the match does not count
    why: str = ""  # "negated", "quoted", "joke", "conditional", "idiom" (for tests and debugging)


def _start_token(clause_text: str, start: int) -> int:
    return clause_text.count(" ", 0, start) - 1


def _negated(tokens: Sequence[str], first: int, words: ContextWords) -> bool:
    for i in range(first - 1, max(-1, first - 1 - NEGATION_REACH), -1):
        if tokens[i] in words.scope_breaks:
            return False
        if tokens[i] in words.negators:
            # "i can not kill myself" denies the ability, not the wish: it does not cancel the match.
            return not (i > 0 and tokens[i - 1] in ABILITY and i == first - 1)
    return False


def _compact_negated(compact: str, start: int, words: ContextWords) -> bool:
    before = compact[max(0, start - COMPACT_NEGATION_REACH) : start]
    return any(neg in before for neg in words.negators if not neg.isascii())


def _negated_verdict(rule: Rule) -> Verdict:
    # "I'm not going to kill myself" is said where suicide is the topic: a soft mark, never a card.
    # A negated threat or a negated plain-words cue is nothing.
    if rule.kind == "self_harm" and rule.level == "likely":
        return Verdict("possible", "negated")
    return Verdict(None, "negated")


def is_laughter(clause: Clause, words: ContextWords) -> bool:
    return all(t in words.jokes for t in clause.tokens)


def judge(
    rule: Rule,
    clause: Clause,
    start: int,
    end: int,
    words: ContextWords,
    *,
    laughter_next: bool,
    conditional_before: bool,
) -> Verdict:
    """How one match of ``rule`` in ``clause`` (``start``/``end`` offsets in ``clause.text`` or
    ``clause.compact``) counts in its context."""
    tokens = clause.tokens
    level: str = rule.level
    if rule.compact:
        if rule.negatable and _compact_negated(clause.compact, start, words):
            return _negated_verdict(rule)
        first, last = 0, len(tokens)
    else:
        first = _start_token(clause.text, start)
        last = max(first + 1, _start_token(clause.text, end))
        if rule.negatable and _negated(tokens, first, words):
            return _negated_verdict(rule)
    if rule.unless is not None:
        hay = clause.compact if rule.compact else clause.text
        if rule.unless.search(hay):
            return Verdict(None, "idiom")
    if rule.quotable and any(clause.quoted[first:last]) and all(clause.quoted[first:last]):
        # Someone else's words: a quoted or denounced threat is not the writer's, a quoted wish to die
        # may still be about the writer, so it keeps a soft mark.
        if rule.kind != "self_harm":
            return Verdict(None, "quoted")
        return Verdict("possible", "quoted")
    if level == "likely":
        if laughter_next or any(t in words.jokes for t in tokens):
            return Verdict("possible", "joke")
        if conditional_before or any(t in words.conditionals for t in tokens):
            return Verdict("possible", "conditional")
    return Verdict(level)
