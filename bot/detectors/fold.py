"""Character folding, steps 1–3 of the normalisation shared by every detector (see ``normalize.py``).

1. NFKC (full-width and stylised letters become plain ones), then every format character (Unicode
   category Cf: zero-width spaces and joiners, U+2063, U+180E, ...) and other default-ignorable
   characters (U+034F, variation selectors, Hangul fillers) are dropped; every Unicode space becomes
   a space and every line separator (U+0085, U+2028, U+2029, CR, VT, FF) a line break.
2. Look-alike letters are folded to Latin with Unicode's confusables data (as shipped by the
   ``confusable_homoglyphs`` package) — only inside words that mix Latin with other letters, or in
   messages written mostly in Latin letters, so Russian or Greek text stays Russian or Greek.
3. Latin letters lose their accents; everything is casefolded; typographic quotes become ASCII.

Each step is one translation or one scan of the text, so folding is linear in its length.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from importlib import resources
from types import MappingProxyType

__all__ = ["char_class", "fold_text", "format_characters"]

# Characters that render as nothing but are not category Cf (Unicode's Default_Ignorable_Code_Point).
_IGNORABLE_EXTRA = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
)
_QUOTES = MappingProxyType(
    str.maketrans(
        {
            "\u2018": "'",
            "\u2019": "'",
            "\u201b": "'",
            "\u02bc": "'",
            "\u00b4": "'",
            "`": "'",
            "\u201c": '"',
            "\u201d": '"',
            "\u201e": '"',
            "\u201f": '"',
            "\u00ab": '"',
            "\u00bb": '"',
            "\u2033": '"',
            "\u300c": '"',
            "\u300d": '"',
            "\u300e": '"',
            "\u300f": '"',
            "\u2010": "-",
            "\u2011": "-",
            "\u2012": "-",
            "\u2013": "-",
            "\u2014": "-",
            "\u2212": "-",
        }
    )
)


# Line separators become "\n" (one is a possible broken word, two end a clause); every other Unicode
# space (NBSP, U+3000, U+1680 ...) becomes " ". Whitespace lies below U+3001, so the scan is short.
_LINE_BREAKS = "\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"
_SPACES: Mapping[int, str] = MappingProxyType(
    {
        cp: ("\n" if chr(cp) in _LINE_BREAKS else " ")
        for cp in range(0x3001)
        if chr(cp).isspace() and cp != 0x0A
    }
)
_ASCII_TABLE = MappingProxyType({**_SPACES, **_QUOTES})
# Planes where Unicode assigns format characters (0, 1 and 14). Scanning only those keeps start-up
# short; a test checks the result against a scan of every code point.
_CF_PLANES = (range(0x0000, 0x20000), range(0xE0000, 0xF0000))


@functools.cache
def _confusables() -> Mapping[str, str]:
    """Unicode confusables → ASCII letter, from the data file the ``confusable_homoglyphs`` package ships."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )

    def ascii_of(ch: str) -> str | None:
        for glyph in data.get(ch, ()):
            c = glyph["c"]
            if len(c) == 1 and c.isascii() and c.isalpha():
                return c.lower()
        return None

    table: dict[str, str] = {}
    for ch in data:
        if len(ch) != 1 or ch.isascii():
            continue
        # Lower-case look-alikes are often mapped to small capitals; their capital maps to ASCII.
        target = ascii_of(ch) or (ascii_of(ch.upper()) if len(ch.upper()) == 1 else None)
        if target:
            table[ch] = target
    return MappingProxyType(table)


def format_characters() -> frozenset[int]:
    """Every code point of category Cf, plus the other default-ignorables that render as nothing."""
    category = unicodedata.category
    cf = (cp for plane in _CF_PLANES for cp in plane if category(chr(cp)) == "Cf")
    return frozenset(cf) | _IGNORABLE_EXTRA


@functools.cache
def _full_table() -> Mapping[int, str | None]:
    """One ``str.translate`` table for non-ASCII text: format characters out, spaces, quotes, and the
    optional marks of Arabic and Devanagari spelling."""
    return MappingProxyType({**dict.fromkeys(format_characters()), **_SPACES, **_QUOTES, **_SCRIPT_SPELLING})


# Spellings that writers of a script use interchangeably, folded to one: Arabic short vowels and the
# tatweel are optional ("مَوْت" = "موت", "مـوت"), hamza seats on alef vary ("أ", "إ", "آ" -> "ا"), final
# alef maqsura / ya and taa marbuta / ha are mixed up; Devanagari candrabindu and anusvara both mark
# nasalisation ("डालूँगा" = "डालूंगा").
_SCRIPT_SPELLING: Mapping[int, str | None] = MappingProxyType(
    {
        **dict.fromkeys(range(0x064B, 0x0653)),  # fathatan ... sukun, maddah
        0x0670: None,  # superscript alef
        0x0640: None,  # tatweel
        0x0623: "\u0627",
        0x0625: "\u0627",
        0x0622: "\u0627",
        0x0671: "\u0627",
        0x0649: "\u064a",
        0x0629: "\u0647",
        0x0901: "\u0902",
    }
)


@functools.cache
def _fold_table() -> Mapping[int, str]:
    return MappingProxyType(str.maketrans(dict(_confusables())))


_FEW_RANGES = 16  # beyond this many ranges outside the Basic Multilingual Plane, a class covers them all


def char_class(chars: Iterable[int]) -> re.Pattern[str]:
    """A character class that matches these code points (and perhaps more, never fewer).

    The engine tests a character outside the Basic Multilingual Plane against such ranges one by one,
    so when there are many of them the class takes the whole of the planes beyond instead: hundreds
    of ranges made a search of plain text as slow as the translation it should spare."""
    ranges: list[list[int]] = []
    for cp in sorted(chars):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    if sum(1 for a, _ in ranges if a >= 0x10000) > _FEW_RANGES:
        ranges = [r for r in ranges if r[1] < 0x10000] + [[0x10000, 0x10FFFF]]
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


# ``str.translate`` raises and catches a KeyError for every character its table lacks, which makes it
# slow on text that needs nothing from the table (Chinese, emoji, combining marks); a search for a
# character the table may change is a fast scan, and the translation runs only when one is there.
@functools.cache
def _full_changes() -> re.Pattern[str]:
    return char_class(cp for cp, to in _full_table().items() if to != chr(cp))


@functools.cache
def _foldable() -> re.Pattern[str]:
    return char_class(_fold_table())


@functools.cache
def _fold_string() -> str:
    """The look-alike table as a string indexed by code point, up to the last look-alike: its look-ups
    cannot miss, so they raise nothing (about half a megabyte, once)."""
    table = _fold_table()
    return "".join(table.get(cp, chr(cp)) for cp in range(max(table) + 1))


def _fold_letters(t: str) -> str:
    """``t.translate(_fold_table())`` in a fraction of the time: a character past the string's end
    is out of its range, which ``str.translate`` reads as no mapping, as for a missing key."""
    return t.translate(_fold_string())


_ASCII_LETTER_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_OTHER_LETTERS = re.compile(r"[^\W\d_\x00-\x7f]+")
# A whole word holding both an ASCII letter and a non-ASCII word character, started only at a word
# boundary; each look-ahead stops at the word's end, so every word is scanned a bounded number of times.
_MIXED_WORD = re.compile(r"(?<!\w)((?=\w*?[a-zA-Z])(?=\w*?[^\W\x00-\x7f])\w++)")
# Accents on Latin letters (after NFD); marks in other scripts, such as Devanagari vowel signs, stay.
_LATIN_ACCENT = re.compile(r"(?<=[a-zA-Z])[\u0300-\u036f]+")


def _latin_letters(t: str) -> tuple[int, int]:
    """The number of ASCII letters, and of all non-ASCII characters (counted in bytes: fast)."""
    ascii_part = t.encode("ascii", "ignore")
    return len(ascii_part) - len(ascii_part.translate(None, _ASCII_LETTER_BYTES)), len(t) - len(ascii_part)


def _fold_mixed_words(t: str) -> str:
    """Look-alikes folded only inside words that mix Latin with other letters: every such word is
    translated in one call (joined by a character no word holds) instead of one call per word."""
    parts = _MIXED_WORD.split(t)  # [between, word, between, word, ..., between]
    if len(parts) == 1:
        return t
    parts[1::2] = _fold_letters("\x00".join(parts[1::2])).split("\x00")
    return "".join(parts)


def fold_text(text: str) -> str:
    """Steps 1–3 on the whole text: invisible characters out, look-alikes folded, accents off, casefolded."""
    t = text.replace("\r\n", "\n")
    if t.isascii():
        return t.translate(_ASCII_TABLE).casefold()
    t = unicodedata.normalize("NFKC", t)
    if _full_changes().search(t):
        t = t.translate(_full_table())
    # Look-alikes matter only next to Latin letters, and only where there is one to fold.
    latin, non_ascii = _latin_letters(t)
    if latin and _foldable().search(t):
        # The letters of other scripts are counted only when the count of all non-ASCII characters
        # cannot decide whether the text is mostly Latin.
        if latin > non_ascii or latin > len(t) - len(_OTHER_LETTERS.sub("", t)):
            t = _fold_letters(t)  # mostly Latin: every look-alike is a disguised Latin letter
        else:
            t = _fold_mixed_words(t)  # only words that mix Latin with other letters
    decomposed = unicodedata.normalize("NFD", t)
    stripped = _LATIN_ACCENT.sub("", decomposed)
    if stripped != decomposed:
        t = unicodedata.normalize("NFC", stripped)
    return t.casefold()
