"""Every detector call does work linear in the length of its input, whatever the input's shape.

Timing assertions flake on shared machines, so this test counts work instead: every Python function
call and every call into C (each regular-expression search, ``str.translate``, dictionary look-up
method ...) made during one detector call, via ``sys.setprofile``. That count is deterministic and
machine-independent. For adversarial inputs built by repeating a unit ``n`` and ``2n`` times, the count
on ``2n`` must stay within a generous factor of twice the count on ``n``: a quadratic loop anywhere in
normalisation, rule matching or context would multiply it by four. The normaliser's memo is cleared
before each counted call, so a repeated phrase is not hidden by caching from an earlier call.

What the count cannot see is backtracking inside one regular-expression call; the patterns in
``normalize.py`` and ``rules.py`` are written so that none can backtrack more than a bounded amount
(bounded repetition, possessive word scans started at word boundaries), and ``bench/detectors.py``
measures the wall-clock time of the worst crafted inputs, which is where the 5 ms / 20 ms bounds of
issue 9 are checked. ``test_time_at_the_cap_is_bounded`` still times those inputs, against a bound
loose enough for a loaded machine (CPU time of the calling thread, best of three) and far below what
quadratic work at the cap would take.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.detectors import assess_risk, is_abusive, is_end_request
from bot.detectors.risk import default_detector

CAP = 20_000  # the engine refuses longer messages (bot/engine.py MAX_INPUT_CHARS)
DETECTORS: list[Callable[[str], object]] = [assess_risk, is_abusive, is_end_request]

PHRASES = [
    "i want to kill myself ",
    "dumb ",
    "i do not want to kill myself ",
    "kill them all ",
    "k i l l ",
    "k i l l myself ",
    "1!|",
    "k1!| ",
    "!?",
    "...",
    "-",
    '"',
    "'\"",
    '"i will kill you" ',
    "ki-\nll ",
    "kill\n",
    "kill-",
    "dieeeeeeeeeeee ",
    "\u043aill \u043c\u0443self ",
    "\u6211\u60f3\u6b7b\u4e86",
    "\u6211 \u4e0d \u60f3 \u6b7b ",
    "\U0001f602",
    "\U0001f480 lol ",
    "k\u0336",
    "k\u200bi\u200bl\u200bl ",
    "a. ",
    "x",
]
# Every kind of Unicode whitespace: spaces (NBSP, U+1680, U+2000-U+200A, U+3000 ...), line and
# paragraph separators, and the control characters Python counts as whitespace.
WHITESPACE = ["\r\n"] + [chr(cp) for cp in range(0x110000) if chr(cp).isspace()]


def work(detector: Callable[[str], object], text: str) -> int:
    """Function calls (Python and C) made by one call of ``detector`` on ``text``, memo cleared first.

    The detector first reads ``text`` uncounted: a rule's patterns are compiled the first time a
    process's words reach them, once, and that is not work per call — counted, it made this test fail
    whenever it happened to run first in its process (or a rule was first reached past the start)."""
    detector(text)
    default_detector().normalizer.clear_cache()
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        detector(text)
    finally:
        sys.setprofile(None)
    return count


def assert_linear(unit: str, n: int) -> None:
    for detector in DETECTORS:
        small, large = work(detector, unit * n), work(detector, unit * (2 * n))
        assert large <= 2.5 * small + 2_000, (detector.__name__, unit, n, small, large)


units = st.one_of(
    st.sampled_from(PHRASES),
    st.lists(st.sampled_from(WHITESPACE), min_size=1, max_size=4).map("".join),
    st.lists(st.sampled_from(PHRASES + WHITESPACE), min_size=2, max_size=4).map("".join),
    st.text(min_size=1, max_size=6),  # any code points: mixed scripts, marks, symbols
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit=units, data=st.data())
def test_work_grows_linearly(unit: str, data: st.DataObject) -> None:
    most = max(1, CAP // (2 * len(unit)))
    n = data.draw(st.integers(min_value=min(most, 200), max_value=most))
    assert_linear(unit, n)


def test_long_word_without_spaces() -> None:
    # Beyond the engine's cap, but a detector must still not be quadratic on one huge "word".
    assert_linear("a", 50_000)
    assert_linear("\u0430", 50_000)
    assert_linear("k1", 25_000)


def distinct_clauses(n: int, clause: Callable[[int], str]) -> str:
    return "".join(clause(i) for i in range(n))


# Clauses that all differ, so that no memo or repeat check hides one: two letters of mixed scripts (the
# cheapest clause there is, so the most per message), and sentences that each wake rules of the risk
# tables ("they should all die 17."), conditional ones included.
DISTINCT: list[Callable[[int], str]] = [
    lambda i: f"{chr(0x430 + i % 32)}{chr(0x61 + i // 32 % 26)}{i // 832}. ",
    lambda i: f"they should all die {i}. ",
    lambda i: f"if i fail {i}, i will kill myself. ",
    lambda i: f"i hate my life {i}, ",
]


def assert_linear_distinct(clause: Callable[[int], str]) -> None:
    n = max(1, CAP // (2 * len(clause(1000))))
    for detector in DETECTORS:
        small = work(detector, distinct_clauses(n, clause))
        large = work(detector, distinct_clauses(2 * n, clause))
        assert large <= 2.5 * small + 2_000, (detector.__name__, clause(0), n, small, large)


def test_distinct_clauses_grow_linearly() -> None:
    for clause in DISTINCT:
        assert_linear_distinct(clause)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phrase=st.lists(st.sampled_from(PHRASES), min_size=1, max_size=3).map("".join),
    end=st.sampled_from([". ", ", ", "! ", "\n\n", "; ", "\u3002"]),
)
def test_work_on_distinct_clauses_grows_linearly(phrase: str, end: str) -> None:
    assert_linear_distinct(lambda i: f"{phrase} {i}{end}")


# The rules' own examples and counter-examples: distinct real sentences that wake the rules they were
# written for (the counter-examples are near misses, none a crisis, so a message of them is read to the
# end). Joined by spaces they make long clauses, read in overlapping windows.
RULES = tuple(default_detector().rules.rules)
RULE_TEXTS = {
    "examples": [e for r in RULES for e in r.examples],
    "counter": [c for r in RULES for c in r.counter],
    "threat examples": [e for r in RULES if r.kind == "harm_to_others" for e in r.examples],
}


def joined_rule_texts(source: str, sep: str, seed: int | None = None) -> str:
    texts = RULE_TEXTS[source]
    if seed is not None:
        texts = random.Random(seed).sample(texts, len(texts))
    return sep.join(texts)[:CAP]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(sorted(RULE_TEXTS)),
    sep=st.sampled_from([". ", " ", ", ", "\n", "\n\n", " \u2028 "]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_work_on_joined_rule_examples_grows_linearly(source: str, sep: str, seed: int) -> None:
    """The whole costs about what its two halves cost apart: the halves hold different sentences (one
    may wake far more rules than the other), so the whole is compared with their sum, not with twice
    one of them; quadratic work would make it twice that sum."""
    text = joined_rule_texts(source, sep, seed)
    half = len(text) // 2
    for detector in DETECTORS:
        parts = work(detector, text[:half]) + work(detector, text[half:])
        whole = work(detector, text)
        assert whole <= 1.25 * parts + 2_000, (detector.__name__, source, sep, seed, parts, whole)


TIME_LIMIT_MS = 250.0  # the budget is 20 ms; quadratic work at the cap would take seconds


def cpu_ms(detector: Callable[[str], object], text: str) -> float:
    """CPU time of this thread for one cold call, best of three: other processes cannot inflate it."""
    best = float("inf")
    for _ in range(3):
        default_detector().normalizer.clear_cache()
        start = time.thread_time()
        detector(text)
        best = min(best, time.thread_time() - start)
    return best * 1e3


def test_time_at_the_cap_is_bounded() -> None:
    shapes = [(unit * (CAP // len(unit) + 1))[:CAP] for unit in [*PHRASES, "".join(WHITESPACE)]]
    shapes.append(distinct_clauses(CAP // 4, DISTINCT[0])[:CAP])
    shapes.append("a" * (5 * CAP))  # 100,000 characters without a space (over the cap)
    shapes.extend(joined_rule_texts(source, sep) for source in RULE_TEXTS for sep in (". ", " "))
    for text in shapes:
        for detector in DETECTORS:
            detector(text)  # compiles the patterns it reaches, once per process
            assert cpu_ms(detector, text) <= TIME_LIMIT_MS, (detector.__name__, text[:40])


def test_work_per_character_is_bounded() -> None:
    """An absolute bound too: at most ten calls per character on every phrase shape at the cap (the
    densest today is a run of Chinese self-harm phrases, about 7.5: every match is judged in context)."""
    for unit in PHRASES + WHITESPACE:
        text = (unit * (CAP // len(unit) + 1))[:CAP]
        for detector in DETECTORS:
            assert work(detector, text) <= 10 * CAP, (detector.__name__, unit)
