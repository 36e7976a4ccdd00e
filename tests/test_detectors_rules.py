"""The rule tables under ``bot/detectors/data``: every rule carries its own examples, and this runs them.

Each example must reach its rule's level through the whole detector (normalisation, context and all);
each counter-example must stay below it. The pattern compiler and the anchor prefilter are tested on
their own too: the prefilter is an optimisation and may never hide a match.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.detectors.patterns import PatternError
from bot.detectors.risk import RiskDetector, RiskLevel, default_detector
from bot.detectors.rules import Rule, load_rule_files

DETECTOR = default_detector()
RULES: list[Rule] = list(DETECTOR.rules.rules)


def _level(rule: Rule) -> RiskLevel:
    return RiskLevel.LIKELY if rule.level == "likely" else RiskLevel.POSSIBLE


def _rule_level(rule: Rule, text: str) -> RiskLevel:
    return max((h.level for h in DETECTOR.hits(text) if h.rule.id == rule.id), default=RiskLevel.NONE)


EXAMPLES = [(r, ex) for r in RULES for ex in r.examples]
COUNTERS = [(r, ex) for r in RULES for ex in r.counter]


def test_every_language_and_kind_has_rules() -> None:
    kinds = {(r.kind, r.lang) for r in RULES}
    assert ("self_harm", "en") in kinds
    assert ("harm_to_others", "en") in kinds
    assert len({lang for _, lang in kinds}) >= 10


@pytest.mark.parametrize(("rule", "text"), EXAMPLES, ids=lambda x: x.id if isinstance(x, Rule) else x[:40])
def test_examples_reach_their_rules_level(rule: Rule, text: str) -> None:
    assert _rule_level(rule, text) >= _level(rule), f"{rule.id}: {text!r}"


@pytest.mark.parametrize(("rule", "text"), COUNTERS, ids=lambda x: x.id if isinstance(x, Rule) else x[:40])
def test_counter_examples_stay_below_their_rules_level(rule: Rule, text: str) -> None:
    assert _rule_level(rule, text) < _level(rule), f"{rule.id}: {text!r}"


def test_every_rule_names_its_family_and_has_examples() -> None:
    for rule in RULES:
        assert rule.family.strip(), rule.id
        assert rule.examples, rule.id
        assert re.fullmatch(r"[a-z_]+\.[a-z]{2}\.[a-z0-9_]+", rule.id), rule.id


def _file(body: str) -> list[tuple[str, str]]:
    return [("lang.xx.toml", 'lang = "xx"\n[macros]\nme = ["i", "i really"]\n'), ("t.xx.toml", body)]


def test_pattern_syntax_compiles_to_word_bounded_regexes() -> None:
    rules = load_rule_files(
        _file(
            'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\nlevel = "likely"\n'
            'patterns = ["{me} (want|wish) to [just] die ...1 now $", "kill* myself", "_ ends"]\n'
            'examples = ["x"]\n'
        )
    )
    (rule,) = rules.rules
    assert rule.regex.search(" i really want to just die right now ")
    assert rule.regex.search(" i wish to die now ")
    assert not rule.regex.search(" i want to die now please ")  # "$": the clause must end there
    assert not rule.regex.search(" hi want to die now ")  # words, not substrings
    assert rule.regex.search(" killing myself ")
    assert rule.regex.search(" it ends ")


@pytest.mark.parametrize(
    "body",
    [
        'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\npatterns = ["(open"]\nexamples = ["x"]\n',
        'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\npatterns = ["{nope}"]\nexamples = ["x"]\n',
        'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\npatterns = ["die"]\n',
        'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\nlevel = "maybe"\npatterns = ["die"]\n'
        'examples = ["x"]\n',
        # a clause read alone needs the neighbour that makes it hyperbole, and the other way round
        'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\npatterns = ["die"]\nwhen_alone = ["die $"]\n'
        'examples = ["x"]\n',
    ],
)
def test_bad_rule_files_fail_loudly(body: str) -> None:
    with pytest.raises(PatternError):
        load_rule_files(_file(body))


def test_a_bare_clause_beside_its_neighbour_is_read_from_the_clause_start() -> None:
    rules = load_rule_files(
        _file(
            'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\nlevel = "likely"\n'
            'patterns = ["{me} want to die"]\nwhen_alone = ["{me} want to die $"]\n'
            'unless_beside = ["rain"]\nexamples = ["x"]\n'
        )
    )
    (rule,) = rules.rules
    assert rule.alone is not None and rule.beside is not None
    assert rule.alone.search(" i really want to die ")
    assert not rule.alone.search(" so i want to die ")  # from the clause's first word
    assert not rule.alone.search(" i want to die today ")  # to its end
    assert rule.beside.search(" the rain again ")


_WORDS = sorted({w for r in RULES if not r.compact for ex in (*r.examples, *r.counter) for w in ex.split()})
# Scripts without spaces: pieces of the compact rules' own examples, joined in random orders.
_PIECES = sorted(
    {ex[i : i + n] for r in RULES if r.compact for ex in r.examples for n in (2, 3) for i in range(len(ex))}
)


def _prefilter_holds(text: str) -> None:
    for clause in DETECTOR.normalizer.clauses(text):
        tried = {r.id for r in DETECTOR.index.candidates(clause)}
        for rule in RULES:
            if rule.kind not in ("self_harm", "harm_to_others"):
                continue
            if rule.regex.search(clause.compact if rule.compact else clause.text):
                assert rule.id in tried, rule.id


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=30))
def test_the_anchor_prefilter_never_hides_a_match(words: list[str]) -> None:
    _prefilter_holds(" ".join(words))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=20))
def test_the_anchor_prefilter_never_hides_a_match_without_spaces(pieces: list[str]) -> None:
    _prefilter_holds("".join(pieces))


def test_every_compact_example_is_found_through_its_anchors() -> None:
    for rule in RULES:
        if rule.compact:
            for example in rule.examples:
                _prefilter_holds(example)


def test_pattern_words_are_folded_like_the_text() -> None:
    rules = load_rule_files(
        _file(
            'lang = "xx"\nkind = "self_harm"\n[[rule]]\nid = "a"\nlevel = "likely"\n'
            'patterns = ["ich will mich TÖTEN", "zasługują na śmierć", "Straße"]\nexamples = ["x"]\n'
        )
    )
    (rule,) = rules.rules
    assert rule.regex.search(" ich will mich toten ")
    assert rule.regex.search(" zasługuja na smierc ")  # accents off, "ł" is a letter of its own
    assert rule.regex.search(" strasse ")


def test_another_languages_contractions_do_not_hide_this_languages_words() -> None:
    """English "im" is expanded to "i am" in every message; a German rule's "im" ("in the") still matches."""
    files = [
        ("lang.en.toml", 'lang = "en"\n[expansions]\n"im" = "i am"\n'),
        ("lang.de.toml", 'lang = "de"\n'),
        (
            "t.de.toml",
            'lang = "de"\nkind = "self_harm"\n[[rule]]\nid = "a"\nlevel = "likely"\n'
            'patterns = ["nur noch schmerz im kopf"]\nexamples = ["x"]\n',
        ),
    ]
    (rule,) = load_rule_files(files).rules
    assert rule.regex.search(" nur noch schmerz i am kopf ")  # what the normaliser makes of "im"
    assert rule.regex.search(" nur noch schmerz im kopf ")


def test_an_exception_of_the_clauses_language_holds_for_the_same_rule_in_other_languages() -> None:
    """Spanish and Italian share "suicidio"; Spanish "es un suicidio" (a reckless act) is an idiom, and the
    Italian rule that matches the same word in that Spanish clause must not mark it either."""

    def rule_file(lang: str, unless: str) -> tuple[str, str]:
        return (
            f"t.{lang}.toml",
            f'lang = "{lang}"\nkind = "self_harm"\n[[rule]]\nid = "mention"\nlevel = "possible"\n'
            f'patterns = ["suicidio"]\nunless = [{unless}]\nexamples = ["x"]\n',
        )

    tables = load_rule_files(
        [
            ("lang.es.toml", 'lang = "es"\n'),
            ("lang.it.toml", 'lang = "it"\n'),
            rule_file("es", '"es un suicidio"'),
            rule_file("it", '"squadra suicida"'),
        ]
    )
    detector = RiskDetector(tables)
    assert detector.assess("salir sin casco es un suicidio").level is RiskLevel.NONE
    assert detector.assess("pienso en el suicidio").level is RiskLevel.POSSIBLE


def test_concurrent_first_uses_compile_a_pattern_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector runs in worker threads and a process's first messages arrive together: one thread
    compiles a rule's pattern, the others wait for it (compiling in each once cost seconds of CPU)."""
    import threading
    import time
    from types import SimpleNamespace

    from bot.detectors import patterns as patterns_module

    calls: list[str] = []

    def slow_compile(pattern: str) -> re.Pattern[str]:
        calls.append(pattern)
        time.sleep(0.05)  # long enough for every thread to arrive while the first compiles
        return re.compile(pattern)

    monkeypatch.setattr(patterns_module, "re", SimpleNamespace(compile=slow_compile))
    lazy = patterns_module.LazyRegex(r"(?<= )die ")
    results: list[re.Pattern[str]] = []
    threads = [threading.Thread(target=lambda: results.append(lazy.compiled())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 8 and all(r is results[0] for r in results)
