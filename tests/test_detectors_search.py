"""``bot.detectors.search.first_matches``: a rule read pattern by pattern finds what its whole expression
finds, on every clause of the rules' own examples and counter-examples and on windows of them joined."""

from __future__ import annotations

import random
from itertools import islice

import pytest

from bot.detectors.normalize import Clause
from bot.detectors.patterns import LazyRegex
from bot.detectors.risk import MAX_MATCHES, _windows, default_detector
from bot.detectors.rules import Rule
from bot.detectors.search import first_matches
from bot.detectors.selection import WindowMemo

DETECTOR = default_detector()
SPLIT = tuple(r for r in DETECTOR.rules.rules if r.parts)
SAMPLES = [t for r in DETECTOR.rules.rules for t in (*r.examples, *r.counter)]


def _clauses() -> list[Clause]:
    # Each sample alone, and all of them shuffled into long clauses: windows in which the words of
    # several sentences meet, so that patterns match side by side and one after another.
    texts = [*SAMPLES, *(" ".join(random.Random(seed).sample(SAMPLES, 60)) for seed in range(20))]
    found = {}
    for text in texts:
        for clause in DETECTOR.normalizer.clauses(text):
            if not clause.cjk:
                found.update((w.text, w) for w in _windows(clause))
    return list(found.values())


CLAUSES = _clauses()


def _finditer(rule: Rule, hay: str) -> tuple[tuple[int, int], ...]:
    return tuple((m.start(), m.end()) for m in islice(rule.regex.finditer(hay), MAX_MATCHES))


def test_some_rules_are_read_pattern_by_pattern() -> None:
    assert any(r.id == "harm_to_others.en.violence_forms" for r in SPLIT)
    assert all(not r.compact for r in SPLIT)


@pytest.mark.parametrize("rule", SPLIT, ids=lambda r: r.id)
def test_patterns_one_by_one_match_as_the_union(rule: Rule) -> None:
    every = [part.regex for part in rule.parts]
    compared = 0
    for clause in CLAUSES:
        if not rule.may_match(clause):
            continue
        expected = _finditer(rule, clause.text)
        assert first_matches(rule.regex, every, clause.text, MAX_MATCHES) == expected, clause.text
        # What the detector searches: the patterns whose required words the clause holds.
        viable = DETECTOR.index.parts(rule, clause, WindowMemo())
        assert viable is not None
        assert first_matches(rule.regex, viable, clause.text, MAX_MATCHES) == expected, clause.text
        compared += 1
    assert compared  # its own examples at least


def test_adjacent_and_overlapping_matches() -> None:
    """A match that starts where the previous one ends, and patterns whose matches overlap: the
    union's search resumes at the end of the match it took, with the first pattern in order there."""
    whole = LazyRegex("(?<= )(?:a b |b c |a )")
    parts = [LazyRegex(" a b "), LazyRegex(" b c "), LazyRegex(" a ")]
    for hay in (" a b c a a b ", " b c a b c ", " a a a ", " x ", " a b a b "):
        expected = tuple((m.start(), m.end()) for m in whole.finditer(hay))
        assert first_matches(whole, parts, hay, 8) == expected, hay
        assert first_matches(whole, parts, hay, 2) == expected[:2], hay


def test_an_empty_match_is_read_from_the_union() -> None:
    whole = LazyRegex("(?<= )(?:(?:a )?|b )")
    parts = [LazyRegex(" (?:a )?"), LazyRegex(" b ")]
    for hay in (" b a b ", " a ", " "):
        expected = tuple((m.start(), m.end()) for m in whole.finditer(hay))
        assert first_matches(whole, parts, hay, 8) == expected, hay
