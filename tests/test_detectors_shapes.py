"""The risk detector's shortcuts read what the rules read: a clause's shape (words no rule or context
word can tell apart made one stand-in) and the numbered requirement tests agree with the plain reading."""

from __future__ import annotations

import pytest

from bot.detectors.risk import default_detector
from bot.detectors.selection import ANY_WORD

DETECTOR = default_detector()
INDEX = DETECTOR.index
RULES = tuple(DETECTOR.rules.rules)
SAMPLES = tuple(dict.fromkeys(t for r in RULES for t in (*r.examples, *r.counter)))


def _form(text: str) -> str:
    (clause,) = DETECTOR.normalizer.clauses(text)
    return INDEX.form(clause, {}, {}).text


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("they should all die 5", f" they should all die {ANY_WORD} "),
        ("i hate my life 42", f" i hate my life {ANY_WORD} "),
        ("if i fail 5", f" if i {ANY_WORD} {ANY_WORD} "),
        ("i am 17", " i am 17 "),  # some rules read ages and dates
        ("i want to kill myself", " i want to kill myself "),  # every word is read: the clause itself
        ("never zork", f" never {ANY_WORD} "),  # a negator is a context word: it stays
        ("我想死了", " 我想死了 "),  # scripts without spaces are read by characters: never shaped
    ],
)
def test_shape_keeps_the_words_rules_read(text: str, form: str) -> None:
    assert _form(text) == form


def test_stand_in_is_read_by_nothing() -> None:
    assert not INDEX.is_read(ANY_WORD)


def _hits(text: str) -> set[tuple[str, str]]:
    return {(h.rule.id, h.level.name) for h in DETECTOR.hits(text)}


@pytest.mark.parametrize("filler", [("5", "42"), ("zork", "blorp"), ("42x", "qq9")])
def test_words_no_rule_reads_are_interchangeable(filler: tuple[str, str]) -> None:
    """Every rule's example and counter-example with an unread word added, once with each of two:
    the hits are the same, as the shapes assume."""
    one, other = filler
    assert not INDEX.is_read(one) and not INDEX.is_read(other)
    for text in SAMPLES:
        if any(c.cjk for c in DETECTOR.normalizer.clauses(text)):
            continue  # read by characters, where a word's length counts: never shaped
        words = text.split()
        for at in (0, len(words) // 2, len(words)):
            a = " ".join([*words[:at], one, *words[at:]])
            b = " ".join([*words[:at], other, *words[at:]])
            assert _hits(a) == _hits(b), (a, b)


def test_requirement_numbers_agree_with_may_match() -> None:
    checked = 0
    for text in SAMPLES:
        for clause in DETECTOR.normalizer.clauses(text):
            if clause.cjk:
                continue
            met = INDEX.met(clause)
            for rule in RULES:
                holds = INDEX.holds(rule, met)
                if holds is not None:
                    assert holds == rule.may_match(clause), (rule.id, text)
                    checked += 1
    assert checked > 10_000


def test_distinct_clauses_of_one_shape_are_read_as_one() -> None:
    """'they should all die 17. they should all die 18. ...' is one reading, whatever the count."""
    few = " ".join(f"they should all die {i}x." for i in range(5))
    many = " ".join(f"they should all die {i}x." for i in range(500))
    assert DETECTOR.assess(few) == DETECTOR.assess(many)
    assert _hits(few) == _hits(many)


def test_a_cleared_detector_reads_the_same() -> None:
    text = "they should all die 5. i hate my life 42, if i fail, i will kill myself."
    before = DETECTOR.assess(text)
    DETECTOR.clear_cache()
    assert INDEX.memoised() == 0
    assert DETECTOR.assess(text) == before
