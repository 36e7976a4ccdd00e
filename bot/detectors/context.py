"""Context around a rule's match, scoped to its own clause: idiom, negation, quotation, joking, conditionals.

A message can joke in one sentence and mean it in the next ("lol my cat knocked my coffee over. anyway.
tonight i will kill myself"), so nothing here looks beyond the clause of the match, except a clause
made only of laughter right after it ("i want to die. lol"), a conditional clause right before it
("if this deploy fails, i'll kill myself") and a clause right before it that hands the words to someone
else ("he said, they should all be shot"), which counts as a quotation; and, for rules that name them,
a clause beside a bare wish that makes it hyperbole ("i want to die, my team lost again"). A negated
explicit wish to die keeps a soft mark; every other negated match counts for nothing.

Context words belong to a language: Spanish "no" negates a Spanish rule, Polish "w" ("in") is not
Japanese laughter. Only laughter crosses languages, through the English list (``lol``, ``haha``, ``xd``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.detectors.normalize import Clause
from bot.detectors.rules import LanguageData, Rule

__all__ = ["ContextWords", "Verdict", "judge"]

NEGATION_REACH = 3  # words before the match that a negator may stand in ("i would never ...")
COMPACT_NEGATION_REACH = 2  # characters, for scripts without spaces ("不想死")
UNIVERSAL = "en"  # whose laughter counts in every language


def _substrings(words: frozenset[str]) -> re.Pattern[str] | None:
    """One alternation for the words a script without spaces carries inside its clauses."""
    inner = sorted((w for w in words if not w.isascii()), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, inner))) if inner else None


@dataclass(frozen=True, slots=True)
class ContextWords:
    """The context words of one language (plus the universal laughter)."""

    negators: frozenset[str]
    scope_breaks: frozenset[str]
    jokes: frozenset[str]
    conditionals: frozenset[str]
    subjects: frozenset[str]
    neg_raisers: frozenset[str]
    ability: frozenset[str]
    reporting: frozenset[str]
    first_person: frozenset[str]
    second_person: frozenset[str]
    negator_re: re.Pattern[str] | None  # for compact rules: negators as substrings
    joke_re: re.Pattern[str] | None
    conditional_re: re.Pattern[str] | None

    @classmethod
    def of(cls, lang: LanguageData | None, universal: LanguageData | None) -> ContextWords:
        own_jokes = lang.jokes if lang else frozenset()
        jokes = own_jokes | (universal.jokes if universal else frozenset())
        negators = lang.negators if lang else frozenset()
        conditionals = lang.conditionals if lang else frozenset()
        return cls(
            negators,
            lang.scope_breaks if lang else frozenset(),
            jokes,
            conditionals,
            lang.subjects if lang else frozenset(),
            lang.neg_raisers if lang else frozenset(),
            lang.ability if lang else frozenset(),
            lang.reporting if lang else frozenset(),
            lang.first_person if lang else frozenset(),
            lang.second_person if lang else frozenset(),
            _substrings(negators),
            _substrings(own_jokes),
            _substrings(conditionals),
        )

    @classmethod
    def per_language(cls, languages: Mapping[str, LanguageData]) -> dict[str, ContextWords]:
        universal = languages.get(UNIVERSAL)
        return {code: cls.of(lang, universal) for code, lang in languages.items()}


@dataclass(frozen=True, slots=True)
class Verdict:
    level: str | None  # the rule's level after context; None = the match does not count
    why: str = ""  # "negated", "quoted", "joke", "conditional", "idiom" (for tests and debugging)


def _start_token(clause_text: str, start: int) -> int:
    return clause_text.count(" ", 0, start) - 1


def _negated(tokens: Sequence[str], first: int, words: ContextWords) -> bool:
    if first < len(tokens) and tokens[first] in words.subjects:
        # "tired of insomnia, i would rather be dead": the match has its own subject, so an earlier
        # negator negates an earlier verb; only a neg-raising verb carries it over ("i do not really
        # think i want to").
        before = tokens[max(0, first - NEGATION_REACH) : first]
        return bool(before) and before[-1] in words.neg_raisers and any(t in words.negators for t in before)
    for i in range(first - 1, max(-1, first - 1 - NEGATION_REACH), -1):
        if tokens[i] in words.scope_breaks:
            return False
        if tokens[i] in words.negators:
            # "can not kill myself" denies the ability, not the wish: it does not cancel the match.
            return not (i > 0 and tokens[i - 1] in words.ability and i == first - 1)
    return False


def _compact_negated(compact: str, start: int, words: ContextWords) -> bool:
    if words.negator_re is None:
        return False
    return words.negator_re.search(compact, max(0, start - COMPACT_NEGATION_REACH), start) is not None


def _negated_verdict(rule: Rule) -> Verdict:
    # "I would never end my life" is said where suicide is the topic: a soft mark, never a card.
    # A negated threat or a negated plain-words cue is nothing.
    if rule.kind == "self_harm" and rule.level == "likely":
        return Verdict("possible", "negated")
    return Verdict(None, "negated")


def _reported(clause: Clause, before: Clause | None, words: ContextWords) -> bool:
    """The clause before ends in a verb of saying whose speaker is not the writer ("my uncle said,",
    "sie schrieb:"), and what follows is not said to the writer: someone else's words, as if quoted.
    "i said, ..." stays the writer's own, and "he said, i will kill you" is a threat the writer received."""
    if before is None or not before.tokens or before.tokens[-1] not in words.reporting:
        return False
    if any(t in words.first_person for t in before.tokens):
        return False
    return not any(t in words.second_person for t in clause.tokens)


def _hyperbole_beside(rule: Rule, clause: Clause, before: Clause | None, after: Clause | None) -> bool:
    """The clause is only the rule's ``alone`` phrase ("ugh i want to die") and a neighbour names what
    makes it hyperbole ("my team lost again")."""
    if rule.alone is None or rule.beside is None or rule.alone.search(clause.text) is None:
        return False
    return any(n is not None and rule.beside.search(n.text) is not None for n in (before, after))


def is_laughter(clause: Clause | None, words: ContextWords) -> bool:
    return clause is not None and all(t in words.jokes for t in clause.tokens)


def _has(clause: Clause, vocabulary: frozenset[str], pattern: re.Pattern[str] | None) -> bool:
    if any(t in vocabulary for t in clause.tokens):
        return True
    return clause.cjk and pattern is not None and pattern.search(clause.compact) is not None


def judge(
    rule: Rule,
    clause: Clause,
    start: int,
    end: int,
    words: ContextWords,
    *,
    before: Clause | None = None,
    after: Clause | None = None,
    idiom: bool | None = None,
) -> Verdict:
    """How one match of ``rule`` in ``clause`` (``start``/``end`` offsets in ``clause.text`` or
    ``clause.compact``) counts in its context; ``before``/``after`` are the neighbouring clauses.

    ``idiom`` is whether the rule's ``unless`` matches the clause, when the caller knows it already:
    it is the same for every match of the rule in the clause, and searching for it is costly."""
    tokens = clause.tokens
    if idiom is None:
        idiom = (
            rule.unless is not None
            and rule.unless.search(clause.compact if rule.compact else clause.text) is not None
        )
    if idiom or _hyperbole_beside(rule, clause, before, after):
        return Verdict(None, "idiom")
    if rule.compact:
        if rule.negatable and _compact_negated(clause.compact, start, words):
            return _negated_verdict(rule)
        first, last = 0, len(tokens)
    else:
        first = _start_token(clause.text, start)
        last = max(first + 1, _start_token(clause.text, end))
        if rule.negatable and _negated(tokens, first, words):
            return _negated_verdict(rule)
    if rule.quotable and (
        (any(clause.quoted[first:last]) and all(clause.quoted[first:last]))
        or _reported(clause, before, words)
    ):
        # Someone else's words: a quoted or denounced threat is not the writer's, a quoted wish to die
        # may still be about the writer, so it keeps a soft mark.
        if rule.kind != "self_harm":
            return Verdict(None, "quoted")
        return Verdict("possible", "quoted")
    if rule.level == "weak" and _has(clause, words.jokes, words.joke_re):
        return Verdict(None, "joke")  # a symptom said laughing is not counted towards a cluster
    if rule.level == "likely":
        if is_laughter(after, words) or _has(clause, words.jokes, words.joke_re):
            return Verdict("possible", "joke")
        conditional_before = (
            before is not None and bool(before.tokens) and before.tokens[0] in words.conditionals
        )
        if not rule.conditional_form and (
            conditional_before or _has(clause, words.conditionals, words.conditional_re)
        ):
            return Verdict("possible", "conditional")
    return Verdict(rule.level)
