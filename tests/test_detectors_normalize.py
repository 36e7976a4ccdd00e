"""Normalisation against evasion: each disguised form reaches the same risk level and kind as its plain form.

The rule files change often, so nothing here names a rule: every evasion is compared with the detector's
own verdict on the plain phrase, which must itself be a risk signal.
"""

from __future__ import annotations

import unicodedata

import pytest

from bot.detectors import RiskLevel, assess_risk
from bot.detectors.fold import fold_text, format_characters
from bot.detectors.normalize import Normalizer
from bot.detectors.risk import default_detector

KILL = "i want to kill myself"
DIE = "i want to die"
HATE = "i hate myself"


def _bold(word: str) -> str:
    return "".join(chr(0x1D41A + ord(c) - ord("a")) for c in word)  # MATHEMATICAL BOLD SMALL A..Z


def _wide(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" for c in text)


def _strike(word: str) -> str:
    return "".join(c + "\u0336" for c in word)


EVASIONS: list[tuple[str, str]] = [
    # stretched letters, tried at one and two letters
    (DIE, "i want to dieeee"),
    (DIE, "i waaaant to die"),
    (KILL, "i want to kiiiill myself"),
    (KILL, "i want to killllll myselffff"),
    (DIE, "iiii want to diiiieeee"),
    # a line break or hyphen between words, or inside a word
    (KILL, "i want to kill\nmyself"),
    (KILL, "i want to kill-myself"),
    (KILL, "i want to ki-\nll myself"),
    (KILL, "i want to kill\r\nmyself"),
    (DIE, "i want\nto\ndie"),
    # letter spacing
    (KILL, "i want to k i l l myself"),
    (DIE, "i want to d i e"),
    (KILL, "i w a n t to k i l l m y s e l f"),
    # multi-digit and symbol leet
    (KILL, "i want to ki11 myself"),
    (DIE, "i want to d13"),
    (KILL, "i want to k!ll myself"),
    (KILL, "i want to k1ll mys3lf"),
    (KILL, "i w4nt t0 k|ll mys3lf"),
    (KILL, "1 want to k1ll my$elf"),
    # Cyrillic and Greek look-alike letters
    (KILL, "i want to \u043aill myself"),  # Cyrillic к
    (DIE, "\u0456 want to d\u0456e"),  # Cyrillic і
    (KILL, "i want to k\u0456ll myself"),
    (KILL, "i w\u0430nt t\u043e kill mys\u0435lf"),  # Cyrillic а о е
    (DIE, "i want to d\u03b9e"),  # Greek iota
    # invisible characters
    (KILL, "i want to k\u200bill myself"),
    (KILL, "i want to ki\u2063ll myself"),
    (KILL, "i want to ki\u034fll myself"),
    (KILL, "i want to k\u180eill myself"),
    (KILL, "i want to \ufeffkill myself"),
    (KILL, "i want to ki\u00adll myself"),
    (KILL, "i want to ki\ufe0fll mys\ufe0eelf"),
    (KILL, "i want to k\u200dill my\u200dself"),
    # full-width and mathematical letters, mixed case
    (KILL, _wide(KILL)),
    (KILL, f"i want to {_bold('kill')} myself"),
    (KILL, "I WaNt To KiLl MySeLf"),
    (DIE, "I WANT TO DIE"),
    # Unicode spaces and line separators
    (KILL, "i\u00a0want\u00a0to\u00a0kill\u00a0myself"),
    (KILL, "i want to kill\u2028myself"),
    (KILL, "i want to kill\u0085myself"),
    (DIE, "i\u3000want\u2003to\u202fdie"),
    # combining marks over Latin letters
    (KILL, f"i want to {_strike('kill')} myself"),
    (DIE, "i want to di\u0301e\u0308"),
    # several at once
    (KILL, "\u0456 w\u0430nt t\u043e k\u200b1\u00adll m\u0443s3lf"),
    (HATE, "i h4te mys3lf"),
    (HATE, "i h\u0430te m\u0443self"),
    (HATE, "i haaaate myselfff"),
    (HATE, "i h a t e myself"),
    (HATE, "\u0456 hate\u200b myself"),
    # hashtags run words together by convention
    (DIE, "#IWantToDie"),
    (DIE, "#iwanttodie"),
    (KILL, "#IWantToKillMyself"),
]


@pytest.mark.parametrize("plain", sorted({p for p, _ in EVASIONS}))
def test_plain_forms_are_risk(plain: str) -> None:
    assert assess_risk(plain).level is not RiskLevel.NONE


@pytest.mark.parametrize(("plain", "evasion"), EVASIONS, ids=[ascii(e)[:40] for _, e in EVASIONS])
def test_evasion_reaches_plain_level(plain: str, evasion: str) -> None:
    want, got = assess_risk(plain), assess_risk(evasion)
    assert (got.level, got.kind) == (want.level, want.kind)


def test_at_least_forty_evasions() -> None:
    assert len(EVASIONS) >= 40


THREAT = "i will kill you"


@pytest.mark.parametrize(
    "evasion",
    ["i will k1ll you", "i w\u0456ll kiiill you", "i will k i l l you", "i will ki\u200bll y\u043eu"],
)
def test_threat_evasions(evasion: str) -> None:
    want = assess_risk(THREAT)
    if want.level is RiskLevel.NONE:
        pytest.skip("the threat rules do not cover the plain form yet")
    got = assess_risk(evasion)
    assert (got.level, got.kind) == (want.level, want.kind)


# -- fold_text and Normalizer on their own -------------------------------------------------------------


def test_fold_keeps_other_scripts() -> None:
    assert fold_text("Я хочу умереть") == "я хочу умереть"
    assert fold_text("Θέλω να πεθάνω") == "θέλω να πεθάνω"
    assert fold_text("我想死") == "我想死"


def test_fold_latin_accents_and_case() -> None:
    assert fold_text("Je veux MOURIR, ça suffit") == "je veux mourir, ca suffit"
    assert fold_text("quiero morir mañana") == "quiero morir manana"


def test_fold_look_alikes_only_in_mixed_words_of_foreign_text() -> None:
    # Mostly Cyrillic: a Latin-looking Cyrillic word stays Cyrillic; a mixed word is folded.
    assert fold_text("это кот") == "это кот"
    assert "kill" in fold_text("это \u043aill")


def test_fold_drops_invisible_and_maps_spaces() -> None:
    assert fold_text("a\u200bb\u2063c\u034fd\u180ee\ufefff") == "abcdef"
    assert fold_text("a\u00a0b\u3000c\u2028d\u0085e") == "a b c\nd\ne"


def test_format_characters_cover_every_cf() -> None:
    everything = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cf"}
    assert everything <= format_characters()


def _normalizer() -> Normalizer:
    return default_detector().normalizer


def _tokens(text: str) -> list[tuple[str, ...]]:
    return [c.tokens for c in _normalizer().clauses(text)]


def test_numbers_and_commands_untouched() -> None:
    assert _tokens("kill -9 1234") == [("kill", "9", "1234")]
    assert _tokens("error 404") == [("error", "404")]
    assert _normalizer().flat("kill -9 now") == "kill -9 now"


@pytest.mark.parametrize(
    "text", ["this bug is killing me", "kill -9 the worker", "the build died", "error 404 on /d13"]
)
def test_workplace_stays_none(text: str) -> None:
    assert assess_risk(text).level is RiskLevel.NONE


def test_exclamation_still_ends_a_clause() -> None:
    assert _tokens("wow! i want to die") == [("wow",), ("i", "want", "to", "die")]
    assert _tokens("k!ll myself") == [("kill", "myself")]


def test_letter_spacing_needs_vocabulary() -> None:
    assert _tokens("k i l l myself") == [("kill", "myself")]
    assert _tokens("x q z") == [("x", "q", "z")]


def test_hyphen_join_only_when_halves_are_not_words() -> None:
    assert _tokens("ki-\nll") == [("kill",)]
    assert _tokens("kill-myself") == [("kill", "myself")]


def test_repeated_text_gives_identical_clauses() -> None:
    n = _normalizer()
    first = list(n.clauses("i want to d13. ok"))
    n.clear_cache()
    assert list(n.clauses("i want to d13. ok")) == first


@pytest.mark.parametrize(
    ("plain", "variant"),
    [
        ("أريد أن أموت", "أُرِيدُ أَنْ أَمُوتَ"),  # Arabic short vowels are optional
        ("أريد أن أموت", "اريد ان اموت"),  # hamza seats left off, as often typed
        ("أريد أن أموت", "أريـــد أن أمـــوت"),  # tatweel stretching
        ("मैं मरना चाहता हूँ", "मैं मरना चाहता हूं"),  # candrabindu and anusvara
    ],
)
def test_optional_script_spellings_reach_the_same_level(plain: str, variant: str) -> None:
    expected = assess_risk(plain)
    assert expected.level is RiskLevel.LIKELY
    assert assess_risk(variant).level is expected.level
