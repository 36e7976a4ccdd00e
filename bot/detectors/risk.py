"""Risk detector: signs that the user may harm themselves or someone else.

Two levels, with opposite priorities:

* ``POSSIBLE`` vetoes any ending of the conversation. A false alarm only keeps a thread open, a miss can
  close the door on someone in crisis, so recall matters most: plain-words distress (hopelessness,
  worthlessness, loneliness, crying, not coping ...) counts, not only the word "suicide".
* ``LIKELY`` additionally shows crisis resources at once, without waiting for the model. A helpline card
  for "this bug is killing me" would be patronising and teaches people to ignore the card, so precision
  matters most: only explicit first-person suicidal intent/plan/means, explicit self-harm, or an explicit
  first-person threat to hurt or kill a person, and never when it is negated, quoted or joked about.

Everything here is a pure function of the message text: compiled regular expressions and frozen lexicons,
no network, no mutable module state. The vocabulary comes from clinical screening language (C-SSRS style
ideation questions, hopelessness, perceived burdensomeness, thwarted belongingness, worthlessness) and from
the grammar of threats (first person + intent + violent verb + a person as the target); it is deliberately
*not* fitted to the evaluation files.
"""

from __future__ import annotations

import bisect
import enum
import importlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "HARM_TO_OTHERS",
    "SELF_HARM",
    "RiskAssessment",
    "RiskLevel",
    "assess_risk",
    "normalize_text",
]

SELF_HARM = "self_harm"
HARM_TO_OTHERS = "harm_to_others"


class RiskLevel(enum.IntEnum):
    NONE = 0
    POSSIBLE = 1  # vetoes endings
    LIKELY = 2  # also shows crisis resources immediately


@dataclass(frozen=True)
class RiskAssessment:
    level: RiskLevel
    kind: str | None  # "self_harm" | "harm_to_others" | None
    cues: tuple[str, ...]  # short cue names, never the user's text (they end up in audit logs)


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------

# Typographic apostrophes and quotes are folded to ASCII so one pattern covers phones and desktops.
_PUNCT_MAP: Mapping[int, str] = MappingProxyType(
    str.maketrans(
        {
            "\u2018": "'",
            "\u2019": "'",
            "\u02bc": "'",
            "\u00b4": "'",
            "`": "'",
            "\u201c": '"',
            "\u201d": '"',
            "\u201e": '"',
            "\u00ab": '"',
            "\u00bb": '"',
            "\u2033": '"',
            "\u2013": "-",
            "\u2014": "-",
        }
    )
)
# Zero-width characters are a common way to dodge filters and never carry meaning for us.
_ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u2060\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# "k1ll mys3lf": digits/symbols standing in for letters *inside* a word. Only between letters, so
# "kill -9" and "404" are untouched.
_LEET = re.compile(r"(?<=[a-z])[013@$](?=[a-z])")
_LEET_MAP: Mapping[int, str] = MappingProxyType(
    str.maketrans({"0": "o", "1": "i", "3": "e", "@": "a", "$": "s"})
)
# Stretched words ("sooooo", "pleeease"): three or more repeats collapse to two, which keeps real
# double letters ("kill", "feel") intact.
_STRETCH = re.compile(r"([a-z])\1{2,}")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_NEWLINES = re.compile(r"\s*\n\s*")


# Contractions and chat spellings are expanded once, so every later pattern can be written in one
# canonical form ("i am going to" rather than im/i'm/imma/gonna variants). One table and one pass keep
# this cheap on long messages.
def _expansion_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for key in ("im", "i'm", "imm"):
        table[key] = "i am"
    for key in ("imma", "ima", "i'ma", "i'mma", "im'a"):
        table[key] = "i am going to"
    for key in ("ive", "i've"):
        table[key] = "i have"
    table["i'd"] = "i would"
    table["i'll"] = "i will"
    for who in ("you", "we", "they", "he", "she", "it", "that", "there", "who"):
        table[f"{who}'ll"] = f"{who} will"
    for who in ("you", "we", "they", "he", "she", "who"):
        table[f"{who}'d"] = f"{who} would"
    for who in ("you", "we", "they", "who"):
        table[f"{who}'re"] = f"{who} are"
    for who in ("you", "we", "they", "who", "could", "would", "should", "might", "must"):
        table[f"{who}'ve"] = f"{who} have"
    for who in (
        "it",
        "that",
        "what",
        "there",
        "he",
        "she",
        "who",
        "where",
        "life",
        "everything",
        "nothing",
        "nobody",
        "everyone",
    ):
        table[f"{who}'s"] = f"{who} is"
    for aux in (
        "do",
        "does",
        "did",
        "is",
        "are",
        "was",
        "were",
        "have",
        "has",
        "had",
        "would",
        "could",
        "should",
        "must",
        "need",
    ):
        table[f"{aux}n't"] = table[f"{aux}nt"] = f"{aux} not"
    simple = {
        "will not": ("won't", "wont"),
        "can not": ("can't", "cant", "cannot"),
        "is not": ("ain't", "aint"),
        "shall not": ("shan't",),
        "going to": ("gonna", "gunna", "finna", "gona"),
        "want to": ("wanna",),
        "got to": ("gotta",),
        "have to": ("hafta",),
        "trying to": ("tryna",),
        "give me": ("gimme",),
        "do not know": ("dunno",),
        "i do not know": ("idk",),
        "let us": ("let's", "lets"),
        "you all": ("y'all", "yall"),
        "them": ("'em",),
        "you": ("u",),
        "your": ("ur",),
        "people": ("ppl",),
        "no one": ("noone",),
        "because": ("cuz", "coz", "cos"),
        "that is": ("thats",),
        "what is": ("whats",),
        "kind of": ("kinda",),
        "suicidal": ("suicidial", "suicdal", "sucidal"),
        # Common misspellings of "suicide".
        "suicide": (
            *(
                f"su{mid}{c}ide"
                for mid in ("", "i", "ic", "ci", "c")
                for c in ("c", "s")
                if f"su{mid}{c}ide" != "suicide"
            ),
            "suicied",
            "susicide",
            "suicude",
            "suicid",
            "suiced",
            "suacide",
            "suiscide",
            "suecide",
            "suicidie",
        ),
    }
    for canonical, spellings in simple.items():
        for spelling in spellings:
            table[spelling] = canonical
    return table


_EXPANSION_TABLE: Mapping[str, str] = MappingProxyType(_expansion_table())
_EXPANSION_RE = re.compile(
    r"(?<![a-z0-9])(?:"
    + "|".join(re.escape(k) for k in sorted(_EXPANSION_TABLE, key=len, reverse=True))
    + r")(?![a-z0-9])"
)
_JOINED = re.compile(
    r"\b(?:no body|my self|him self|her self|them selves|your self|over dose|over dosed)\b(?!-)"
)


def normalize_text(text: str) -> str:
    """Canonical form used by every detector: NFKC, casefolded, ASCII quotes, contractions expanded.

    Casefolding after NFKC makes the result independent of the user's capitalisation, and the
    collapsing of whitespace makes it independent of padding, so the detectors inherit both properties.
    """
    t = text if text.isascii() else unicodedata.normalize("NFKC", text)
    t = _ZERO_WIDTH.sub("", t)
    t = _CONTROL.sub(" ", t)
    t = t.translate(_PUNCT_MAP).casefold()
    t = _LEET.sub(lambda m: m.group(0).translate(_LEET_MAP), t)
    t = _STRETCH.sub(r"\1\1", t)
    t = _SPACES.sub(" ", t)
    t = _NEWLINES.sub("\n", t).strip()
    t = _JOINED.sub(lambda m: m.group(0).replace(" ", ""), t)
    return _EXPANSION_RE.sub(lambda m: _EXPANSION_TABLE[m.group(0)], t)


# --------------------------------------------------------------------------------------------------
# Prefiltered patterns
# --------------------------------------------------------------------------------------------------
# Running a hundred regular expressions over every message is what would make this slow. Each pattern's
# *required literals* (strings at least one of which must occur in any match) are computed once from
# the pattern's parse tree; a plain substring test then skips most patterns for most messages. The
# extraction is conservative: whenever it is unsure it returns None and the pattern always runs.
_sre_parser: Any
_sre_constants: Any
try:
    _sre_parser = importlib.import_module("re._parser")
    _sre_constants = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python < 3.11 layout
    _sre_parser = _sre_constants = None


_WORD_RUN = re.compile(r"\w+")
_NON_WORD = re.compile(r"\W")


@dataclass(frozen=True, slots=True)
class _Req:
    """What any match must contain: one of ``words`` as a whole token, or one of ``subs`` as a substring."""

    words: frozenset[str]
    subs: frozenset[str]

    def cost(self) -> tuple[int, int, int]:
        # Token look-ups are nearly free, substring scans are not; long words are more selective.
        shortest = min((len(w) for w in self.words), default=0)
        return (len(self.subs), -shortest, len(self.words))


def _required(pattern: str) -> _Req | None:
    if _sre_parser is None:  # pragma: no cover
        return None
    try:
        return _req_of(list(_sre_parser.parse(pattern)), left=False, right=False)
    except Exception:  # pragma: no cover - an unknown node type: no prefilter, still correct
        return None


def _optional(op: Any, av: Any) -> bool:
    c = _sre_constants
    return op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] == 0


def _edge(op: Any, av: Any, *, end: bool) -> bool:
    """Does this element always start (end=False) or end (end=True) with a word boundary?"""
    c = _sre_constants
    if op is c.AT:
        return av in (c.AT_BOUNDARY, c.AT_BEGINNING, c.AT_BEGINNING_STRING, c.AT_END, c.AT_END_STRING)
    if op is c.LITERAL:
        return _NON_WORD.match(chr(av)) is not None
    if op is c.IN:
        return bool(av) and all(
            (item_op is c.LITERAL and _NON_WORD.match(chr(v)) is not None)
            or (item_op is c.CATEGORY and v is c.CATEGORY_SPACE)
            for item_op, v in av
        )
    if op is c.SUBPATTERN:
        return _seq_edge(list(av[3]), end=end)
    if op is c.BRANCH:
        return all(_seq_edge(list(branch), end=end) for branch in av[1])
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        return _seq_edge(list(av[2]), end=end)
    return False


def _seq_edge(seq: list[tuple[Any, Any]], *, end: bool) -> bool:
    order = reversed(seq) if end else iter(seq)
    for op, av in order:
        if not _edge(op, av, end=end):
            return False
        if not _optional(op, av):
            return True
    return False  # possibly empty: unknown, so not a boundary


def _run_req(run: str, left: bool, right: bool) -> _Req:
    best = ""
    for m in _WORD_RUN.finditer(run):
        if (m.start() > 0 or left) and (m.end() < len(run) or right) and len(m.group(0)) > len(best):
            best = m.group(0)
    if best:
        return _Req(frozenset({best}), frozenset())
    return _Req(frozenset(), frozenset({run}))


_MAX_EXPANSION = 256


def _expand(seq: list[tuple[Any, Any]]) -> list[str] | None:
    """All strings a literal-only sequence can match (None when not literal-only or too many)."""
    c = _sre_constants
    out = [""]
    for op, av in seq:
        options: list[str] | None
        if op is c.LITERAL:
            options = [chr(av)]
        elif op is c.IN and av and all(item_op is c.LITERAL for item_op, _ in av):
            options = [chr(v) for _, v in av]
        elif op is c.SUBPATTERN:
            options = _expand(list(av[3]))
        elif op is c.BRANCH:
            options = []
            for branch in av[1]:
                sub = _expand(list(branch))
                if sub is None:
                    return None
                options.extend(sub)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            inner = _expand(list(av[2]))
            options = None if inner is None else ["", *inner]
        else:
            return None
        if options is None or len(out) * len(options) > _MAX_EXPANSION:
            return None
        out = [a + b for a in out for b in options]
    return out


def _req_of(seq: list[tuple[Any, Any]], *, left: bool, right: bool) -> _Req | None:
    c = _sre_constants
    candidates: list[_Req] = []
    n = len(seq)

    def left_of(k: int) -> bool:
        for j in range(k - 1, -1, -1):
            op, av = seq[j]
            if not _edge(op, av, end=True):
                return False
            if not _optional(op, av):
                return True
        return left

    def right_of(k: int) -> bool:
        for j in range(k + 1, n):
            op, av = seq[j]
            if not _edge(op, av, end=False):
                return False
            if not _optional(op, av):
                return True
        return right

    k = 0
    while k < n:
        # The longest run of elements that expands to a small set of literal strings ("di(?:e|ed|ying)").
        best_end = k
        strings: list[str] | None = None
        for end in range(k + 1, n + 1):
            expanded = _expand(seq[k:end])
            if expanded is None:
                break
            best_end, strings = end, expanded
        if strings is not None and all(strings):
            reqs = [_run_req(x, left_of(k), right_of(best_end - 1)) for x in strings]
            candidates.append(
                _Req(frozenset().union(*(r.words for r in reqs)), frozenset().union(*(r.subs for r in reqs)))
            )
        if strings is not None:
            k = best_end
            continue
        op, av = seq[k]
        sub: _Req | None = None
        if op is c.SUBPATTERN:
            sub = _req_of(list(av[3]), left=left_of(k), right=right_of(k))
        elif op is c.BRANCH:
            parts = [_req_of(list(branch), left=left_of(k), right=right_of(k)) for branch in av[1]]
            if all(part is not None for part in parts):
                sub = _Req(
                    frozenset().union(*(p.words for p in parts if p is not None)),
                    frozenset().union(*(p.subs for p in parts if p is not None)),
                )
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            single = av[1] == 1
            sub = _req_of(list(av[2]), left=left_of(k), right=single and right_of(k))
        if sub is not None:
            candidates.append(sub)
        k += 1
    if not candidates:
        return None
    return min(candidates, key=_Req.cost)


def _tokens(text: str) -> frozenset[str]:
    return frozenset(_WORD_RUN.findall(text))


class _Rx:
    """A compiled pattern with a cheap prefilter (required tokens or substrings). Immutable."""

    __slots__ = ("fast", "regex", "req")

    def __init__(self, pattern: str) -> None:
        self.regex: re.Pattern[str] = re.compile(pattern)
        self.req: _Req | None = _required(pattern)
        # A leading \b stops the regex engine from skipping ahead to candidate positions (a twentyfold
        # slowdown); search without it and check the boundary by re-matching the full pattern there.
        lead_boundary = pattern.startswith("\\b") and len(_split_alternatives(pattern)) == 1
        self.fast: re.Pattern[str] | None = re.compile(pattern[2:]) if lead_boundary else None

    def iter(self, text: str, start: int = 0, end: int | None = None) -> Iterator[re.Match[str]]:
        """Exactly ``regex.finditer(text, start, end)``, faster."""
        stop = len(text) if end is None else end
        if self.fast is None:
            yield from self.regex.finditer(text, start, stop)
            return
        pos = start
        while pos <= stop:
            candidate = self.fast.search(text, pos, stop)
            if candidate is None:
                return
            at = candidate.start()
            m = self.regex.match(text, at, stop)
            if m is None:
                pos = at + 1
                continue
            yield m
            pos = m.end() if m.end() > at else at + 1

    def possible(self, text: str, tokens: frozenset[str] | None = None) -> bool:
        req = self.req
        if req is None:
            return True
        if req.words:
            if tokens is not None:
                if not req.words.isdisjoint(tokens):
                    return True
            elif any(w in text for w in req.words):
                return True
        return any(sub in text for sub in req.subs)

    def possible_in(self, text: str, start: int, end: int, tokens: frozenset[str]) -> bool:
        """``possible`` for the slice ``text[start:end]`` whose words are ``tokens``."""
        req = self.req
        if req is None or not req.words.isdisjoint(tokens):
            return True
        return any(text.find(sub, start, end) != -1 for sub in req.subs)

    def scan(self, doc: _Doc) -> Iterator[re.Match[str]]:
        """All matches in the document, running the regex only on chunks that pass the prefilter."""
        text = doc.text
        for start, end, tokens in doc.chunks:
            if self.possible_in(text, start, end, tokens):
                yield from self.iter(text, start, end)

    def search(
        self, text: str, pos: int = 0, endpos: int | None = None, *, tokens: frozenset[str] | None = None
    ) -> re.Match[str] | None:
        if not self.possible(text, tokens):
            return None
        return next(self.iter(text, pos, endpos), None)

    @property
    def pattern(self) -> str:
        return self.regex.pattern


def _split_alternatives(pattern: str) -> list[str]:
    """Split a pattern at its top-level ``|`` (outside groups and classes)."""
    parts: list[str] = []
    depth = 0
    in_class = False
    start = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


class _RuleIndex:
    """Which patterns of a rule list can match a message, from its tokens: an inverted index built once.

    Most patterns require one of a few whole words; looking the message's words up in the index selects
    the handful worth running, instead of testing every pattern's prefilter in turn. Entries are
    ``(rule, alternative)`` pairs.
    """

    __slots__ = ("always", "by_sub", "by_word")

    def __init__(self, rules: Iterable[tuple[_Rx, ...]]) -> None:
        by_word: dict[str, list[tuple[int, int]]] = {}
        by_sub: list[tuple[str, tuple[int, int]]] = []
        always: list[tuple[int, int]] = []
        for r, alternatives in enumerate(rules):
            for a, rx in enumerate(alternatives):
                req = rx.req
                if req is None:
                    always.append((r, a))
                    continue
                for word in req.words:
                    by_word.setdefault(word, []).append((r, a))
                by_sub.extend((sub, (r, a)) for sub in req.subs)
        self.always: tuple[tuple[int, int], ...] = tuple(always)
        self.by_word: Mapping[str, tuple[tuple[int, int], ...]] = MappingProxyType(
            {w: tuple(v) for w, v in by_word.items()}
        )
        self.by_sub: tuple[tuple[str, tuple[int, int]], ...] = tuple(by_sub)

    def candidates(self, text: str, start: int, end: int, tokens: frozenset[str]) -> set[tuple[int, int]]:
        found = set(self.always)
        by_word = self.by_word
        for token in tokens:
            hit = by_word.get(token)
            if hit is not None:
                found.update(hit)
        for sub, key in self.by_sub:
            if key not in found and text.find(sub, start, end) != -1:
                found.add(key)
        return found

    def spans(self, doc: _Doc) -> list[tuple[tuple[int, int], int, int]]:
        """``((rule, alternative), start, end)`` to run, in rule order, chunk by chunk."""
        out: list[tuple[tuple[int, int], int, int]] = []
        for start, end, tokens in doc.chunks:
            out.extend((key, start, end) for key in self.candidates(doc.text, start, end, tokens))
        out.sort()
        return out


# --------------------------------------------------------------------------------------------------
# Context: quotes, clauses, negation, jokes
# --------------------------------------------------------------------------------------------------

# Double-quoted spans, and single-quoted spans whose quote marks are not apostrophes inside a word.
_QUOTE_SPAN = re.compile(
    r'"[^"\n]{1,400}"|(?<![a-z0-9])\'(?=[^\s\'])[^\'\n]{1,400}?(?<=[^\s\'])\'(?![a-z0-9])'
)
# Where a clause ends: the negation or subject of one clause must not leak into the next.
_CLAUSE_BREAK = re.compile(
    r'[.!?;:\n"()\[\]]|,|\s-+\s|\b(?:but|though|although|however|because|whereas|while|unless|until)\b'
)
_NEGATOR = re.compile(
    r"\b(?:not|never|no|nobody|nothing|neither|nor|without|hardly|barely|refuse to|no way)\b"
)
# Laughter and joke markers turn a would-be LIKELY into POSSIBLE (a friend may still be hiding
# something behind "lol", so the veto stays). "i am not joking" is the opposite, hence the lookbehind.
_JOKE = _Rx(
    r"(?<!not )(?<!no )\b(?:lol+|lmao+|lmfao+|rofl|roflmao|haha\w*|hehe\w*|jk|j/k|kidding|joking|"
    r"jokes?|xd+|/s)\b|[\U0001F602\U0001F923\U0001F606\U0001F605\U0001F61C\U0001F61D\U0001F643]"
)
_SUBJECT = re.compile(
    r"\b(?:i|we|you|he|she|they|someone|somebody|people|everyone|my (?:friend|brother|sister|mom|mother|"
    r"dad|father|son|daughter|wife|husband|partner|girlfriend|boyfriend|cousin|roommate|kid|child)|"
    r"(?:a|my|our) (?:friend|coworker|colleague|classmate|student|patient|client))\b"
)


_CHUNK_CHARS = 500
_SENTENCE_END = re.compile(r"[.!?\n]+\s*")


def _chunks(text: str, tokens: frozenset[str]) -> tuple[tuple[int, int, frozenset[str]], ...]:
    if len(text) <= 2 * _CHUNK_CHARS:
        return ((0, len(text), tokens),)
    cuts = [0]
    for m in _SENTENCE_END.finditer(text):
        if m.end() - cuts[-1] >= _CHUNK_CHARS:
            cuts.append(m.end())
    if cuts[-1] != len(text):
        cuts.append(len(text))
    return tuple((a, b, _tokens(text[a:b])) for a, b in itertools.pairwise(cuts) if b > a)


@dataclass(frozen=True, slots=True)
class _Doc:
    """One normalised message with the positional context the rules need. Built per call."""

    text: str
    tokens: frozenset[str]  # the set of \w+ words, for the patterns' prefilters
    # (start, end, words) pieces of a long text, cut at sentence ends: a pattern runs only on the pieces
    # that contain its required words. A short text is one piece.
    chunks: tuple[tuple[int, int, frozenset[str]], ...]
    quotes: tuple[tuple[int, int], ...]
    breaks: tuple[int, ...]  # start offsets of clauses
    sentences: tuple[int, ...]  # start offsets of sentences
    joking: bool

    @classmethod
    def build(cls, text: str) -> _Doc:
        tokens = _tokens(text)
        quotes = tuple(m.span() for m in _QUOTE_SPAN.finditer(text)) if ('"' in text or "'" in text) else ()
        breaks = (0, *(m.end() for m in _CLAUSE_BREAK.finditer(text)))
        joking = _JOKE.search(text, tokens=tokens) is not None
        sentences = (0, *(m.end() for m in _SENTENCE_END.finditer(text)))
        return cls(text, tokens, _chunks(text, tokens), quotes, breaks, sentences, joking)

    def sentence_span(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.sentences, pos)
        return self.sentences[i - 1], self.sentences[i] if i < len(self.sentences) else len(self.text)

    def clause_start(self, pos: int) -> int:
        return self.breaks[bisect.bisect_right(self.breaks, pos) - 1]

    def clause_end(self, pos: int) -> int:
        i = bisect.bisect_right(self.breaks, pos)
        return self.breaks[i] if i < len(self.breaks) else len(self.text)

    def before(self, pos: int) -> str:
        """Text of the current clause before ``pos``."""
        return self.text[self.clause_start(pos) : pos]

    def quote_at(self, pos: int) -> tuple[int, int] | None:
        for start, end in self.quotes:
            if start < pos < end:
                return (start, end)
        return None

    def negated_before(self, pos: int, words: int = 6) -> bool:
        """A negator among the last few words of the clause before ``pos``."""
        tail = " ".join(self.before(pos).split()[-words:])
        return _NEGATOR.search(tail) is not None

    def subject_before(self, pos: int) -> str | None:
        """The nearest subject-like word earlier in the clause (None when the clause has none)."""
        last: str | None = None
        for m in _SUBJECT.finditer(self.before(pos)):
            last = m.group(0)
        return last


# Who is speaking inside a quote: "i told him '...'" is the user's own words, "if you say '...'" and
# "saying '...' is awful" are someone else's, reported or denounced.
_FIRST_PERSON_REPORTER = _Rx(
    r"\bi (?:just |then |literally |actually )?(?:said|say|told|tell|wrote|write|texted|text|yelled|"
    r"screamed|shouted|replied|answered|warned|promised|swore|messaged)\b[^\"']{0,40}$"
)


def _quote_speaker(doc: _Doc, span: tuple[int, int]) -> str:
    """``"own"``, ``"other"`` (reported/denounced) or ``"whole"`` (the quote is the entire message)."""
    start, end = span
    outside = (doc.text[:start] + doc.text[end:]).strip(" \n.,!?;:-")
    if not outside:
        return "whole"
    if _FIRST_PERSON_REPORTER.search(doc.text[max(0, start - 60) : start]):
        return "own"
    return "other"


# Reporting and denouncing frames without quote marks: "saying you want to kill X is vile",
# "he said he would ...", "threatening to ...", "people who say ...".
_REPORT_FRAME = _Rx(
    r"\b(?:say|says|said|saying|tell|tells|telling|told|claim|claims|claiming|claimed|write|writes|wrote|"
    r"writing|post|posts|posted|posting|tweet|tweets|tweeted|chant|chants|chanting|yell|yelled|shout|"
    r"shouted|threaten|threatens|threatened|threatening|threats?|statements?|comments?|remarks?|"
    r"words like|stuff like|things like|calling for|calls for|joke about|joking about|report|reported)\b"
)
_FP_REPORT = _Rx(r"\bi (?:\w+ ){0,2}(?:said|say|told|tell|wrote|swear|swore|promise|promised|mean|meant)\b")


# --------------------------------------------------------------------------------------------------
# Lexicons for threats
# --------------------------------------------------------------------------------------------------

# People as targets. Generic, relational and role nouns, plus identity-group nouns because threats of
# group violence name the group. A target must be one of these (or a person pronoun) for a violent verb
# to count: "kill the process" and "murder a burrito" have a thing as the object.
_PERSON_NOUNS = frozenset(
    [
        "people",
        "person",
        "persons",
        "peoples",
        "human",
        "humans",
        "individual",
        "individuals",
        "guy",
        "guys",
        "man",
        "men",
        "woman",
        "women",
        "girl",
        "girls",
        "boy",
        "boys",
        "kid",
        "kids",
        "child",
        "children",
        "baby",
        "babies",
        "lady",
        "ladies",
        "gentleman",
        "gentlemen",
        "dude",
        "dudes",
        "folk",
        "folks",
        "bitch",
        "bitches",
        "bastard",
        "bastards",
        "idiot",
        "idiots",
        "moron",
        "morons",
        "asshole",
        "assholes",
        "jerk",
        "jerks",
        "boss",
        "bosses",
        "manager",
        "managers",
        "coworker",
        "coworkers",
        "co-worker",
        "co-workers",
        "colleague",
        "colleagues",
        "teammate",
        "teammates",
        "teacher",
        "teachers",
        "professor",
        "professors",
        "student",
        "students",
        "classmate",
        "classmates",
        "principal",
        "neighbor",
        "neighbors",
        "neighbour",
        "neighbours",
        "landlord",
        "landlady",
        "tenant",
        "roommate",
        "roommates",
        "flatmate",
        "wife",
        "wives",
        "husband",
        "husbands",
        "girlfriend",
        "boyfriend",
        "partner",
        "ex",
        "exes",
        "fiance",
        "fiancee",
        "spouse",
        "mom",
        "mum",
        "mother",
        "mothers",
        "dad",
        "father",
        "fathers",
        "parent",
        "parents",
        "brother",
        "brothers",
        "sister",
        "sisters",
        "sibling",
        "siblings",
        "son",
        "sons",
        "daughter",
        "daughters",
        "cousin",
        "cousins",
        "uncle",
        "aunt",
        "grandma",
        "grandmother",
        "grandpa",
        "grandfather",
        "family",
        "families",
        "friend",
        "friends",
        "stepdad",
        "stepmom",
        "stepfather",
        "stepmother",
        "in-laws",
        "cop",
        "cops",
        "police",
        "policeman",
        "policemen",
        "officer",
        "officers",
        "judge",
        "judges",
        "president",
        "senator",
        "politician",
        "politicians",
        "mayor",
        "priest",
        "priests",
        "pastor",
        "imam",
        "rabbi",
        "nurse",
        "nurses",
        "doctor",
        "doctors",
        "therapist",
        "customer",
        "customers",
        "client",
        "clients",
        "stranger",
        "strangers",
        "everyone",
        "everybody",
        "anyone",
        "anybody",
        "someone",
        "somebody",
        "others",
        "coworkers",
        "victim",
        "victims",
        "hostage",
        "hostages",
        "employee",
        "employees",
        "staff",
        "muslim",
        "muslims",
        "jew",
        "jews",
        "christian",
        "christians",
        "hindu",
        "hindus",
        "sikh",
        "sikhs",
        "buddhist",
        "buddhists",
        "atheist",
        "atheists",
        "catholic",
        "catholics",
        "protestant",
        "protestants",
        "mormon",
        "mormons",
        "arab",
        "arabs",
        "black",
        "blacks",
        "white",
        "whites",
        "asian",
        "asians",
        "latino",
        "latinos",
        "latina",
        "latinas",
        "hispanic",
        "hispanics",
        "mexican",
        "mexicans",
        "african",
        "africans",
        "indian",
        "indians",
        "chinese",
        "pakistani",
        "pakistanis",
        "immigrant",
        "immigrants",
        "migrant",
        "migrants",
        "refugee",
        "refugees",
        "foreigner",
        "foreigners",
        "gay",
        "gays",
        "lesbian",
        "lesbians",
        "homosexual",
        "homosexuals",
        "bisexual",
        "bisexuals",
        "queer",
        "queers",
        "transgender",
        "transgenders",
        "tranny",
        "trannies",
        "transsexual",
        "transsexuals",
        "trans",
        "feminist",
        "feminists",
        "liberal",
        "liberals",
        "conservative",
        "conservatives",
        "democrat",
        "democrats",
        "republican",
        "republicans",
        "leftist",
        "leftists",
        "communist",
        "communists",
        "nazi",
        "nazis",
        "fascist",
        "fascists",
        "disabled",
        "cripple",
        "cripples",
        "retard",
        "retards",
    ]
)
# Pronouns that point at people. "it", "this", "that" are deliberately absent.
_PERSON_PRONOUNS = frozenset(
    [
        "you",
        "him",
        "her",
        "them",
        "everyone",
        "everybody",
        "anyone",
        "anybody",
        "someone",
        "somebody",
        "people",
        "others",
        "us",
    ]
)
# Possessives that make a following body part a person ("break your legs", "slit their throats").
_POSSESSIVES = frozenset(["your", "his", "her", "their", "my", "our", "its"])
_BODY_PARTS = frozenset(
    [
        "throat",
        "throats",
        "neck",
        "necks",
        "head",
        "heads",
        "face",
        "faces",
        "skull",
        "skulls",
        "brain",
        "brains",
        "brains",
        "teeth",
        "jaw",
        "legs",
        "leg",
        "arms",
        "arm",
        "kneecaps",
        "knees",
        "fingers",
        "hands",
        "heart",
        "guts",
        "stomach",
        "eyes",
        "eye",
        "nose",
        "ribs",
        "back",
        "spine",
        "balls",
    ]
)
# Determiners and quantifiers that may open a target noun phrase.
_DETERMINERS = frozenset(
    [
        "the",
        "that",
        "this",
        "those",
        "these",
        "all",
        "every",
        "each",
        "some",
        "any",
        "a",
        "an",
        "my",
        "your",
        "his",
        "her",
        "their",
        "our",
        "another",
        "of",
        "single",
        "last",
        "few",
        "bunch",
        "couple",
        "lot",
        "lots",
        "many",
        "most",
        "one",
        "two",
        "three",
        "damn",
        "fucking",
        "stupid",
        "little",
    ]
)
# Nouns that make an ambiguous person word a thing: "the child process", "kill all workers" on a server.
_TECH_WORDS = frozenset(
    [
        "process",
        "processes",
        "pid",
        "pids",
        "thread",
        "threads",
        "job",
        "jobs",
        "task",
        "tasks",
        "worker",
        "workers",
        "daemon",
        "daemons",
        "server",
        "servers",
        "service",
        "services",
        "container",
        "containers",
        "pod",
        "pods",
        "node",
        "nodes",
        "vm",
        "vms",
        "instance",
        "instances",
        "session",
        "sessions",
        "query",
        "queries",
        "connection",
        "connections",
        "app",
        "apps",
        "application",
        "build",
        "builds",
        "test",
        "tests",
        "script",
        "scripts",
        "command",
        "commands",
        "signal",
        "sigkill",
        "sigterm",
        "sighup",
        "sigint",
        "port",
        "ports",
        "socket",
        "sockets",
        "tab",
        "tabs",
        "browser",
        "terminal",
        "shell",
        "docker",
        "kubectl",
        "kubernetes",
        "k8s",
        "systemctl",
        "systemd",
        "cron",
        "bug",
        "bugs",
        "feature",
        "branch",
        "branches",
        "commit",
        "commits",
        "pr",
        "merge",
        "deploy",
        "deployment",
        "pipeline",
        "ci",
        "loop",
        "function",
        "method",
        "request",
        "requests",
        "endpoint",
        "api",
        "database",
        "db",
        "cache",
        "queue",
        "event",
        "events",
        "handler",
        "callback",
        "subprocess",
        "zombie",
        "zombies",
        "orphan",
        "fork",
        "spawn",
        "cpu",
        "memory",
        "ram",
        "oom",
        "crash",
        "crashes",
        "stack",
        "exception",
        "error",
        "errors",
        "compiler",
        "code",
        "repo",
        "regex",
        "ticket",
        "program",
        "programs",
        "binary",
        "executable",
        "kernel",
        "driver",
        "drivers",
        "cluster",
        "replica",
        "replicas",
        "branch",
        "child",
        "children",
        "parent",
        "parents",
        "master",
        "slave",
        "leader",
        "follower",
        "git",
        "npm",
        "pip",
        "python",
        "java",
        "node.js",
        "redis",
        "nginx",
        "postgres",
        "mysql",
        "jenkins",
        "webpack",
        "chrome",
        "firefox",
        "vim",
        "emacs",
        "tmux",
        "screen",
        "window",
        "windows",
        "ui",
        "render",
    ]
)
# Person words that are also everyday tech words; with tech vocabulary in the message they are things.
_TECH_AMBIGUOUS_PEOPLE = frozenset(
    [
        "them",
        "it",
        "child",
        "children",
        "parent",
        "parents",
        "master",
        "slave",
        "leader",
        "follower",
        "worker",
        "workers",
        "user",
        "users",
        "client",
        "clients",
        "host",
        "guest",
        "owner",
        "owners",
        "member",
        "members",
        "peer",
        "peers",
        "agent",
        "agents",
        "driver",
        "runner",
        "manager",
        "managers",
        "killer",
        "everything",
        "all",
    ]
)
# Words after a verb that end the object phrase (and so show there is no person object).
_OBJECT_STOP = frozenset(
    [
        "for",
        "with",
        "if",
        "and",
        "or",
        "now",
        "too",
        "when",
        "tomorrow",
        "tonight",
        "today",
        "because",
        "so",
        "but",
        "again",
        "right",
        "off",
        "up",
        "down",
        "out",
        "before",
        "after",
        "in",
        "at",
        "on",
        "to",
        "from",
        "over",
        "into",
        "by",
        "later",
        "soon",
        "already",
        "first",
        "then",
        "there",
        "here",
        "myself",
        "yourself",
        "lol",
        "lmao",
        "please",
        "ok",
        "okay",
        "already",
        "all",
    ]
)

# Violent verbs. SEVERE ones with a person object make an explicit threat; MILD ones are too often
# playful ("i will destroy you at chess") to ever be more than POSSIBLE.
_SEVERE_VERBS: Mapping[str, str] = MappingProxyType(
    {
        "kill": r"kill(?:s|ing|ed)?",
        "murder": r"murder(?:s|ing|ed)?",
        "shoot": r"shoot(?:s|ing)?|shot",
        "stab": r"stab(?:s|bing|bed)?",
        "strangle": r"strangl(?:e|es|ing|ed)",
        "choke": r"chok(?:e|es|ing|ed)",
        "slaughter": r"slaughter(?:s|ing|ed)?",
        "butcher": r"butcher(?:s|ing|ed)?",
        "execute": r"execut(?:e|es|ing|ed)",
        "hang": r"hang(?:s|ing|ed)?|hung",
        "lynch": r"lynch(?:es|ing|ed)?",
        "behead": r"behead(?:s|ing|ed)?",
        "decapitate": r"decapitat(?:e|es|ing|ed)",
        "gas": r"gas(?:sing|sed)?",
        "torture": r"tortur(?:e|es|ing|ed)",
        "rape": r"rap(?:e|es|ing|ed)",
        "massacre": r"massacr(?:e|es|ing|ed)",
        "exterminate": r"exterminat(?:e|es|ing|ed)",
        "annihilate": r"annihilat(?:e|es|ing|ed)",
        "poison": r"poison(?:s|ing|ed)?",
        "drown": r"drown(?:s|ing|ed)?",
        "smother": r"smother(?:s|ing|ed)?",
        "suffocate": r"suffocat(?:e|es|ing|ed)",
        "throttle": r"throttl(?:e|es|ing|ed)",
        "hurt": r"hurt(?:s|ing)?",
        "harm": r"harm(?:s|ing|ed)?",
        "attack": r"attack(?:s|ing|ed)?",
        "assault": r"assault(?:s|ing|ed)?",
        "maim": r"maim(?:s|ing|ed)?",
        "mutilate": r"mutilat(?:e|es|ing|ed)",
        "punch": r"punch(?:es|ing|ed)?",
        "shank": r"shank(?:s|ing|ed)?",
        "gun down": r"gun(?:s|ning|ned)? down",
        "mow down": r"mow(?:s|ing|ed)? down",
        "hunt down": r"hunt(?:s|ing|ed)? down",
        "wipe out": r"wip(?:e|es|ing|ed) out",
        "eradicate": r"eradicat(?:e|es|ing|ed)",
        "burn alive": r"burn(?:s|ing|ed|t)? alive",
        "blow up": r"blow(?:s|ing)? up|blew up",
        "bomb": r"bomb(?:s|ing|ed)?",
        "slit": r"slit(?:s|ting)?",
    }
)
_MILD_VERBS: Mapping[str, str] = MappingProxyType(
    {
        "hit": r"hit(?:s|ting)?",
        "kick": r"kick(?:s|ing|ed)?",
        "slap": r"slap(?:s|ping|ped)?",
        "smack": r"smack(?:s|ing|ed)?",
        "beat": r"beat(?:s|ing|en)?",
        "bash": r"bash(?:es|ing|ed)?",
        "destroy": r"destroy(?:s|ing|ed)?",
        "eliminate": r"eliminat(?:e|es|ing|ed)",
        "get rid of": r"get(?:s|ting)? rid of|got rid of",
        "take out": r"tak(?:e|es|ing) out|took out",
        "end": r"end(?:s|ing|ed)?",
        "fight": r"fight(?:s|ing)?|fought",
        "burn": r"burn(?:s|ing|ed|t)?",
        "break": r"break(?:s|ing)?|broke",
        "snap": r"snap(?:s|ping|ped)?",
        "smash": r"smash(?:es|ing|ed)?",
        "cut": r"cut(?:s|ting)?",
        "crush": r"crush(?:es|ing|ed)?",
        "run over": r"run(?:s|ning)? over|ran over",
        "put an end to": r"put(?:s|ting)? an end to",
        "do away with": r"do(?:es|ing)? away with|did away with",
        "deal with": r"deal(?:s|ing|t)? with",
    }
)
_VERB_RE = "|".join(
    sorted(
        (f"(?:{forms})" for forms in (*_SEVERE_VERBS.values(), *_MILD_VERBS.values())), key=len, reverse=True
    )
)
_VERB_MATCHERS: tuple[tuple[str, bool, re.Pattern[str]], ...] = tuple(
    (canon, canon in _SEVERE_VERBS, re.compile(rf"(?:{forms})$"))
    for canon, forms in (*_SEVERE_VERBS.items(), *_MILD_VERBS.items())
)
# Verbs that only threaten a person through a body part ("break his legs"), never on their own
# ("break the build", "cut a release", "crush it").
_BODY_ONLY_VERBS = frozenset({"break", "snap", "smash", "cut", "crush", "slit", "bash"})
_BEAT_UP = re.compile(
    r" (?:\w+ ){1,3}?(?:up|to death|senseless|to a pulp|black and blue)\b|"
    r" the (?:shit|crap|hell|living daylights) out of\b"
)
# Verbs whose plain person object is commonly an idiom and needs a violent continuation.
_NEEDS_CONTINUATION: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {
        "beat": re.compile(
            r"^(?:up|to death|senseless|to a pulp|black and blue|the (?:shit|crap|hell) out)\b"
        ),
    }
)


def _canon_verb(form: str) -> tuple[str, bool]:
    for canon, severe, matcher in _VERB_MATCHERS:
        if matcher.match(form):
            return canon, severe
    return form, False  # pragma: no cover - every form comes from the same table


# Words that may sit between "i"/"we" and the verb: auxiliaries, intent verbs, adverbs.
_CHAIN_WORDS = (
    "will|would|shall|should|could|might|may|must|am|are|was|were|be|been|going|to|want|wants|wanted|"
    "wish|really|just|definitely|literally|seriously|actually|totally|gladly|personally|happily|finally|"
    "soon|eventually|fucking|fuckin|so|about|ready|plan|planning|planned|plans|intend|intending|on|have|"
    "had|got|need|needs|not|never|like|feel|felt|tempted|thinking|think|thought|thoughts|of|dream|"
    "dreaming|fantasize|fantasizing|fantasies|swear|promise|coming|come|and|go|truly|honestly|also|still|"
    "absolutely|badly|can|try|trying|hope|hoping|decided|determined|start|started|starting|urge|urges|"
    "the|an|a|ever|even|one|day|probably|maybe|surely|certainly|sure|make|keep|kept|imagine|imagining|"
    "considering|consider|considered|able|gonna|desire|want|love|would|sometimes|often|always|constantly"
)
_FP_CHAIN = _Rx(rf"\b(?P<subj>i|we)(?P<chain>(?: (?:{_CHAIN_WORDS})){{0,8}}?) (?P<verb>{_VERB_RE})\b")
_LET_US = _Rx(rf"\blet us (?:just |all |go |go and )?(?P<verb>{_VERB_RE})\b")
_NORMATIVE = _Rx(
    rf"\b(?P<subj>someone|somebody|people|we|you|they|everyone|anyone|nobody|no one|society|the government)"
    rf"(?: (?:really|just|seriously|all))? (?P<modal>should|must|ought to|need to|needs to|has to|have to|"
    rf"got to|could|would|will|can|is going to|are going to)(?: (?:really|just|seriously|all|finally|go and|"
    rf"go|one day|soon|eventually))? (?P<verb>{_VERB_RE})\b"
)
# "the world would be better off without X": wishing a group gone.
_BETTER_WITHOUT = _Rx(
    r"\b(?:world|we|everyone|everybody|society|this country|the country|humanity|people|earth|planet|"
    r"all of us|life) (?:would|will|is|are|could) (?:\w+ )?(?:be )?(?:better|safer|happier|cleaner|nicer)"
    r"(?: off)? (?:without|if (?:we got rid of|there were no|there was no))(?P<rest>[^.!?;\n]{1,50})"
)
_IMPERATIVE = re.compile(rf"(?:(?:just|go|now|so|please|and) )?(?P<verb>{_VERB_RE})\b")
_INTENT_WORDS = re.compile(
    r"\b(?:will|shall|going|want|wants|plan|planning|plans|intend|intending|ready|about|swear|promise|coming|"
    r"need|needs|must|decided|determined|urge|urges|gonna|got|have)\b"
)
_HYPOTHETICAL_WORDS = re.compile(
    r"\b(?:would|could|might|may|wish|like|dream|dreaming|fantasize|fantasizing|fantasies|tempted|think|"
    r"thinking|thought|thoughts|imagine|imagining|should|can|sometimes|considering|consider|considered)\b"
)
_PAST_FORM = re.compile(r"(?:ed|hung|shot|fought|broke|took out|ran over|blew up|burnt)$")

# Violence done to someone, as a past participle ("should be shot", "were eradicated").
_HARMED = (
    r"(?:killed|murdered|shot|stabbed|hanged|hung|lynched|executed|exterminated|gassed|burned|burnt|beaten|"
    r"slaughtered|butchered|wiped out|put down|eliminated|strangled|tortured|raped|beheaded|massacred|"
    r"eradicated|gunned down|blown up|bombed|drowned|poisoned|run over|annihilated|culled|"
    r"lined up and shot|put to death|burned alive|burnt alive|burned at the stake|beaten to death|"
    r"stoned to death|hacked to death|shot dead|strung up|decapitated|mutilated|skinned alive|"
    r"thrown off (?:a|the) (?:roof|building|bridge|cliff)|wiped off the (?:face of the )?(?:earth|planet|"
    r"map)|"
    r"gotten rid of|got rid of|done away with|taken out|put out of (?:their|his|her) misery)"
)
# "X should be shot", "i wish X would all get killed".
_PASSIVE_HARM = _Rx(
    r"\b(?:should|must|ought to|need to|needs to|deserve to|deserves to|have to|has to|are going to|"
    r"is going to|will|shall|would|to|could|can all|must all)(?: (?:all|just|really|be made to|finally|"
    rf"simply|each))? (?:be|get|go) {_HARMED}\b"
)
# "better off if X were eradicated", "it would be great if X got shot", "i hope X get killed".
_IF_HARMED = _Rx(
    r"\b(?:if|when|hope|hoping|wish|pray|want|see|love it if|glad if|happy if|"
    r"until)\b(?P<rest>[^.!?;\n]{1,60}?)"
    rf" (?:were|was|got|get|gets|are|is|be|would be|will be|all got|all get|all be)(?: all)? {_HARMED}\b"
)
# "if only X had their throats cut", "i want their heads smashed in".
_BODY_HARMED = _Rx(
    r"\b(?:his|her|their|your|its|them|those|these|all) (?:\w+ )?(?:throats?|necks?|heads?|skulls?|faces?|"
    r"legs?|arms?|hands?|guts|brains|eyes|teeth|tongues?|fingers) (?:cut|slit|snapped|broken|bashed in|"
    r"blown off|blown out|smashed(?: in)?|chopped off|cut off|ripped (?:out|off)|torn (?:out|off)|"
    r"gouged out|crushed|caved in|pulled out|removed)\b"
)
# "would love to see those people suffer", "can not wait to watch them burn".
_SEE_SUFFER = _Rx(
    r"\b(?:love|like|want|wish|hope|wait|enjoy|pay|glad|happy|dream|live|long|deserve) (?:\w+ )?(?:to )?"
    r"(?:see|watch|hear about|witness)(?P<rest>[^.!?;\n]{1,50}?) (?:suffer|die|dying|dead|burn|burning|bleed|"
    r"bleeding|hang|hanging|rot|perish|beg for (?:their|his|her) lives|scream|in pain|in agony|"
    rf"wiped out|{_HARMED})\b"
)
# Eliminationist tropes: "execution is the only solution for those people", "the final solution".
_SOLUTION = _Rx(
    r"\b(?:execution|extermination|genocide|death|killing them|killing|mass murder|the gas chamber|"
    r"gas chambers|a bullet|bullets|the rope|hanging|a firing squad|ethnic cleansing|the death penalty|"
    r"elimination|eradication|violence|lynching)s? (?:is|are|would be|will be|remains|seems) (?:the )?"
    r"(?:only|best|final|real|right|ideal|perfect|obvious|one true) (?:\w+ )?(?:solution|answer|way|cure|"
    r"option|fix|choice|remedy|treatment|response)(?P<rest>[^.!?;\n]{0,50})|\bfinal solution\b"
)
# Advocating violence with an infinitive: "it would be best to drown those people", "time to shoot them".
_ADVOCACY = _Rx(
    r"\b(?:best|better|good|great|nice|right|time|okay|ok|fine|necessary|needed|justified|fair|fun|interest|"
    r"interests|idea|benefit|sense|worth|priority|favou?r|"
    r"only way|only option|only solution|duty|job|mission|plan|goal|dream|pleasure|solution|answer|"
    r"(?:would|will|should|must) (?:love|like|enjoy)|happy|glad|proud|free|allowed|legal|should|"
    r"ought|want|need|hope|wish|let|gotta|got|have|has|must)\b(?P<mid>(?: \w+){0,4}?) to (?:just |finally |"
    rf"simply |all |go and |go )?(?P<verb>{_VERB_RE})\b"
)
_DENOUNCE = _Rx(
    r"\b(?:wrong|not ok|not okay|not alright|terrible|awful|horrible|evil|disgusting|vile|sick|illegal|"
    r"crime|criminal|unacceptable|inexcusable|immoral|cruel|inhuman|monstrous|abhorrent|never|not|no one|"
    r"nobody|shameful|disgraceful|hateful|bigoted|appalling|outrageous|despicable)\b"
)
_SHOULD_DIE = _Rx(
    r"\b(?:should|must|ought to|need to|needs to|deserve to|deserves to|have to|has to|are going to|"
    r"is going to|will|would)(?: (?:all|just|really|finally))? (?:die|be dead|rot|burn in hell|drop dead|"
    r"suffer and die|perish|cease to exist|be wiped off the (?:face of the )?(?:earth|planet|map))\b"
)
_WISH_DEATH = _Rx(
    r"\b(?:i|we) (?:\w+ )?(?:wish|hope|pray)\b(?: that)?(?P<rest>[^.!?;\n]{0,80}?)\b(?:die|dies|died|dead|"
    r"rot|perish|get killed|gets killed|got killed|get shot|gets shot|be shot|be killed|disappear forever|"
    r"had their throats? cut|drop dead)\b"
)
_IF_ONLY = _Rx(
    r"\bif only (?:someone|somebody|we|they|people|i) (?:would|could|will) (?:just |finally )?"
    rf"(?P<verb>{_VERB_RE})\b"
)
_DEATH_TO = _Rx(r"\b(?:death|destruction) to (?P<rest>[a-z][^.!?;\n]{0,40})")
_AT_MY_HANDS = _Rx(
    r"\b(?:die|death|suffer|perish|pay|bleed)\b[^.!?;\n]{0,40}\b(?:at|by) my (?:own )?hands?\b"
)
_MAKE_SUFFER = _Rx(
    r"\b(?:i|we)(?: (?:will|shall|am going to|are going to|want to|am gonna|promise to|swear to|"
    r"will personally|am going to personally|am about to))(?: (?:make|ensure|see to it that))"
    r"(?P<rest>[^.!?;\n]{1,50}?) (?P<what>suffer|bleed|die|pay|regret)\b"
)
_MASS_VIOLENCE = _Rx(
    r"\b(?:shoot|shooting|shot|blow|blowing|blew|bomb|bombing|burn|burning|set fire to|torch|attack|"
    r"attacking|gun down)(?: up)? (?:the|my|this|that|our|their|a|your|his|her)? ?(?:entire |whole )?"
    r"(?:school|office|workplace|work|building|church|mosque|synagogue|temple|mall|store|party|concert|"
    r"class|classroom|campus|hospital|station|airport|stadium|parade|club|bar|rally|clinic|factory|"
    r"plant|daycare)\b"
)
_BRING_WEAPON = _Rx(
    r"\b(?:bring|bringing|brought|take|taking|carry|carrying)(?: a| my| the| dad's| his| her)? "
    r"(?:gun|guns|rifle|rifles|shotgun|pistol|handgun|knife|knives|bomb|bombs|weapon|weapons|"
    r"ar-?15|ak-?47|ak|machete|explosives?)"
    r" (?:to|into|in to) (?:the |my |our |this )?(?:school|work|class|office|campus|church|mosque|"
    r"synagogue|party|meeting|mall|concert)\b"
)
_HOMICIDAL = _Rx(r"\bhomicidal\b|\bmurderous (?:thoughts|urges|rage|fantasies)\b")
_KILL_SPREE = _Rx(r"\b(?:killing|shooting|stabbing|murder) spree\b|\bmass (?:shooting|murder|killing)\b")

# A tech context turns ambiguous objects ("kill them", "kill the children") into things.
_TECH_CONTEXT = _Rx(
    r"(?:^|\s)-\d+\b|-9\b|\bsig(?:kill|term|int|hup)\b|\b(?:pkill|killall|kill -\w+|htop|ps aux|process|"
    r"processes|pid|pids|thread|threads|job|"
    r"jobs|task|tasks|worker|workers|daemon|server|servers|container|containers|pod|pods|node|nodes|"
    r"session|sessions|query|queries|connection|connections|build|builds|test|tests|script|scripts|"
    r"command|docker|kubectl|kubernetes|systemctl|cron|bug|bugs|branch|commit|deploy|pipeline|loop|"
    r"function|endpoint|api|database|cache|queue|subprocess|zombie|fork|spawn|cpu|memory|oom|crash|"
    r"crashes|crashed|exception|compiler|code|repo|regex|ticket|program|binary|kernel|cluster|replica|"
    r"git|npm|pip|terminal|shell|app|browser|tab|tabs|port|socket|signal|instance|instances|vm|"
    r"service|services|stack|dependency|dependencies|feature|features|pr|issue|issues|config|"
    r"module|plugin|library|framework|package|release|version|ui|css|html|compile|runtime|debug)\b"
)


_WORD = re.compile(r"-?[a-z0-9][a-z0-9'-]*")
_PLURAL_PEOPLE = frozenset(
    ["people", "men", "women", "children", "folk", "folks", "police", "staff", "family"]
)
_POSSESSED_LIFE = frozenset(["life", "lives", "existence", "existences", "bloodline", "bloodlines", "race"])
_OF_OWNER = frozenset(["yours", "his", "hers", "theirs"])


def _body_part_of_person(words: list[str]) -> bool:
    """ "the necks of all those X", "that neck of yours", "every X's life": a person's body or life."""
    for j, w in enumerate(words[:5]):
        if w in _BODY_PARTS or w in _POSSESSED_LIFE:
            after = words[j + 1 : j + 6]
            if after[:1] == ["of"] and (
                any(
                    a in _PERSON_NOUNS or a in _OF_OWNER or a in ("you", "them", "him", "her")
                    for a in after[1:]
                )
            ):
                return True
            if j > 0 and words[j - 1].endswith("'s") and words[j - 1][:-2] in _PERSON_NOUNS:
                return True
        if w in _OBJECT_STOP:
            return False
    return False


@dataclass(frozen=True, slots=True)
class _Target:
    kind: str  # "person" | "group" | "you" | "name" | "thing" | "self"


def _target_after(doc: _Doc, pos: int, verb: str, tech: bool) -> _Target:
    """Classify the object phrase that starts at ``pos`` (just after the verb)."""
    end = doc.clause_end(pos)
    words = _WORD.findall(doc.text[pos:end])[:8]
    if not words:
        return _Target("thing")
    w0 = words[0]
    nxt = words[1] if len(words) > 1 else ""
    rest = " ".join(words[1:])
    if w0.startswith("-"):  # a command-line flag: "kill -9 1234"
        return _Target("thing")
    if w0 in ("myself", "me"):
        return _Target("self")
    if verb in _BODY_ONLY_VERBS:
        # Only a person's body part makes these violent.
        if w0 in _POSSESSIVES and (nxt in _BODY_PARTS or (len(words) > 2 and words[2] in _BODY_PARTS)):
            return _Target("person")
        if _body_part_of_person(words):
            return _Target("person")
        if w0 in ("you", "him", "her", "them") and verb == "cut" and nxt in ("up", "open", "deep"):
            return _Target("person")
        return _Target("thing")
    if w0 in _POSSESSIVES and (nxt in _BODY_PARTS or (len(words) > 2 and words[2] in _BODY_PARTS)):
        return _Target("person")
    if _body_part_of_person(words):
        return _Target("group")
    if verb in _NEEDS_CONTINUATION and not _NEEDS_CONTINUATION[verb].match(rest) and w0 != "the":
        return _Target("thing")
    if verb == "beat" and w0 == "the" and not re.match(r"(?:shit|crap|hell|living daylights) out of", rest):
        return _Target("thing")
    if verb == "beat" and w0 == "the":
        return _Target("person")
    if w0 in _PERSON_PRONOUNS or w0 in ("ya", "yourselves", "themselves"):
        # Idioms with a person object: "shoot you an email", "hit you up", "kill them with kindness",
        # "hang out with him", "end him a link".
        if verb == "shoot" and nxt in ("a", "an", "the", "some", "over", "my", "your", "our"):
            return _Target("thing")  # "shoot you an email", "shoot him over the details"
        if verb in ("hit", "kick", "take out", "end") and nxt in (
            "up",
            "off",
            "out",
            "a",
            "an",
            "the",
            "with",
        ):
            return _Target("thing")
        if verb == "kill" and rest.startswith("with kindness"):
            return _Target("thing")
        if verb == "hang" and nxt in ("out", "up", "on", "around", "tight", "loose"):
            return _Target("thing")
        if verb == "destroy" and nxt in ("at", "in"):  # "destroy you at chess"
            return _Target("thing")
        if w0 == "her" and nxt and nxt not in _OBJECT_STOP and nxt not in _PERSON_NOUNS:
            return _Target("thing")  # "her" as a determiner: "kill her process"
        if tech and w0 in _TECH_AMBIGUOUS_PEOPLE:
            return _Target("thing")
        if w0 in ("you", "ya") and nxt in ("all", "guys", "people", "lot", "bastards", "bitches", "idiots"):
            return _Target("group")
        if w0 in ("you", "ya", "yourselves"):
            return _Target("you")
        return _Target("person")
    # A noun phrase: determiners, then up to three modifiers, then the head noun.
    i = 0
    saw_det = False
    while i < len(words) and words[i] in _DETERMINERS and i < 4:
        saw_det = True
        i += 1
    for j in range(i, min(i + 4, len(words))):
        w = words[j]
        if w in _OBJECT_STOP:
            break
        if w in ("them", "you", "us", "yourselves") and j > 0 and words[j - 1] == "of":
            # "all of them", "every one of you"
            if tech and w in _TECH_AMBIGUOUS_PEOPLE:
                return _Target("thing")
            return _Target("you" if w in ("you", "yourselves") else "group")
        if w in _TECH_WORDS and w not in _PERSON_NOUNS:
            return _Target("thing")
        if w in _PERSON_NOUNS:
            following = words[j + 1] if j + 1 < len(words) else ""
            if following in _TECH_WORDS:  # "child process", "parent node"
                return _Target("thing")
            if tech and w in _TECH_AMBIGUOUS_PEOPLE:
                return _Target("thing")
            if following in _PERSON_NOUNS and following not in _TECH_WORDS:
                continue  # "black people": keep reading to the head noun
            plural = w.endswith("s") or w in _PLURAL_PEOPLE or words[0] in ("all", "those", "these", "every")
            return _Target("group" if plural else "person")
    if not saw_det and i == 0 and (len(words) == 1 or nxt in _OBJECT_STOP):
        # A bare word ("kill dave", "stab kevin tomorrow"): probably a name, maybe a tool.
        if w0 in _OBJECT_STOP or w0 in (
            "it",
            "this",
            "that",
            "these",
            "those",
            "time",
            "everything",
            "myself",
        ):
            return _Target("thing")
        return _Target("name")
    return _Target("thing")


@dataclass(frozen=True, slots=True)
class _Hit:
    level: RiskLevel
    kind: str
    cue: str


def _contextualise(doc: _Doc, pos: int, hit: _Hit, *, others: bool) -> _Hit | None:
    """Apply quoting, reporting and joking to a threat or self-harm hit at ``pos``."""
    span = doc.quote_at(pos)
    if span is not None:
        speaker = _quote_speaker(doc, span)
        if speaker == "other":
            # Someone else's words, reported or denounced. A third person's suicidal words still
            # deserve care (a friend may be at risk), threats that are being condemned do not.
            return None if others else _Hit(RiskLevel.POSSIBLE, hit.kind, "quoted_" + hit.cue)
        if speaker == "own":
            return _Hit(min(hit.level, RiskLevel.POSSIBLE), hit.kind, "quoted_" + hit.cue)
    if others:
        before = doc.before(pos)
        frame = _REPORT_FRAME.search(before)
        if frame is not None and not _FP_REPORT.search(before):
            return None
    if doc.joking and hit.level is RiskLevel.LIKELY:
        return _Hit(RiskLevel.POSSIBLE, hit.kind, hit.cue + "_joking")
    return hit


def _threat_hits(doc: _Doc) -> list[_Hit]:
    text = doc.text
    hits: list[_Hit] = []
    any_tech = _TECH_CONTEXT.search(text, tokens=doc.tokens) is not None

    def tech_at(pos: int) -> bool:
        """Technical vocabulary in the sentence around ``pos`` ("kill them" about processes)."""
        if not any_tech:
            return False
        start, end = doc.sentence_span(pos)
        return _TECH_CONTEXT.regex.search(text, start, end) is not None

    def add(pos: int, level: RiskLevel, cue: str) -> None:
        h = _contextualise(doc, pos, _Hit(level, HARM_TO_OTHERS, cue), others=True)
        if h is not None:
            hits.append(h)

    # 1. First person + intent + violent verb + person: the classic direct threat.
    for m in _FP_CHAIN.scan(doc):
        verb_form = m.group("verb")
        canon, severe = _canon_verb(verb_form)
        target = _target_after(doc, m.end(), canon, tech_at(m.start()))
        if target.kind in ("thing", "self"):
            continue
        chain = m.group("chain")
        if _NEGATOR.search(chain) or doc.negated_before(m.start("subj"), words=4):
            continue
        if canon == "kill" and text.startswith(" for ", m.end()):
            continue  # "i would kill for a coffee"
        if canon == "beat" and _BEAT_UP.match(text, m.end()):
            severe = True  # "beat him up", "beat her to death"
        hypothetical = _HYPOTHETICAL_WORDS.search(chain) is not None
        intent = _INTENT_WORDS.search(chain) is not None
        past = _PAST_FORM.search(verb_form) is not None and not intent
        if target.kind == "name":
            # A bare word may be a tool ("kill chrome"): only a strong verb with intent, and never
            # in a technical message.
            if (
                not tech_at(m.start())
                and severe
                and canon not in ("kill", "execute", "attack", "hang", "bomb", "gas")
            ) or (not tech_at(m.start()) and canon == "kill" and intent):
                add(m.start(), RiskLevel.POSSIBLE, "threat_named")
            continue
        if severe and intent and not hypothetical and not past and target.kind == "you":
            # "i will kill you": in a chat with the bot, "you" is most often the bot itself, which no
            # helpline card helps; other people may be in the thread, so endings stay vetoed.
            add(m.start(), RiskLevel.POSSIBLE, "threat_second_person")
        elif severe and intent and not hypothetical and not past:
            add(m.start(), RiskLevel.LIKELY, "threat_direct")
        else:
            add(m.start(), RiskLevel.POSSIBLE, "threat_conditional" if hypothetical else "threat_direct")

    # 2. Calls to violence: "let us kill ...", "someone should stab ...", "kill all X".
    for m in _LET_US.scan(doc):
        canon, _ = _canon_verb(m.group("verb"))
        if _target_after(doc, m.end(), canon, tech_at(m.start())).kind in ("person", "group"):
            add(m.start(), RiskLevel.POSSIBLE, "threat_call")
    for m in _NORMATIVE.scan(doc):
        canon, _ = _canon_verb(m.group("verb"))
        if m.group("subj") in ("nobody", "no one") or doc.negated_before(m.start("verb"), words=3):
            continue
        if _target_after(doc, m.end(), canon, tech_at(m.start())).kind in ("person", "group"):
            add(m.start(), RiskLevel.POSSIBLE, "threat_call")
    for start in doc.breaks:
        offset = start
        while offset < len(text) and text[offset] in " ,":
            offset += 1
        im = _IMPERATIVE.match(text, offset)  # anchored at the clause start
        if im is None:
            continue
        canon, _ = _canon_verb(im.group("verb"))
        target = _target_after(doc, im.end(), canon, tech_at(offset))
        if target.kind == "group" or (target.kind == "person" and canon in _SEVERE_VERBS):
            # "kill yourself" is abuse, not a threat; the pronoun "you" alone is handled by abuse.
            first = text[im.end() : im.end() + 16].split()[:1]
            if first and first[0] in ("you", "yourself", "yourselves", "urself"):
                continue
            add(offset, RiskLevel.POSSIBLE, "threat_call")
    for m in _IF_ONLY.scan(doc):
        canon, _ = _canon_verb(m.group("verb"))
        if _target_after(doc, m.end(), canon, tech_at(m.start())).kind in ("person", "group"):
            add(m.start(), RiskLevel.POSSIBLE, "threat_wish")

    # 3. Wishing death or violence on people: "X should be shot", "i hope they all die".
    for pattern in (_PASSIVE_HARM, _SHOULD_DIE):
        for m in pattern.scan(doc):
            before = doc.before(m.start())
            if _NEGATOR.search(before) or _NEGATOR.search(m.group(0)):
                continue
            if _mentions_people(before, tech_at(m.start()), allow_you=False):
                add(m.start(), RiskLevel.POSSIBLE, "threat_wish")
    for pattern in (_IF_HARMED, _SEE_SUFFER):
        for m in pattern.scan(doc):
            if _NEGATOR.search(doc.before(m.start())) or _NEGATOR.search(m.group(0)):
                continue
            if _mentions_people(m.group("rest"), tech_at(m.start()), allow_you=False):
                add(m.start(), RiskLevel.POSSIBLE, "threat_wish")
    for m in _BODY_HARMED.scan(doc):
        if not _NEGATOR.search(doc.before(m.start())) and not tech_at(m.start()):
            add(m.start(), RiskLevel.POSSIBLE, "threat_wish")
    for m in _SOLUTION.scan(doc):
        rest = m.group("rest") or ""
        if not _NEGATOR.search(doc.before(m.start()) + m.group(0)) and (
            m.group(0) == "final solution" or _mentions_people(rest, tech_at(m.start()), allow_you=False)
        ):
            add(m.start(), RiskLevel.POSSIBLE, "threat_call")
    for m in _ADVOCACY.scan(doc):
        canon, _ = _canon_verb(m.group("verb"))
        if _DENOUNCE.search(doc.before(m.start()) + m.group(0)):
            continue
        if _target_after(doc, m.end(), canon, tech_at(m.start())).kind in ("group", "person"):
            add(m.start(), RiskLevel.POSSIBLE, "threat_call")
    for m in _WISH_DEATH.scan(doc):
        rest = m.group("rest")
        if doc.negated_before(m.start(), words=3) or _NEGATOR.search(rest.split()[0] if rest.split() else ""):
            continue
        # "i hope you die" at the bot is abuse (handled there); at a third party it is a threat signal.
        if _mentions_people(rest, tech_at(m.start()), allow_you=False) and not re.search(
            r"\bi\b|\bme\b", rest
        ):
            add(m.start(), RiskLevel.POSSIBLE, "threat_wish")
    for m in _BETTER_WITHOUT.scan(doc):
        rest = m.group("rest")
        if re.match(r" ?(?:me|myself|us)\b", rest) or _NEGATOR.search(doc.before(m.start())):
            continue
        if _mentions_people(rest, tech_at(m.start()), allow_you=False):
            add(m.start(), RiskLevel.POSSIBLE, "threat_wish")
    for m in _DEATH_TO.scan(doc):
        if _mentions_people(m.group("rest"), tech_at(m.start()), allow_you=False):
            add(m.start(), RiskLevel.POSSIBLE, "threat_call")

    # 4. Explicit statements of own violence in other shapes.
    for m in _AT_MY_HANDS.scan(doc):
        if not doc.negated_before(m.start(), words=6):
            second_person = (
                _mentions_people(doc.before(m.start()), tech_at(m.start()), allow_you=False) is False
            )
            if second_person and _YOU.search(doc.before(m.start())):
                add(m.start(), RiskLevel.POSSIBLE, "threat_second_person")
            else:
                add(m.start(), RiskLevel.LIKELY, "threat_direct")
    for m in _MAKE_SUFFER.scan(doc):
        rest = m.group("rest")
        if _NEGATOR.search(m.group(0)) or not _mentions_people(rest, tech_at(m.start()), allow_you=True):
            continue
        if not _mentions_people(rest, tech_at(m.start()), allow_you=False):
            add(m.start(), RiskLevel.POSSIBLE, "threat_second_person")
            continue
        level = RiskLevel.LIKELY if m.group("what") in ("suffer", "bleed", "die") else RiskLevel.POSSIBLE
        add(m.start(), level, "threat_direct")
    for pattern in (_MASS_VIOLENCE, _BRING_WEAPON):
        for m in pattern.scan(doc):
            if doc.negated_before(m.start(), words=5):
                continue
            subject = doc.subject_before(m.start())
            before = doc.before(m.start())
            chain_ok = subject in ("i", "we") and not _HYPOTHETICAL_WORDS.search(before)
            add(m.start(), RiskLevel.LIKELY if chain_ok else RiskLevel.POSSIBLE, "mass_violence")
    for m in _HOMICIDAL.scan(doc):
        if doc.negated_before(m.start(), words=4):
            continue
        subject = doc.subject_before(m.start())
        add(m.start(), RiskLevel.LIKELY if subject == "i" else RiskLevel.POSSIBLE, "homicidal_ideation")
    for m in _KILL_SPREE.scan(doc):
        if not doc.negated_before(m.start(), words=4) and doc.subject_before(m.start()) in ("i", "we"):
            add(m.start(), RiskLevel.POSSIBLE, "mass_violence")
    return hits


_PEOPLE_WORD = re.compile(r"[a-z][a-z'-]*")
_YOU = re.compile(r"\b(?:you|ya|yourself|yourselves)\b")


def _mentions_people(fragment: str, tech: bool, *, allow_you: bool) -> bool:
    """Does a noun phrase fragment name people (a group, a person word, a person pronoun)?"""
    words = _PEOPLE_WORD.findall(fragment)
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in _PERSON_NOUNS and nxt not in _TECH_WORDS:
            if tech and w in _TECH_AMBIGUOUS_PEOPLE:
                continue
            return True
        if w in ("they", "them", "he", "she", "him", "her", "those", "these") and not tech:
            if w in ("those", "these") and nxt and nxt not in _PERSON_NOUNS:
                continue
            return True
        if allow_you and w in ("you", "ya"):
            return True
    return False


# --------------------------------------------------------------------------------------------------
# Self-harm: explicit statements (LIKELY candidates)
# --------------------------------------------------------------------------------------------------

# Someone other than the user is the subject: "my friend wants to die" is a concern for a third person,
# worth keeping the conversation open for (POSSIBLE) but not a statement about the user.
_THIRD_PERSON = frozenset({"he", "she", "they", "you", "someone", "somebody", "people", "everyone"})
_IF_CLAUSE = re.compile(r"\bif\b")
_WOULD = re.compile(r"\b(?:would|could)\b")
# Intent, repetition or deliberateness that makes "cut/burn/hurt myself" self-harm rather than an accident.
_SH_INTENT = re.compile(
    r"\b(?:want|wants|wanted|going to|urge|urges|feel like|felt like|keep|kept|started|start|been|again|"
    r"on purpose|deliberately|intentionally|to feel|to cope|relapse\w*|addicted|habit|need to|tempted|"
    r"thinking about|thought about|every (?:day|night)|used to|scars?|deeper|stop|first time|myself to)\b"
)
_ACCIDENT_ANYWHERE = re.compile(r"\b(?:accident\w*|by mistake|shaving|cooking|chopping|slicing)\b")
_ACCIDENT = re.compile(
    r"\b(?:while|when|during|playing|lifting|at the gym|shaving|cooking|accident\w*|by mistake|on a|on the|"
    r"in the kitchen|fell|falling|tripped|workout|exercis\w*|running|training|at work|with a knife while|"
    r"laughing|off|short|some slack|a (?:piece|slice)|free|loose|out of (?:the|this|that|it|my life))\b"
)


@dataclass(frozen=True, slots=True)
class _Explicit:
    patterns: tuple[_Rx, ...]  # the top-level alternatives, indexed separately
    cue: str
    level: RiskLevel  # the level when first person, affirmative, unquoted and serious
    needs_intent: bool = False  # "cut myself" is LIKELY only with intent/repetition, else POSSIBLE


def _explicit(
    pattern: str, cue: str, level: RiskLevel = RiskLevel.LIKELY, *, intent: bool = False
) -> _Explicit:
    return _Explicit(tuple(_Rx(alt) for alt in _split_alternatives(pattern)), cue, level, intent)


_SELF_HARM_RULES: tuple[_Explicit, ...] = (
    # Suicidal acts on oneself. Idioms ("shoot myself in the foot", "killing myself laughing",
    # "killing myself over this deadline") are excluded by the lookahead.
    _explicit(
        r"\b(?:kill(?:s|ing|ed)?|hang(?:s|ing|ed)?|hung|shoot(?:ing)?|shot|stab(?:bing|bed)?|drown(?:ing|"
        r"ed)?|"
        r"poison(?:ing|ed)?|suffocat(?:e|ing|ed)|strangl(?:e|ing|ed)|off(?:ing)?|unaliv(?:e|ing|ed)|"
        r"electrocut(?:e|ing|ed)|gas(?:sing|sed)?|overdos(?:e|ing|ed)) myself\b"
        r"(?! (?:in the (?:foot|feet)|laughing|with laughter|of laughter|over (?:this|that|the|work|it)|"
        r"trying to|for (?:this|that|the|a)|at work|working|to (?:finish|get|make|meet)|with work))",
        "suicidal_intent",
    ),
    _explicit(r"\bunaliv(?:e|ing|ed)\b", "suicidal_intent"),
    _explicit(
        r"\b(?:end(?:ing|ed)?|take|taking|took) (?:my (?:own )?life|it all|my own life)\b(?! back)",
        "suicidal_intent",
    ),
    _explicit(
        r"\b(?:commit|committing|commited|committed|attempt(?:ed|ing)?|tried|try|trying|consider(?:ing|ed)?|"
        r"contemplat(?:e|ing|ed)|plan(?:ning|ned)?|think(?:ing)? (?:about|of)|thought (?:about|of)) "
        r"(?:\w+ )?suicide\b",
        "suicidal_intent",
    ),
    _explicit(
        r"\b(?:am|feel|feeling|felt|been|get|getting|was|became|become|very|so|really|extremely|quite|"
        r"pretty|super|actively|passively|increasingly|constantly|always|still) suicidal\b",
        "suicidal_ideation",
    ),
    _explicit(
        r"\b(?:my|having|have|had|get|getting|with|been having) (?:\w+ ){0,2}(?:suicidal (?:thoughts?|"
        r"ideation|feelings?|urges?|tendencies|episodes?|plans?|ideas?)|suicide (?:attempts?|plans?|notes?|"
        r"thoughts?|letters?))\b",
        "suicidal_ideation",
    ),
    _explicit(
        r"\bsuicide (?:is|seems|feels like) (?:the|my|an|the only) (?:\w+ )?(?:option|way|answer|choice|"
        r"escape)\b",
        "suicidal_ideation",
    ),
    # Wanting to die, wishing to be dead.
    _explicit(
        r"\b(?:want|wants|wanted|wanting|ready|going|plan|planning|trying|tried|wish|wishing|long|"
        r"longing|would like|would rather|prefer|praying|pray|begging|choose|need) to (?:just )?die\b"
        r"(?! (?:of|from) (?:embarrassment|shame|laughter|laughing|boredom|cringe|cuteness|old age)|"
        r" laughing)",
        "death_wish",
    ),
    _explicit(
        r"\b(?:wish|wishing|hope|hoping|pray|praying)(?: that)? i (?:was|were|would be|could be|would|could|"
        r"will|just|would just|could just)? ?(?:dead|die|died|not exist|never (?:existed|been born|woke up)|"
        r"not wake up|never wake up|not be alive|be dead)\b",
        "death_wish",
    ),
    _explicit(
        r"\b(?:hope|hoping|wish|want|pray|praying|like)(?: that)? (?:i |to )?(?:\w+ ){0,4}(?:never|not|"
        r"do not) "
        r"(?:wake up|to wake up)\b|\b(?:sleep|fall asleep|go to sleep) and (?:never|not) wake up\b",
        "death_wish",
    ),
    _explicit(
        r"\b(?:do not|does not|did not|no longer|not) (?:really |even |actually )?(?:want|wanna|wish|"
        r"feel like)"
        r"(?: to)? (?:live|be alive|exist|wake up|keep living|stay alive|be living)\b"
        r"(?= *(?:any ?more|any longer|anyway|[.!?,;\n]|$))",
        "death_wish",
    ),
    _explicit(r"\bi (?:\w+ ){0,2}deserve to die\b", "death_wish"),
    _explicit(
        r"\bbetter off dead\b|\bbetter off if i (?:was|were|had) (?:dead|died|never been born)\b",
        "death_wish",
    ),
    _explicit(
        r"\b(?:no|not any|not a single|zero|nothing|no more) (?:\w+ )?(?:reason|reasons|point|purpose) "
        r"(?:to|in|for) (?:live|living|go on|going on|keep living|be alive|being alive|stay alive|"
        r"staying alive|"
        r"exist|existing|wake up|waking up)\b|\bnothing (?:left )?to live for\b|\bnot worth living\b|"
        r"\blife (?:is not|is no longer|is not even) worth (?:it|living)\b|"
        r"\bwhat is the point (?:of|in) (?:living|being alive|going on|staying alive|existing)\b",
        "no_reason_to_live",
    ),
    # Plan and means.
    _explicit(
        r"\b(?:jump|jumping|jumped|leap|leaping|throw myself|step|stepping)(?: off| from| out of)(?: of)? "
        r"(?:a|an|the|my|this|that|our|some)? ?(?:\w+ )?(?:bridge|roof|rooftop|building|cliff|balcony|ledge|"
        r"tower|"
        r"overpass|skyscraper|window|place|height|heights|floor|storey|story|parking garage|car park)\b|"
        r"\b(?:jump|jumping|throw myself|step|stepping|lie|lying|walk|walking) (?:in front of|under|onto) "
        r"(?:a|the|an|oncoming) (?:\w+ )?(?:train|bus|truck|car|subway|traffic|tracks)\b",
        "suicide_method",
    ),
    _explicit(
        r"\b(?:slit|slice|slash|cut|cutting|slitting|slashing) (?:open )?(?:my|both|your|one's|his|her|"
        r"their) (?:wrists?|veins)\b|\b(?:slit|slice|slash|cut|slitting|slashing) (?:open )?my throat\b",
        "suicide_method",
    ),
    _explicit(
        r"\b(?:took|take|taking|swallow|swallowed|swallowing|downed|down|ate|overdose on|od on) (?:all|"
        r"a bunch of|"
        r"a handful of|handfuls of|a whole bottle of|the whole bottle of|a bottle of|too many|lots of|enough|"
        r"all of|a lot of|an entire bottle of|\d{2,} of) (?:my |the |of my |those |these )?(?:\w+ )?"
        r"(?:pills|tablets|meds|medication|medications|painkillers|pain killers|sleeping pills|tylenol|"
        r"paracetamol|acetaminophen|xanax|benzos|insulin|antidepressants)\b",
        "suicide_method",
    ),
    _explicit(
        r"\b(?:stockpil\w+|hoard\w*|sav(?:e|ed|ing) up|collect(?:ed|ing)?) (?:\w+ )?(?:pills|meds|tablets|"
        r"painkillers|medication|sleeping pills)\b|\b(?:a|the|my) noose\b|\btie (?:a|the) noose\b",
        "suicide_method",
    ),
    _explicit(
        r"\b(?:considering|contemplating|thinking (?:about|of)|thought (?:about|of)|planning(?: on)?|plan on|"
        r"decided on|close to|serious(?:ly)? about|fantasi[sz]ing about) (?:\w+ )?(?:ending (?:it|things|"
        r"everything|my life|it all)|taking my (?:own )?life|killing myself|offing myself|my suicide)\b",
        "suicidal_intent",
    ),
    _explicit(
        r"\b(?:want|wants|wanted|going|trying|tried|threatening|threatened|talking about|talks about|"
        r"thinking about|plans|planning) (?:to )?kill(?:ing)? (?:himself|herself|themselves|themself|"
        r"him self|her self)\b|\b(?:hung|hanged|killed|shot|drowned|poisoned|overdosed|offed) (?:himself|"
        r"herself|themselves|themself)\b|\btook (?:his|her|their) (?:own )?life\b",
        "reported_suicidal",
        RiskLevel.POSSIBLE,
    ),
    _explicit(
        r"(?:\burges? to|\bi (?:\w+ ){0,2}(?:tempted to|want to|need to|started|start|have been|keep|"
        r"relapsed and|"
        r"stopped|am)) cut(?:ting)?\b(?! (?:\w+ )?(?:off|back|down|out|it|the|a|an|my hair|corners|ties|"
        r"class|"
        r"school|carbs|sugar|costs|people|them|him|her|you|ties|in|through|across|release|branch))|"
        r"\bcut (?:again|for the first time|last night|yesterday|today)\b",
        "self_harm",
    ),
    _explicit(
        r"\b(?:i|me) (?:\w+ ){0,3}(?:will|am going to|am gonna|want to|plan to|am planning to|am ready to|"
        r"decided to|have decided to|need to|going to|should just|should) end (?:it|things|everything|this)"
        r"(?: all)? (?:tonight|today|tomorrow|soon|for good|once and for all|now|this week|this weekend|"
        r"before|after|on)\b|\b(?:going to|decided to|plan to|planning to) end (?:it|things|my life|it all) "
        r"(?:tonight|today|tomorrow|on|this|next|before|soon)\b|\bmy death date\b",
        "suicidal_intent",
    ),
    _explicit(
        r"\b(?:i|me) (?:\w+ ){0,3}(?:will|am going to|want to|plan to|am planning to|am ready to|decided to|"
        r"have decided to|need to|should just) end (?:it|things|everything)(?: all)?\s*(?:[.!?,;\n]|$)",
        "suicidal_intent",
        RiskLevel.POSSIBLE,
    ),
    _explicit(
        r"\b(?:blast|blow|blowing) (?:myself|my (?:brains?|head) (?:out|off))\b|\bput a bullet (?:in|"
        r"through) "
        r"my (?:head|brain|skull|mouth)\b|\beat (?:a|my) (?:bullet|gun)\b|\bgun (?:to|in) my (?:head|"
        r"mouth)\b",
        "suicide_method",
    ),
    _explicit(
        r"\b(?:painless|quick|quickest|fastest|easiest|surest|most effective|least painful|peaceful|best) "
        r"(?:\w+ )?(?:way|ways|method|methods|means) (?:to|of) (?:die|dying|kill myself|end it|end my life|"
        r"suicide|commit suicide|go)\b|\blethal dose\b|\bhow (?:much|many) (?:\w+ ){0,3}(?:would it take|"
        r"does it take|to) (?:to )?(?:kill (?:me|myself|a person|someone)|die|be (?:lethal|fatal)|"
        r"overdose)\b",
        "suicide_method",
        RiskLevel.POSSIBLE,
    ),
    _explicit(
        r"\bi (?:\w+ ){0,3}(?:overdosed|overdose|od|oded)\b(?! on (?:caffeine|coffee|sugar|chocolate))",
        "suicide_method",
    ),
    # Self-harm acts.
    _explicit(
        r"\b(?:i|i have been|i am|i started|i keep|i still|been|started|keep|still|stop|quit|relapsed on) "
        r"self[- ]?harm(?:ing|ed)?\b|\bmy self[- ]?harm\w*|\b(?:urges?|urge|relapsed|relapse) (?:to |into )?"
        r"(?:self[- ]?harm|sh)\b|\bsh (?:again|scars?|urges?)\b",
        "self_harm",
    ),
    _explicit(r"\bself[- ]?(?:harm\w*|injur\w*|mutilat\w*)\b", "self_harm_mention", RiskLevel.POSSIBLE),
    _explicit(
        r"\b(?:cut|cutting|burn|burning|burned|burnt|hurt|hurting|harm|harming|harmed|scratch|scratching|hit|"
        r"hitting|punch|punching|bite|biting|bang|banging|starv(?:e|ing|ed)|bruis(?:e|ing|ed)) myself\b",
        "self_harm",
        intent=True,
    ),
    _explicit(
        r"\b(?:been|started|keep|kept|am) cutting (?:again|myself|my (?:arms?|legs?|thighs?|wrists?|skin))\b"
        r"|\bcutting (?:my )?(?:arms?|thighs?|wrists?)\b|\bmy (?:cuts|scars)\b",
        "self_harm",
        intent=True,
    ),
)

_SELF_HARM_INDEX = _RuleIndex(rule.patterns for rule in _SELF_HARM_RULES)

# Generic mentions of suicide, and their technical homonyms (Solidity's suicide(), "suicide burn" in
# rocketry, "suicide doors", a process that "commits suicide").
_SUICIDE_WORD = _Rx(r"\bsuicid\w*|\bkms\b|\bkys\b")
_SUICIDE_TECH = _Rx(
    r"\bsuicide ?(?:\(|squad|burn|doors?|linux|mission|king|run|bomb\w*|pact)|"
    r"\b(?:process|thread|program|app|contract|opcode|worker|daemon|it|node|instance|selfdestruct)\w* "
    r"(?:commits?|committed|committing) suicide"
)


def _self_harm_hits(doc: _Doc) -> list[_Hit]:
    text = doc.text
    hits: list[_Hit] = []
    explicit_spans: list[tuple[int, int]] = []
    for (index, alt), chunk_start, chunk_end in _SELF_HARM_INDEX.spans(doc):
        rule = _SELF_HARM_RULES[index]
        for m in rule.patterns[alt].iter(text, chunk_start, chunk_end):
            start = m.start()
            level = rule.level
            cue = rule.cue
            before = doc.before(start)
            clause_after = text[m.end() : doc.clause_end(m.end())]
            if rule.needs_intent:
                # "cut myself shaving" is an accident; "cut myself again" is self-harm.
                if _ACCIDENT.match(clause_after.strip()) or _ACCIDENT_ANYWHERE.search(clause_after):
                    continue
                window = before[-60:] + " " + clause_after[:40]
                if not _SH_INTENT.search(window):
                    level = RiskLevel.POSSIBLE
            subject = doc.subject_before(start)
            if doc.negated_before(start, words=5):
                level, cue = RiskLevel.POSSIBLE, cue + "_negated"
            elif subject in _THIRD_PERSON or (
                subject is not None and subject.startswith(("my ", "a ", "our "))
            ):
                if "myself" not in m.group(0) and " my " not in f" {m.group(0)} ":
                    level, cue = RiskLevel.POSSIBLE, "reported_" + cue
            elif _WOULD.search(before) and (
                _IF_CLAUSE.search(before)
                or _IF_CLAUSE.search(clause_after)
                or re.search(r"\bif\b", text[m.end() : m.end() + 60])
            ):
                level, cue = RiskLevel.POSSIBLE, cue + "_conditional"
            elif (
                re.search(r"\b(?:how|what|can|does|do|is|why)\b", before)
                and text[doc.clause_end(m.end()) - 1 : doc.clause_end(m.end())] == "?"
                and cue in ("suicide_method",)
            ):
                level, cue = RiskLevel.POSSIBLE, cue + "_question"
            h = _contextualise(doc, start, _Hit(level, SELF_HARM, cue), others=False)
            if h is not None:
                hits.append(h)
                explicit_spans.append(m.span())
    # "I am killing myself over this deadline": an overwork idiom, but still worth not ending on.
    for m in _SUICIDE_WORD.scan(doc):
        if _SUICIDE_TECH.search(text, max(0, m.start() - 40), m.end() + 12):
            continue
        if any(s <= m.start() < e for s, e in explicit_spans):
            continue
        cue = "self_harm_slang" if m.group(0) == "kms" else "suicide_mention"
        if m.group(0) == "kys":
            continue  # "kill yourself" aimed at someone is abuse, handled by the abuse detector
        hits.append(_Hit(RiskLevel.POSSIBLE, SELF_HARM, cue))
    return hits


# --------------------------------------------------------------------------------------------------
# Distress in plain words (POSSIBLE only, by score)
# --------------------------------------------------------------------------------------------------
# Most people at risk never say "suicide": they say they are hopeless, alone, a burden, worthless,
# exhausted, crying, not coping. Each family below is a weighted cue; a message reaches POSSIBLE at a
# score of 2, so one strong cue (weight 2) or two weak ones (weight 1) are enough. Weak cues are words
# that also fill ordinary health questions ("worried", "can't sleep", "in pain"); they are not counted
# when the message reads as a medical question, which keeps symptom and medicine questions out.

_FEEL = (
    r"(?:i am|i feel|i felt|i was|i have been|i have been feeling|i have felt|i get|i always feel|"
    r"i keep feeling|"
    r"feeling|i have never felt (?:so|this)|makes me feel|made me feel|i will always be|i am just|"
    r"i am always|"
    r"i will never be anything but|i am nothing but|i just feel|i still feel|i feel like|i felt like|"
    r"i feel like i am|i am starting to feel|i have always been|i always have been|i become|i became)"
)
_INTENS = (
    r"(?:(?:so|such|just|completely|totally|utterly|really|very|extremely|fucking|pretty|kind of|a bit|"
    r"a little|super|always|constantly|increasingly|incredibly|too|deeply|genuinely|still|more|even more|"
    r"quite|absolutely|emotionally|mentally|nothing but|only|the most|basically|literally) )*"
)
_STRONG_ADJ = (
    r"worthless|useless|pathetic|a failure|failure|a loser|loser|a burden|burden|a disappointment|"
    r"disappointment|a waste of (?:space|air|oxygen|life|skin)|unlovable|unloveable|unwanted|unloved|"
    r"not good enough|never good enough|inadequate|defective|broken|damaged|a mess|a wreck|a fuck ?up|"
    r"fucked up|a freak|a mistake|invisible|nothing|nobody|alone|lonely|empty|numb|dead inside|hopeless|"
    r"helpless|miserable|depressed|heartbroken|devastated|abandoned|rejected|isolated|trapped|desperate|"
    r"disgusting|hideous|ugly|sad|unhappy|betrayed|crushed|suicidal|shattered|defeated|mess|wreck|failure|"
    r"loser|burden|disappointment|fuck ?up|freak|mistake|waste of (?:space|air|oxygen|life|skin)|"
    r"ashamed|insignificant|unimportant|forgotten|replaceable|pointless|meaningless|shitty|crappy|"
    r"a (?:sack|piece|bag|waste) of (?:shit|crap|garbage|trash|space)|not good at anything|good for nothing|"
    r"a let ?down|letting everyone down|too much for (?:everyone|people|anyone)|easily replaced|unlikeable|"
    r"unlikable|weird and alone|a nobody|no one|an outcast|a ghost|a fraud|unworthy|a horrible person|"
    r"a terrible person|"
    r"a bad person|a monster|a joke|hated|despised|lost and alone|empty inside|so low|down and out|"
    r"at rock bottom|in a dark place|in a bad place|not okay|not ok|not alright|not fine|not myself|"
    r"falling apart|breaking down|losing it|unstable|a shell of|dying inside|like dying|like shit|like crap|"
    r"like garbage|like trash|like a failure|like a burden|like a loser|like nothing|like a ghost|"
    r"like an outsider|like a disappointment|like giving up|like disappearing|like crying|like screaming"
)
_WEAK_ADJ = (
    r"down|low|awful|terrible|horrible|guilty|scared|anxious|afraid|terrified|overwhelmed|exhausted|"
    r"drained|tired|stressed|hurt|hurting|confused|frustrated|angry|upset|stupid|dumb|an idiot|insecure|"
    r"stuck|bad|"
    r"lost|nervous|worried|panicky|paranoid|restless|jealous|bitter|weak|fat|gross|lazy|unmotivated|"
    r"burnt out|burned out|worn out|fed up|bored|a coward|cowardly|sick of it|done|over it|"
    r"unwell mentally|off|weird|strange|frightened|uneasy|on edge|irritable|moody|sensitive"
)


@dataclass(frozen=True, slots=True)
class _Weighted:
    patterns: tuple[_Rx, ...]  # the top-level alternatives, indexed separately
    cue: str
    weight: int
    health_weight: int  # the weight when the message reads as a medical question (0: ignored there)
    negatable: bool  # a negator just before cancels it ("i am not lonely")


def _w(
    pattern: str,
    cue: str,
    weight: int,
    *,
    health: bool = False,
    health_weight: int | None = None,
    negatable: bool = True,
) -> _Weighted:
    in_health = 0 if health else weight if health_weight is None else health_weight
    return _Weighted(
        tuple(_Rx(alt) for alt in _split_alternatives(pattern)), cue, weight, in_health, negatable
    )


_DISTRESS_RULES: tuple[_Weighted, ...] = (
    # Self-evaluation and feelings in the first person.
    _w(
        rf"\b{_FEEL} (?:a |an |such a |such an |the )?{_INTENS}(?:[a-z]+,? (?:and|&|"
        rf"but also) )?(?:{_STRONG_ADJ})\b(?! but\b| (?:else|to do|special|new|wrong|compared)\b)",
        "negative_self_feeling",
        2,
        health_weight=1,
    ),
    _w(rf"\b{_FEEL} {_INTENS}(?:{_WEAK_ADJ})\b", "negative_feeling", 1, health=True),
    # Hopelessness.
    _w(
        r"\bhopeless(?:ness)?\b|\b(?:i have|i had|there is|i see|i feel|with) (?:no|zero|not any) (?:hope|"
        r"future)\b|"
        r"\b(?:lost|losing|lose) (?:all )?hope\b|\bno way out\b|\bno light at the end\b",
        "hopelessness",
        2,
        negatable=False,
    ),
    _w(
        r"\bnothing (?:will )?(?:ever )?(?:changes?|gets? better|works? out|matters?|makes me happy|"
        r"brings me joy)\b|\b(?:never|not) (?:going to|ever going to) get (?:any )?better\b|"
        r"\b(?:it|things|life) (?:will|is going to|are going to) (?:never|not) get (?:any )?better\b",
        "hopelessness",
        2,
        negatable=False,
    ),
    _w(
        r"\bwhat is the (?:fucking |damn |bloody |actual |real )?point\b(?: any ?more| of (?:it all|anything|"
        r"life|trying|even trying|me|going on|being here|getting up|this life|my life|my existence|existence|"
        r"existing|living|being alive|anything any ?more)\b)|\bno point (?:in )?(?:anything|trying|"
        r"anymore|any more|living|life|going on)\b",
        "hopelessness",
        2,
        negatable=False,
    ),
    _w(r"\bwhat is the point\s*(?:[.!?,;\n]|$)", "hopelessness", 1, negatable=False),
    _w(r"\bpointless\b|\bmeaningless\b|\bfutile\b|\bno point\b", "hopelessness", 1),
    _w(
        r"\b(?:giv(?:e|ing)|gave) up on (?:life|living|everything|myself|the world|people|love|hope|"
        r"my dreams|"
        r"my life|happiness|trying|ever being)\b|\bi (?:just |have |want to |am about to |might )?(?:give|"
        r"gave) "
        r"up\s*(?:[.!?,;\n]|$|on (?:everything|life|myself))|\bi am giving up\b",
        "hopelessness",
        2,
    ),
    _w(
        r"\b(?:end of my (?:rope|tether)|at my wits'? end|(?:at|hit|hitting|reached|below|past|"
        r"beneath) rock bottom|"
        r"in a (?:really |very )?dark place|dark thoughts|darkest (?:place|time|days)|over the edge|"
        r"on the edge of (?:giving up|breaking|ending))\b",
        "hopelessness",
        2,
    ),
    _w(
        r"\bi (?:\w+ ){0,2}(?:can not|could not|am unable to|do not know how to|"
        r"do not think i can) (?:even )?"
        r"(?:go on|feel happy|keep going|keep living|take (?:it|this|any ?more|much more|it any ?more)|cope|"
        r"handle (?:it|this|life|anything|everything|my life|the pain|being)|live like this|live with this|"
        r"bear (?:it|this)|function|deal with (?:it|this|life|anything|everything|my life|people)|"
        r"do (?:this|it|anything) any ?more|stop crying|stop thinking|get out of bed|face (?:anyone|people|"
        r"tomorrow|another day|the world|life)|carry on|breathe any ?more|be happy|feel anything|"
        r"trust anyone|"
        r"do anything right|find (?:a reason|any reason|the strength|the energy|joy|happiness))\b",
        "cannot_cope",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:tired|sick|exhausted|weary) (?:and tired )?of (?:living|life|being alive|existing|everything|"
        r"it all|trying|fighting|being me|being myself|myself|this life|my life|feeling|being (?:alone|"
        r"lonely|"
        r"sad|depressed|ignored|a burden|used|hurt|rejected|single|like this|the way i am)|people|pretending|"
        r"the pain|hurting|waking up|struggling|going on|the world|this world|everyone|suffering|crying)\b",
        "exhaustion_with_life",
        2,
    ),
    _w(
        r"\b(?:done with|finished with) (?:life|living|everything|it all|this life|my life|people|the world|"
        r"this world|trying|everyone)\b",
        "exhaustion_with_life",
        2,
    ),
    _w(
        r"\bmy (?:whole |entire )?life (?:is|feels|has been|was) (?:\w+ )?(?:over|ruined|a mess|shit|hell|"
        r"meaningless|pointless|worthless|falling apart|a disaster|a joke|nothing|empty|miserable|"
        r"going nowhere|"
        r"hopeless|so hard|hard|crap|garbage|a lie|a failure|a waste|destroyed|boring|lonely|sad|dark)\b",
        "life_negative",
        2,
    ),
    _w(
        r"\b(?:life|everything|living|existence|existing|the world|this world|every day|each day|my days?|"
        r"my future) (?:is|feels|seems|has become|became|just feels|just seems) (?:\w+ )?(?:meaningless|"
        r"pointless|hopeless|worthless|empty|unbearable|too hard|so hard|a struggle|hell|shit|miserable|"
        r"too much|not worth it|dark|grey|gray|bleak|a nightmare|torture|painful|exhausting|a chore|numb)\b",
        "life_negative",
        2,
    ),
    _w(
        r"\b(?:life|my life) (?:sucks|is hard|is shit|is crap|is a bitch)\b|\bfuck (?:my life|this life|life|"
        r"everything)\b|\bfml\b|\bwhy (?:me|am i (?:even )?(?:alive|here|like this)|was i (?:even )?born|"
        r"do i (?:even )?(?:have to )?(?:exist|bother|try|live|wake up)|does (?:this|everything|"
        r"it) always happen to me)\b",
        "life_negative",
        1,
    ),
    _w(
        r"\b(?:hate|hating|hated|despise|loathe|can not stand) (?:my|this) (?:own |whole |entire |fucking )?"
        r"(?:life|existence|self|body|face|personality|brain|mind|reflection)\b|"
        r"\b(?:i|i just|i really|i fucking|i honestly|i truly|i kind of|i still|i always) (?:\w+ )?(?:hate|"
        r"despise|"
        r"loathe|can not stand|am disgusted (?:by|with)) (?:myself|me|who i am|what i have become|being me|"
        r"being alive|living|everything|everyone|everybody|this world|the world|people|my family|my life)\b"
        r"(?! about (?:this|that|the|it|how))|\bself[- ]?(?:loathing|hatred|hate|disgust|worth issues)\b",
        "self_hatred",
        2,
    ),
    _w(
        r"\b(?:i|i just|i always|i keep|all i do is|everything i do) (?:\w+ )?(?:ruin|ruined|ruins|mess up|"
        r"messed up|"
        r"screw up|screwed up|fuck up|fucked up|destroy|destroyed) (?:everything|every ?thing|my life|"
        r"everyone's life|it all|every relationship|all my relationships)\b|\bi can not do anything right\b|"
        r"\beverything i do (?:is wrong|goes wrong|fails)\b|\b(?:ruined|wasted|destroyed|thrown away|"
        r"screwed up|fucked up) my (?:own )?(?:life|future|chances|marriage|relationship|family)\b",
        "self_blame",
        2,
    ),
    _w(
        r"\b(?:i|i will|i always|i just|i keep|i am|i am just|i am always) (?:always |just |only |keep )?"
        r"(?:fail|failing|failed) (?:at )?(?:everything|life|again|every time|at everything|at yet another|"
        r"another|in life|at being)\b|\bwhat a (?:failure|loser|disappointment|mess|waste|joke|burden|"
        r"fuck ?up) "
        r"i am\b|\bfailure (?:at|in) (?:life|everything)\b|"
        r"\ball i (?:ever )?(?:get|do|am) (?:is|are) (?:just )?(?:failures?|fail|mistakes|rejection)\b",
        "failure",
        2,
    ),
    # Burden and belonging (interpersonal theory of suicide).
    _w(
        r"\bburden (?:to|on|for) (?:everyone|everybody|my family|my friends|others|them|people|my parents|"
        r"the world|society|anyone)\b|\b(?:everyone|everybody|they|the world|my family|people|my friends|"
        r"my parents|my kids|he|she|you all) (?:would|will|might) (?:all )?(?:be )?(?:better|happier) "
        r"(?:off )?without me\b|\bbetter off without me\b|\bif i (?:died|was gone|were gone|disappeared|"
        r"was dead|were dead|was not (?:here|around)|were not (?:here|around)|killed myself|never existed|"
        r"left (?:this|the) world)\b|\bwhen i am (?:gone|dead)\b",
        "burden",
        2,
        negatable=False,
    ),
    _w(
        r"\blonel(?:y|iness|ier|iest)\b|\bforever alone\b|\b(?<!leave me )(?<!let me )(?<!me )"
        r"(?:all|so|completely|totally|utterly|very|always|forever|truly|really) alone\b|\bi am alone\b|"
        r"\balone in (?:this|the) world\b|\bon my own with no\b",
        "loneliness",
        2,
    ),
    _w(
        r"\b(?:i have|i got|have|having|with|i literally have|i really have|i honestly have) (?:absolutely )?"
        r"(?:no|zero|not (?:a single|any|one)) (?:real |close |true )?(?:friends?|one to (?:talk|turn) to|"
        r"body to (?:talk|turn) to|one who cares|one in my life|one else|social life|life|family|support|"
        r"one left|purpose|direction|future|reason|girlfriend|boyfriend|partner)\b|\b(?:no one|nobody) to "
        r"(?:talk|turn|go) to\b|\bi have (?:nothing|no one|nobody)(?: left)?\b",
        "loneliness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:no one|nobody|not one person|not a single person|not one|none of them|nobody ever|no one ever|"
        r"noone) (?:\w+ )?(?:loves?|likes?|wants?|understands?|notices?|needs?|believes?|helps?|gets?|sees?|"
        r"remembers?|texts?|calls?|misses?|talks? to|checks? on|listens? to|hugs?|messages?|invites?|"
        r"cares? about|will miss|would miss|would notice|would care about|gives a (?:shit|damn|"
        r"fuck) about) me\b|"
        r"\b(?:no one|nobody) (?:really |even |actually |ever |truly )?(?:cares|understands|listens|notices|"
        r"would notice|would care|will care|will notice|gives a (?:shit|damn|fuck))"
        r"(?= *(?:[.!?,;\n]|$|about me|if i|whether i|how i|what i|when i|that i|any ?more|now|either|"
        r"anyway))",
        "loneliness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:everyone|everybody|people|they all|my family|my friends|my parents|the whole world|"
        r"all of them|"
        r"my classmates|my coworkers) (?:\w+ )?(?:hates?|ignores?|leaves?|left|abandoned|rejected|avoids?|"
        r"forgot|forgets|laughs? at|makes? fun of|bull(?:y|ies|ied)|uses?|used|judges?|despises?) me\b|"
        r"\b(?:i am|i feel|i always feel|i was) (?:\w+ )?(?:excluded|left out|ignored|ostracized|an outcast|"
        r"the odd one out|bullied|picked on|invisible)\b",
        "rejection",
        2,
    ),
    _w(
        r"\b(?:i (?:just |really |only |desperately |so badly )?(?:want|need|wish i (?:had|could find)|"
        r"long for|"
        r"crave)|if only i had) (?:someone|somebody|a friend|friends|a girlfriend|a boyfriend|a partner|"
        r"to be loved|someone to (?:talk to|love|care|hold|listen)|anyone|a hug|human contact|"
        r"someone who (?:cares|loves|understands|listens)|love|affection|connection|company)\b",
        "loneliness",
        2,
    ),
    _w(
        r"\b(?:never|not once|not ever) (?:had|been in) (?:a |any )?(?:girlfriend|boyfriend|relationship|"
        r"friends?|date|partner|kiss|first kiss)\b|\b(?:still|always) single\b|\bno one (?:wants to )?"
        r"(?:dates?|date me|likes me back)\b",
        "loneliness",
        2,
    ),
    _w(
        r"\b(?:isolated|isolation|abandoned|rejected|rejection|unwanted|unloved|left out|outcast|ostracized|"
        r"excluded|friendless|alienated|disconnected)\b",
        "loneliness",
        1,
        health=True,
    ),
    _w(
        r"\b(?:miss|missing) (?:him|her|them|you|my (?:\w+ )?(?:mom|mum|mother|dad|father|wife|husband|ex|"
        r"girlfriend|boyfriend|friend|friends|family|dog|cat|son|daughter|brother|sister|grandma|grandpa|"
        r"grandmother|grandfather|partner|baby|home|old life|old self))\b",
        "loss",
        1,
    ),
    # Depression, sadness, crying.
    _w(
        r"\b(?:my|i have|i suffer from|i struggle with|struggling with|struggle with|battling|battle with|"
        r"diagnosed with|dealing with|deal with|fighting|living with|i have had|suffering from|i get|"
        r"cope with|coping with|because of) (?:\w+ )?(?:severe |clinical |major |chronic |crippling |bad |"
        r"really bad |deep |my )?(?:depression|depressive|depressed)\b|\bdepression (?:is|has been|got|"
        r"gets|came back|kicking in|hits)\b",
        "depression",
        2,
    ),
    _w(r"\bdepression\b|\bdepressed\b", "depression", 2, health_weight=1),
    _w(r"\bdepress\w*", "depression", 1, health=True),
    _w(
        r"\bi (?:\w+ ){0,5}(?:depressed|miserable|lonely|hopeless|suicidal|heartbroken|worthless)\b",
        "negative_self_feeling",
        2,
    ),
    _w(
        r"\b(?:i|me|myself|i have been|i keep|i can not stop|i could not stop|i just|i started|i start|"
        r"i always|i was|i am|started|keep|made me|makes me|want to|feel like|i often|i end up|left me) "
        r"(?:\w+ )?(?:cry|crying|cried|sob|sobbing|sobbed|weep|weeping|wept|in tears|bawling|tearing up|"
        r"bawled|breaking down|broke down)\b|\bcry(?:ing)? myself to sleep\b|\btears? (?:streaming|running|"
        r"rolling|falling)\b|\b(?:crying|sobbing|in tears) (?:every|all|again|alone|at night|myself)\b",
        "crying",
        2,
    ),
    _w(r"\b(?:cry|crying|cried|sobbing|tears)\b", "crying", 1, health=True),
    _w(
        r"\b(?:heart ?broken|broken ?hearted|heartache|heart ?break|my heart (?:hurts|aches|is breaking|"
        r"is broken|"
        r"is shattered|sank)|broke my heart|shattered|devastated|distraught|despair\w*|anguish|tormented|"
        r"miserable|misery|grief|griev\w+|mourning|bereaved|sorrow|sadness|unhappiness|melancholy)\b",
        "sadness",
        2,
    ),
    _w(
        r"\b(?:sad|unhappy|gloomy|blue|down in the dumps|heavy heart|feel off|low mood|moody)\b",
        "sadness",
        1,
        health=True,
    ),
    _w(
        r"\b(?:numb inside|emotionally numb|feel (?:so |completely |totally )?numb|feel nothing(?! but)|"
        r"feel empty|"
        r"empty inside|dead inside|hollow inside|void inside|emptiness|no emotions?|can not feel anything|"
        r"do not feel anything|numb to everything)\b",
        "emptiness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:nervous|mental|emotional|psychotic) break ?down\b|\bhaving a (?:break ?down|meltdown)\b|"
        r"\b(?:i am|i was|i keep|i started|i feel like i am) (?:\w+ )?(?:breaking down|falling apart|"
        r"losing my mind|going crazy|going insane|losing it|coming apart|spiraling|spiralling|unraveling)\b|"
        r"\b(?:everything|my life|my world|my mind) (?:is|keeps) (?:\w+ )?(?:falling apart|crumbling|"
        r"collapsing|"
        r"spiraling|spiralling|going wrong|going to shit|too much|dark|so dark|against me)\b",
        "breakdown",
        2,
    ),
    _w(
        r"\b(?:losing my mind|going crazy|going insane|mentally exhausted|mentally drained|emotionally "
        r"exhausted|emotionally drained|mental pain|emotional pain|inner pain|emotional wounds?|mental "
        r"torture|mental anguish|overthinking|overthink|intrusive thoughts|racing thoughts|my thoughts)\b",
        "mental_strain",
        1,
    ),
    _w(
        r"\b(?:my |i have |i suffer from |i struggle with |diagnosed with |struggling with )(?:\w+ )?"
        r"(?:ptsd|c-ptsd|cptsd|bpd|bipolar|borderline|ocd|eating disorder|anorexia|bulimia|mental illness|"
        r"mental health|mental issues|psychosis|schizophrenia|dissociation|dysthymia|self[- ]?esteem)\b",
        "mental_health_condition",
        1,
    ),
    # Anxiety, panic, fear, worry. Weak: also in every health question.
    _w(
        r"\b(?:panic attacks?|anxiety attacks?|panicking|freaking out|hyperventilat\w+)\b",
        "anxiety",
        2,
        health=True,
    ),
    _w(
        r"\b(?:anxiety|anxious|panic|scared|terrified|afraid|frightened|fear|fears|worried|worry|worrying|"
        r"nervous|paranoid|dread|dreading|on edge|uneasy|restless|phobia|stress|stressed|stressing|"
        r"overwhelmed|overwhelming)\b",
        "anxiety",
        1,
        health=True,
    ),
    _w(
        r"\b(?:scared|terrified|afraid|frightened|worried|fear(?:ful)?) (?:of|about|that) (?:the future|"
        r"my future|"
        r"life|living|being alone|dying alone|myself|what i (?:might|will|could) do|losing my mind|"
        r"ending up alone|never being|going (?:home|outside|back)|my own thoughts|everything)\b",
        "fear_for_self",
        2,
    ),
    # Exhaustion, sleep, burnout.
    _w(
        r"\b(?:exhausted|drained|burn(?:ed|t)? ?out|burnout|worn out|no energy|no motivation|unmotivated|"
        r"can not get out of bed|stay in bed all day|sleep all day)\b",
        "exhaustion",
        1,
        health=True,
    ),
    _w(
        r"\b(?:can not|could not|have not been able to|unable to|trouble|hard to|struggle to|struggling to) "
        r"(?:fall |get to |go to )?sleep\b|\binsomnia\b|\b(?:sleepless|nightmares?|night terrors|lying awake|"
        r"lay awake|lie awake|awake all night|up all night)\b",
        "insomnia",
        1,
        health=True,
    ),
    _w(
        r"\b(?:up all night|lying awake|awake all night|can not sleep) (?:\w+ ){0,3}(?:crying|thinking|"
        r"worrying|"
        r"overthinking|because of (?:my thoughts|everything|what happened|him|her|them|my))\b",
        "insomnia",
        2,
    ),
    # Trauma, abuse, violence suffered.
    _w(
        r"\b(?:trauma|traumatic|traumatized|traumatised|ptsd|flashbacks?)\b(?<!head trauma)",
        "trauma",
        2,
        health=True,
    ),
    _w(
        r"\b(?:i was|i have been|i got|i am being|i had been|was i|i get) (?:\w+ )?(?:abused|molested|"
        r"raped|sexually assaulted|assaulted|groomed|neglected|beaten|bullied|harassed|stalked|violated|"
        r"manipulated|cheated on|gaslit|attacked|mugged)\b|\b(?:abused|molested|raped|assaulted|"
        r"groomed|neglected|beat|beats|hit|hits|hurt|hurts|bullied|bully|bullies|harassed|harass|stalked|"
        r"stalks|manipulated|gaslit|gaslights|touched|violated|attacked|threatens|threatened|choked|"
        r"strangled|slapped|punched|kicked) me\b(?! up| with| back| if| when)|"
        r"\babusive (?:\w+ )?(?:relationship|parents?|father|mother|"
        r"dad|mom|mum|ex|partner|home|childhood|husband|wife|boyfriend|girlfriend|family|marriage|"
        r"household|stepdad|stepfather|stepmom|stepmother)\b|\bmy (?:abuser|rapist|bully|bullies|"
        r"abusers|trauma)\b|\b(?:domestic violence|childhood abuse|sexual abuse|emotional abuse|"
        r"verbal abuse|physical abuse|gaslighting)\b",
        "abuse_suffered",
        2,
    ),
    _w(r"\babuse\b", "abuse_suffered", 1, health=True),
    # Loss: bereavement, break-ups, betrayal.
    _w(
        r"\b(?:my|our) (?:\w+ ){0,2}(?:mom|mum|mother|dad|father|parent|parents|wife|husband|son|daughter|"
        r"child|"
        r"baby|brother|sister|friend|best friend|bestfriend|grandma|grandmother|grandpa|grandfather|nan|dog|"
        r"cat|"
        r"pet|puppy|partner|girlfriend|boyfriend|fiance|fiancee|uncle|aunt|cousin|soulmate) (?:\w+ )?"
        r"(?:died|passed away|passed|is dead|was killed|killed (?:himself|herself)|committed suicide|"
        r"took (?:his|her) (?:own )?life|is gone|left (?:me|us)|broke up with me|dumped me|cheated|"
        r"is cheating|does not love me|stopped loving me|wants a divorce|moved on|ghosted me|hates me|"
        r"blocked me)\b|\b(?:lost|losing) my (?:\w+ )?(?:mom|mum|mother|dad|father|wife|husband|son|daughter|"
        r"child|baby|brother|sister|best friend|friend|grandma|grandmother|grandpa|grandfather|dog|cat|pet|"
        r"partner|girlfriend|boyfriend|job and|home|soulmate|only friend)\b",
        "loss",
        2,
        health_weight=1,
    ),
    _w(
        r"\b(?:broke up with me|dumped me|left me|cheated on me|cheating on me|divorcing me|we broke up|"
        r"our break ?up|my break ?up|the break ?up|going through a (?:break ?up|divorce)|got divorced|"
        r"getting divorced|my divorce|ghosted me|betrayed me|stabbed me in the back|"
        r"broken relationship|toxic relationship|bad relationship|relationship ended)\b",
        "loss",
        2,
    ),
    _w(
        r"\b(?:breakup|break-up|divorce|my ex|heartbreak|unrequited|friend ?zoned?|rejected me|"
        r"turned me down)\b",
        "loss",
        1,
    ),
    # Coping by substance and other harmful coping.
    _w(
        r"\b(?:drink|drinking|drank|drunk|alcohol|booze|weed|smoke|smoking|high|pills|drugs|cocaine|coke|"
        r"heroin|"
        r"meth|xanax|benzos|opioids?|painkillers)\b[^.!?\n]{0,30}\b(?:to|just to|so i can|helps? me|"
        r"only way to) (?:forget|numb|cope|escape|sleep|feel (?:something|nothing|better|normal|okay|ok)|"
        r"get through|stop (?:thinking|feeling)|deal|forget about|not feel|make it stop|dull)\b|"
        r"\b(?:numb|numbing|numbs|drown|drowning|drowned|dull|dulling) (?:my |the |out )?(?:pain|sorrows|"
        r"feelings|emotions|depression|thoughts|sadness|loneliness|anxiety|memories)\b|"
        r"\bdrinking (?:alone|every (?:night|day)|again|too much|all day|myself to)\b",
        "substance_coping",
        2,
    ),
    _w(
        r"\b(?:relaps\w+|sober|sobriety|addicted|addiction|addict|alcoholic|withdrawals?|hangover|wasted|"
        r"alcohol|drunk|drinking|getting high|stoned|self[- ]?medicat\w+)\b",
        "substance",
        1,
        health=True,
    ),
    _w(
        r"\b(?:starv(?:e|ing) myself|binge(?:ing)?|bingeing|purg(?:e|ing)|throw(?:ing)? up after (?:eating|"
        r"meals)|"
        r"make myself (?:throw up|sick|vomit)|stopped eating|refuse to eat|not eating|skip(?:ping)? meals|"
        r"count(?:ing)? calories)\b",
        "disordered_eating",
        1,
        health=True,
    ),
    # Escape, disappearance, wanting it to stop.
    _w(
        r"\b(?:i (?:just |really |only |sometimes |often )?(?:want|wanna|wish i could|need) to|wish i could) "
        r"(?:just )?(?:disappear|vanish|run away|escape|sleep forever|crawl into a hole|not exist|"
        r"stop existing|"
        r"fade away|be gone|go away forever|leave this world|be free|give up|scream|stop feeling|"
        r"feel nothing|"
        r"not feel|stop thinking|hide forever|be done|rest forever|end (?:this|the pain|it|everything|"
        r"the suffering))\b",
        "escape_wish",
        2,
    ),
    _w(
        r"\b(?:want|need|wish)(?: for)? (?:it|this|everything|it all|the pain|the hurt|the suffering|the "
        r"thoughts|the voices|life) (?:to|would) (?:just )?(?:stop|end|be over|go away|finish)\b",
        "escape_wish",
        2,
        health=True,
    ),
    _w(
        r"\b(?:want|wish|need|hope|pray|praying|begging)(?: for)? (?:someone|somebody|something|god|a car|"
        r"a bus|"
        r"a truck|death|you|the universe) (?:to |would |will |could )?(?:just )?(?:kill|shoot|hit|end|"
        r"take) me\b|"
        r"\bkill me (?:now|already|please)\b|\b(?:please|just|somebody|someone) kill me\b",
        "death_wish_passive",
        2,
    ),
    _w(
        r"\b(?:goodbye|farewell) (?:everyone|world|cruel world|all|forever)\b|\bthis is (?:my )?(?:goodbye|"
        r"my last (?:message|post|night|day|words))\b|\bgoodbye (?:letters?|notes?)\b|\bgiving away my "
        r"(?:things|stuff|belongings)\b|\bwill not be (?:here|around) (?:much longer|tomorrow|anymore|"
        r"any more)\b",
        "goodbye",
        2,
    ),
    _w(
        r"\bi (?:should not|do not deserve to|never should have|wish i had never|wish i was never|"
        r"wish i were "
        r"never) (?:be |have )?(?:exist|existed|be alive|been born|be here|live|be happy|be loved|"
        r"happiness|love|anything|help|friends|good things|to be happy)\b|\bi do not deserve (?:anything|"
        r"love|happiness|to be|friends|help|good things|a good life|to live|to exist|this life)\b",
        "worthlessness",
        2,
        negatable=False,
    ),
    _w(
        r"\bi (?:will|am going to|am never going to) (?:never|not) (?:be|get|find|feel|have) (?:happy|"
        r"better|loved|love|a girlfriend|a boyfriend|anyone|a partner|good enough|normal|okay|ok|friends|"
        r"happiness|peace)\b",
        "hopelessness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:i am|i feel|i have been|been|i am still|i am really) (?:\w+ )?(?:struggling|suffering)\b"
        r"(?! (?:to|with (?:this|the|that|it|my code|the code|the build|a bug)))",
        "struggling",
        1,
        health=True,
    ),
    _w(
        r"\b(?:struggling|struggle|struggles|battling) (?:with )?(?:life|everything|my life|myself|mentally|"
        r"emotionally|my feelings|my emotions|loneliness|my thoughts|to (?:cope|stay alive|keep going|"
        r"get by|find a reason|feel))\b",
        "struggling",
        2,
    ),
    _w(
        r"\b(?:i am|i feel|i have been|i am not|i have not been) (?:doing |feeling )?(?:\w+ )?(?:not okay|"
        r"not ok|"
        r"not fine|not alright|not well mentally|not doing (?:well|good|great|okay|ok)|in a bad way|"
        r"a mess)\b|"
        r"\bi am not (?:okay|ok|fine|alright|doing (?:well|good|great|okay|ok))\b(?! with (?:this|that|it))",
        "not_okay",
        2,
        negatable=False,
    ),
    _w(
        r"\bi do not know what to do (?:any ?more|with (?:my ?self|my life)|any longer|with everything)\b|"
        r"\bi do not know (?:how much longer|how long) i can\b|\bi do not know (?:who i am|why i (?:bother|"
        r"try|"
        r"am alive|exist|am here))\b",
        "cannot_cope",
        2,
        negatable=False,
    ),
    _w(
        r"\bi do not know what to do\b|\b(?:please|someone|somebody|anyone) (?:please )?help me\b|"
        r"\bi need (?:help|someone|somebody|to talk|a friend|support|a hug|advice about (?:life|my life))\b"
        r"(?! (?:with|on|for|to (?:fix|debug|build|deploy|set|configure|understand)))",
        "help_seeking",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\b(?:antidepressants?|anti-depressants?|antipsychotics?|mood stabili[sz]ers?|ssris?|snris?|maois?|"
        r"zoloft|prozac|lexapro|sertraline|fluoxetine|wellbutrin|bupropion|citalopram|escitalopram|celexa|"
        r"venlafaxine|effexor|cymbalta|duloxetine|paxil|paroxetine|trazodone|mirtazapine|remeron|abilify|"
        r"aripiprazole|seroquel|quetiapine|lithium|lamictal|lamotrigine|klonopin|clonazepam|ativan|lorazepam|"
        r"valium|diazepam|buspirone|buspar|risperdal|risperidone|zyprexa|olanzapine|latuda|vraylar|viibryd|"
        r"vilazodone|trintellix|pristiq|"
        r"emergency therapist|crisis (?:line|center|centre|team|text line)|psych ward|mental hospital|"
        r"psychiatric (?:ward|hospital|unit|hold)|inpatient)\b",
        "mental_health_care",
        2,
        health_weight=1,
    ),
    _w(
        r"\b(?:therapy|therapist|counsell?or|counsell?ing|psychiatrist|psychologist|"
        r"mental hospital|psych ward|inpatient|crisis line|hotline|helpline)\b",
        "mental_health_care",
        1,
        health=True,
    ),
    _w(r"\b(?:vent|venting|rant|ranting|need to talk|get this off my chest|no one to tell)\b", "venting", 1),
    _w(
        r"\b(?:worst|bad|terrible|horrible|awful|shit|shitty|crap|crappy|rough|hard|tough|difficult|"
        r"dark|lonely|sad|miserable|painful|bleak) (?:day|days|week|weeks|month|months|year|years|time|times|"
        r"life|night|nights|period|patch|phase)\b(?: (?:of|in) my life)?",
        "hard_times",
        1,
        health=True,
    ),
    _w(
        r"\b(?:worst|hardest|darkest|loneliest|saddest|lowest) (?:\w+ ){0,2}(?:of|in) my (?:entire |whole )?"
        r"life\b|\b(?:my|this) (?:whole )?life\b[^.!?\n]{0,30}\b(?:worse|hell|nightmare|torture|mess|"
        r"disaster|hopeless|pointless)\b",
        "hard_times",
        2,
    ),
    _w(
        r"\b(?:angry|mad|furious|disgusted|disappointed) (?:at|with|in) myself\b|\bmy fault\b|"
        r"\bi blame myself\b|\b(?:guilt|guilty|shame|ashamed|regret|regrets|remorse|embarrassed|humiliated|"
        r"humiliation)\b",
        "guilt_shame",
        1,
        health=True,
    ),
    _w(
        r"\b(?:i am|i feel|i look|i am so|my body is) (?:\w+ )?(?:fat|ugly|disgusting|gross|hideous|"
        r"repulsive|"
        r"unattractive)\b",
        "body_image",
        1,
    ),
    _w(
        r"\b(?:nobody|no one|no girl|no guy|no woman|no man|no girls|no women) (?:would|will|could|wants to) "
        r"(?:ever )?(?:love|date|want|like|marry|be with|care about) (?:me|someone like me)\b",
        "loneliness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:hurts|hurting|hurt|aches|aching|pain) (?:so much|too much|so bad|so badly|inside|every day|"
        r"all the time|deep down)\b|\b(?:i am|i have been|i am still|i am really|still|been) (?:so )?"
        r"(?:hurting|in pain)\b",
        "pain",
        1,
        health=True,
    ),
    _w(
        r"\b(?:jealous|envious|envy|bitter|resent\w*|unfair|why can not i (?:just )?be|everyone else (?:has|"
        r"is|"
        r"gets|seems)|compar(?:e|ing) (?:myself|yourself) (?:to|with)|homesick\w*)\b",
        "comparison",
        1,
        health=True,
    ),
    _w(
        r"\b(?:lost|losing) (?:my|all) (?:\w+ )?(?:will to live|motivation|interest in (?:everything|life|"
        r"anything)|appetite for life|passion|purpose|way|sense of self|faith|friends|job)\b|"
        r"\bno (?:interest|joy|pleasure) in (?:anything|life|everything)\b|\bnothing (?:makes (?:me|you)|"
        r"brings (?:me|you)|makes me feel|gives me) "
        r"(?:happy|joy)\b|\bdo not enjoy anything\b",
        "anhedonia",
        2,
        negatable=False,
    ),
    # Further families of plain-words distress.
    _w(
        r"\bi (?:\w+ )?(?:do not|never|just do not|will never) (?:\w+ )?(?:belong|fit in)\b|\bi (?:always |"
        r"just )?"
        r"keep (?:messing|screwing|fucking) (?:up|everything up)\b|\b(?:wish|want) (?:i could |"
        r"to )?(?:just )?"
        r"(?:start (?:over|again|my life over)|go back in time|redo my life|reset my life|be born again|"
        r"undo (?:everything|my life))\b|\bregret (?:everything|my (?:whole )?life|being born|"
        r"ever being born|"
        r"existing)\b|\b(?:trust issues|trust no ?one|trust nobody)\b|\b(?:everyone|everybody|people) "
        r"(?:always |eventually |just )?(?:leaves|leave me|abandons me|gets tired of me|gives up on me)\b|"
        r"\b(?:body )?dysmorphi\w*",
        "low_self_worth",
        2,
        health_weight=1,
        negatable=False,
    ),
    _w(
        r"\b(?:tw|cw|trigger warning|content warning)\b\s*[:(\-]|\b(?:can|does|do) (?:anyone|anybody|"
        r"any of you) "
        r"(?:else )?relate\b|\b(?:anyone|anybody) (?:want|wanna|wants|willing) to (?:talk|chat|listen)\b|"
        r"\b(?:is )?(?:anyone|anybody) (?:else )?(?:up|awake|around|out there)\s*(?:[?.!\n]|$)|"
        r"\b\d+ (?:days|weeks|months|years) (?:clean|sober|self[- ]?harm free|sh free)\b|"
        r"\b(?:sorry for|excuse) (?:the|this|my) (?:rant|vent|venting|long post|wall of text|ramble|"
        r"rambling)\b|"
        r"\bthanks? (?:you )?for (?:listening|reading|letting me vent)\b",
        "peer_support",
        2,
        health_weight=1,
        negatable=False,
    ),
    _w(
        r"\b(?:social anxiety|socially (?:awkward|anxious|isolated|inept)|no social skills|afraid of people|"
        r"scared of people|can not talk to (?:people|anyone|girls|guys)|bored (?:of|with) (?:life|"
        r"everything|living)|"
        r"no appetite|have not eaten|not hungry any ?more|sleep (?:all day|is my only escape|to escape))\b",
        "withdrawal",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\b(?:knife|blade|razor|glass|scissors|lighter|compass) (?:\w+ ){0,3}(?:into|in|on|across|against) "
        r"(?:my )?(?:skin|wrists?|arms?|thighs?|legs?|stomach)\b|\b(?:find|hit|cut|reach|open) (?:the|an|my) "
        r"(?:artery|arteries|vein|veins)\b|\b(?:need|want|buy|get) (?:\w+ )?(?:drugs|pills|vodka|alcohol|"
        r"a drink|"
        r"weed|booze|something) (?:\w+ ){0,3}(?:to (?:make me )?(?:feel|forget|numb|cope|sleep|escape))\b|"
        r"\bi need (?:more |lots of |a lot of )?(?:drugs|vodka|alcohol|booze|a drink|pills)\b|"
        r"\b(?:become|becoming|turning into) an alcoholic\b|\bdrink(?:ing)? myself to death\b|"
        r"\bdrinking problem\b",
        "self_harm_means",
        2,
        health_weight=1,
        negatable=False,
    ),
    _w(
        r"\bwho would (?:ever )?(?:want|love|date|like|care about|miss) (?:me|someone (?:like me|so|as)|"
        r"somebody (?:like me|so))\b|\b(?:done|tired|sick) (?:of )?being (?:used|lied to|hurt|ignored|"
        r"taken advantage of|treated like|walked over|left out|the (?:backup|second choice|joke))\b|"
        r"\b(?:given up|gave up|give up) (?:on )?(?:my )?(?:hobbies|interests|everything i (?:love|loved|"
        r"enjoy)|"
        r"things i (?:love|loved|enjoy))\b|\b(?:people|they|someone|anyone) (?:would|will) (?:finally |"
        r"at least )?"
        r"(?:remember|miss|notice|care about) me\b|\bhow do (?:you|people) (?:guys )?(?:keep going|carry on|"
        r"get up|find the strength|stay alive|survive|cope)\b",
        "hopelessness",
        2,
        health_weight=1,
        negatable=False,
    ),
    _w(
        r"\b(?:cannabis|marijuana|weed|beer|mental health|homesick\w*|cyclothymi\w*|dysthymi\w*)\b",
        "mental_health_context",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\bgoing through (?:a lot|so much|hell|a hard time|a rough time|a tough time|a difficult time|some "
        r"(?:stuff|shit|things)|a dark time|a rough patch|it)\b|\bin a (?:really |very |pretty )?(?:bad|"
        r"dark|low|"
        r"tough|rough|terrible|horrible) (?:place|spot|state|headspace)\b|\b(?:i was|i am|"
        r"i was just) too much\b|"
        r"\bto avoid (?:tomorrow|life|people|everyone|thinking|my thoughts|reality|the day|going home|"
        r"my family)\b|"
        r"\bmy (?:problems|feelings|life|existence|pain) (?:are|is) (?:so )?(?:insignificant|meaningless|"
        r"nothing|"
        r"worthless|stupid|pointless|not important|unimportant|invalid)\b|\b(?:i feel like i am|i am|i feel "
        r"like i will|i will) (?:about to |going to )?(?:go )?(?:insane|crazy|lose it|lose my mind|"
        r"break down|"
        r"explode|snap|fall apart)\b|\bwant to (?:hug|hold|cuddle|talk to|be held by) (?:someone|somebody|"
        r"anyone)\b",
        "cannot_cope",
        2,
        health_weight=1,
        negatable=False,
    ),
    _w(
        r"\beverything (?:is )?(?:hitting|crashing|caving|piling up|catching up)\b|\b(?:having|have|"
        r"had) (?:a lot of |"
        r"so much |a hard time|a lot |difficulty|trouble)(?:difficulty|trouble)? ?(?:with this|coping|"
        r"dealing|"
        r"handling|getting through)\b|\bmakes me feel (?:so |really )?(?:bad|worse|terrible|awful|sad|"
        r"horrible|"
        r"like shit|small|stupid|worthless|alone)\b",
        "cannot_cope",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\b(?:i |finally |managed to |today i )(?:\w+ )?(?:got out of bed|took a shower|showered|"
        r"brushed my teeth|"
        r"did (?:my |the )?laundry|cleaned my room|left the house|went outside|ate (?:a )?(?:real )?meal|"
        r"made it through (?:the|another|today)|survived (?:another|the) (?:day|night|week))\b|"
        r"\b(?:small|little|tiny) (?:win|victory|victories|wins|step)\b|\bproud of myself\b|"
        r"\b(?:first time in|after) (?:\w+ )?(?:years|months|weeks)\b[^.!?\n]{0,40}\b(?:i|me)\b",
        "recovery_talk",
        2,
        health_weight=0,
        negatable=False,
    ),
    _w(
        r"\b(?:christmas|xmas|thanksgiving|new year'?s?(?: eve)?|nye|valentine'?s?(?: day)?|holidays|"
        r"the holidays|"
        r"my birthday|weekends?|friday night|saturday night) (?:\w+ ){0,3}(?:alone|by myself|on my own|"
        r"without (?:anyone|friends|family))\b|\b(?:[1-4] ?am|middle of the night) (?:\w+ ){0,4}(?:awake|"
        r"can not sleep|crying|thinking)\b|\bwhat is the (?:meaning|point) of (?:life|it all|living|"
        r"existence)\b|\bwhy (?:are we|am i) (?:even )?here\b",
        "loneliness",
        2,
        health_weight=0,
        negatable=False,
    ),
    _w(
        r"(?::-?\(|:'-?\(|;-?\(|\)-?:|(?<!\w)d-?:(?!\w)|(?<![a-z0-9]):-?[/|l](?![/\w])|-_-|\bsigh\b|"
        r"\*sigh\*|\u2639|\U0001F622|\U0001F62D|\U0001F494|\U0001F61E|\U0001F614|"
        r"\U0001F625|\U0001F63F|\U0001F629|\U0001F62B|\U0001F97A|\U0001F613|\U0001F630)",
        "sad_emoticon",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\b(?:things|it|life|nothing|this|my life) (?:\w+ )?(?:never|does not|do not|will not|"
        r"is not going to|"
        r"are not going to) (?:\w+ )?get(?:s|ting)? (?:any )?better\b|\bdoes (?:it|life) (?:ever|really) get "
        r"(?:any )?better\b|\bwill (?:it|things|life) ever get better\b|\bwhen (?:does|"
        r"will) it (?:get better|"
        r"stop|end)\b",
        "hopelessness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:forgot|forget|forgotten|can not remember|do not remember|no longer know|do not know) (?:what|"
        r"how) "
        r"(?:happiness|joy|being happy|it is like to be happy|it feels like to be happy|it feels to be happy|"
        r"love|feeling good|feeling okay|smiling|laughing)\b|\b(?:last time|the last time) i (?:was|felt) "
        r"(?:truly |really |genuinely )?(?:happy|okay|ok|good|loved|alive)\b|"
        r"\bwhat (?:does )?happiness feels? "
        r"like\b",
        "anhedonia",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:i do not|i no longer|i can not|i just do not) (?:even |really )?(?:care|know|try|bother|feel|"
        r"enjoy|recognize myself|know who i am|see the point|know why i (?:even )?(?:try|"
        r"bother))(?: about (?:anything|"
        r"myself|life|living|what happens|whether i live))? any ?more\b|\bi do not care (?:about (?:anything|"
        r"myself|life|living)|if i (?:live|die|wake up)|what happens to me)\b|\bnothing matters any ?more\b",
        "apathy",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:no|zero|lost (?:all )?(?:my )?|lack of|lacking) (?:motivation|energy|drive|will|desire|"
        r"interest|"
        r"appetite for anything|purpose) (?:to do (?:anything|something)|for anything|in anything|for life|"
        r"to live|to get up|to try)\b|\b(?:spend|spent|spending|stay|stayed|staying|lie|lying|lay|laying) "
        r"(?:all day |most days |my days? |the whole day |the day |whole days )?in bed (?:all day|for days|"
        r"every day|doing nothing|most days)\b|\b(?:have not|did not|do not|can not) (?:\w+ )?(?:showered|"
        r"left (?:my|the) (?:room|house|bed|apartment)|gotten out of bed|eaten) (?:in|for) (?:days|weeks|"
        r"a week|"
        r"a while|ages)\b",
        "withdrawal",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:thinking|think|thought|thoughts|fantasi[sz]e|fantasi[sz]ing|dream|dreaming|"
        r"obsess\w*) (?:a lot )?"
        r"(?:about|of|with) (?:dying|death|my death|being dead|not existing|ending it|ending things|"
        r"not being here|"
        r"disappearing|my funeral|not waking up)\b",
        "death_thoughts",
        2,
        negatable=False,
    ),
    _w(
        r"\bi (?:\w+ ){0,3}(?:die|dying|died)\b(?! (?:of|from|laughing|inside lol))",
        "death_mention",
        2,
        health=True,
    ),
    _w(r"\bto die\b|\brather (?:be )?(?:die|dead)\b", "death_mention", 1, health=True),
    _w(
        r"\b(?:how (?:do|can|should|would) (?:i|you|one|people)|how to|ways to|tips (?:to|for)|help me) "
        r"(?:\w+ )?(?:stop|deal with|cope with|handle|overcome|get over|get through|survive|live with|fight|"
        r"beat|manage|fix|escape) (?:\w+ ){0,2}(?:feeling|feelings|being (?:alone|lonely|sad|depressed|"
        r"a failure|ugly|single|worthless)|loneliness|depression|sadness|heartbreak|a break ?up|grief|"
        r"the pain|my thoughts|these thoughts|self[- ]?hate|self[- ]?hatred|jealousy|rejection|my ex|"
        r"suicidal|the urge|urges|emptiness|hopelessness|this feeling|life|everything|my life|social anxiety|"
        r"panic attacks|trauma|being bullied|my parents|hating myself|crying|overthinking|insecurity|"
        r"guilt|shame|regret|the loss|losing)\b",
        "coping_question",
        2,
        health=True,
    ),
    _w(
        r"\b(?:does|do) any(?:one|body) else (?:\w+ ){0,2}(?:feel|get|have|hate|think|cry|struggle|wish|"
        r"want)\b",
        "coping_question",
        1,
    ),
    _w(
        r"\bi (?:really |just |only )?(?:want|wish) (?:to|i could|i was|i were|"
        r"i could just) (?:be )?(?:happy|normal|"
        r"loved|wanted|someone else|different|okay|ok|alright|feel (?:normal|happy|okay|ok|loved|something|"
        r"peace|at peace|serenity|free|"
        r"wanted|better|good|alive)|be like everyone else|a different person|prettier|smarter|skinnier|"
        r"thinner|enough|good enough|worth something)\b|\bwhy can not i (?:just )?(?:be|feel) (?:happy|"
        r"normal|"
        r"okay|ok|loved|like)\b",
        "longing",
        2,
    ),
    _w(
        r"\bwhat is wrong with me\b|\bsomething is wrong with me\b|\bi am (?:so )?(?:broken|messed up|"
        r"screwed up|fucked up) (?:inside|in the head)\b",
        "self_doubt",
        2,
        health=True,
    ),
    _w(
        r"\b(?:low|no|zero|lost (?:all )?(?:my )?) (?:self[- ]?esteem|self[- ]?worth|self[- ]?confidence|"
        r"confidence|self[- ]?respect)\b|\b(?:everyone|everybody|all my friends|other people|others) "
        r"(?:is|are|seems?) (?:so )?(?:better|happier|prettier|smarter|more successful) than me\b|"
        r"\b(?:i will|i am going to) (?:never|not) (?:amount to|be) (?:anything|something|anybody)\b",
        "low_self_worth",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:want|wanting|wish|wishing|need|long) to (?:just )?(?:disappear|vanish|not exist|stop existing|"
        r"fade away|be gone|leave everything behind|run away from (?:it all|everything|my life))\b|"
        r"\b(?:i am|i feel like i am|i feel|i am stuck|trapped|stuck) (?:\w+ )?in (?:a|this) (?:deep |dark |"
        r"black |bottomless )?(?:pit|hole|cage|prison|void|abyss|darkness|fog|rut|hell)\b|\b(?:disgusted|"
        r"repulsed|sick) (?:with|by|of|at) myself\b|\btoo (?:ugly|fat|short|stupid|awkward|weird|broken|"
        r"damaged|boring|quiet|shy|messed up|fucked up) (?:for|to) (?:a |anyone|anybody|love|be loved|"
        r"have|find|get|make)\b",
        "escape_wish",
        2,
    ),
    _w(
        r"\b(?:attempt(?:ing)?(?: it)?|do(?:ing)? it|try(?:ing)? (?:it )?again) (?:tonight|today|tomorrow|"
        r"this "
        r"(?:weekend|week|time))\b|\b(?:another|my (?:first|second|last|next)) (?:suicide )?attempt\b|"
        r"\bdie (?:painlessly|quickly|peacefully|in my sleep)\b|\bhow (?:to|do i|can i|do you) die\b",
        "suicidal_plan",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:everything|life|every (?:little )?thing|it all|living) (?:\w+ )?(?:is|be|feels|has been|seems|"
        r"always is) (?:\w+ )?(?:so|too|really|fucking)? ?(?:difficult|hard|painful|heavy|exhausting)\b|"
        r"\b(?:tired|sick) of (?:this|the) (?:bullshit|shit|crap)\b|\bfight(?:ing)? (?:against )?my own "
        r"(?:brain|mind|thoughts|head)\b|\b(?:impending doom|sense of dread|constant dread)\b|"
        r"\b(?:i just|i really|i) (?:need|want) to be (?:more )?(?:happy|positive|okay|normal)\b|"
        r"\bimprove (?:my )?mood\b|\bfalling apart\b",
        "life_negative",
        2,
        health_weight=1,
    ),
    _w(
        r"\b(?:want|wanted|wait|ready|need|like|wish|prefer|rather) (?:\w+ )?to be dead\b|\b(?:wish|"
        r"hope) i (?:was|were|am|will be|would be|could be) "
        r"dead\b",
        "death_wish",
        2,
        negatable=False,
    ),
    _w(
        r"\bwant to (?:\w+ ){1,3}(?:and )?die\b|\b(?:someone|somebody|anyone|anybody|please|just|god|"
        r"universe) (?:\w+ ){0,2}(?:kill|end|shoot|take) me\b|(?:^|[.!?\n] ?)kill me\b|\bend me\b",
        "death_wish_passive",
        2,
        health=True,
    ),
    _w(
        r"\bi (?:\w+ ){0,2}can not (?:\w+ ){1,3}any ?more\b|\bget me out of (?:here|this|this life)\b|"
        r"\b(?:going|gone|go) (?:insane|crazy|mad)\b|\bnot stable\b",
        "cannot_cope",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\bnothing (?:is|seems|feels) (?:\w+ )?(?:fun|enjoyable|interesting|exciting|worth it|"
        r"good) any ?more\b|"
        r"\bnothing interests me\b|\b(?:lost|losing) interest in (?:everything|anything|things|life)\b",
        "anhedonia",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:been|stayed|staying|stay|lie|lying|laying|lay|spent|spend|"
        r"spending) (?:\w+ )?in bed (?:all day|for days|"
        r"since|the whole day|every day|most of the day|all week|all weekend)\b",
        "withdrawal",
        2,
        negatable=False,
    ),
    _w(
        r"\bwish (?:someone|somebody|anyone|anybody|people|they|he|she|my \w+) (?:\w+ )?(?:cared|loved|"
        r"liked|wanted|"
        r"noticed|understood|listened|cares|loves|likes|wants|needed) (?:about |for )?me\b|\b(?:could|would|"
        r"will) "
        r"ever (?:love|want|like|care about) me\b",
        "loneliness",
        2,
    ),
    _w(
        r"\b(?:feel|feeling|felt|am|been) (?:so |really |pretty |very |kind of |a bit |quite )?(?:down|low|"
        r"blue)\b"
        r"(?! (?:the|to|on|with|about|in|at|for|here|there)\b)",
        "sadness",
        2,
        health_weight=1,
    ),
    _w(
        r"\b(?:feel|understand|know|see) (?:\w+ )?(?:my pain|what i (?:feel|am going through|go through)|"
        r"how i feel|how much i hurt)\b|\b(?:wean|ween|taper|tapering|weaning|coming) off (?:of )?(?:my )?"
        r"(?:medication|meds|antidepressants|pills)\b|\bviibryd\b|\bvilazodone\b",
        "pain",
        1,
        health=True,
    ),
    _w(
        r"\bi (?:\w+ ){0,3}deserve (?:to (?:be (?:hurt|punished|attacked|alone|in pain|unhappy|miserable)|"
        r"suffer|"
        r"feel (?:this|like this|pain)|die|rot)|this pain|all (?:of )?this|nothing|to be treated like)\b|"
        r"\bi (?:\w+ ){0,3}(?:do not|never|will never|would never|could never|do not really|do not even) "
        r"(?:\w+ ){0,3}deserve\b",
        "worthlessness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:death|dying|suicide|killing myself|ending it) (?:is )?(?:\w+ )?on my mind\b|\bwhy am i "
        r"(?:still |even )?alive\b|\b(?:will not|do not think i will|might not) be (?:alive|around|here) "
        r"(?:past|by|for|much longer|next|in a|to see)\b|\bmy death is (?:near|coming|close)\b|"
        r"\b(?:is )?(?:living|life|being alive) (?:really |even )?better than (?:dying|death|being dead)\b|"
        r"\b(?:why|how) (?:would|should|do|could|can) i (?:even )?(?:want to )?(?:live|go on|keep going|"
        r"keep living|live on|stay alive)\b|\bwhat (?:i am|am i) (?:even )?living for\b|"
        r"\b(?:easier|better) to (?:just )?(?:kill|end) (?:yourself|myself|it all|my life)\b|"
        r"\brather (?:just )?(?:kill|off|end) (?:yourself|myself)\b|\b(?:should|could|can|do) (?:i|you) "
        r"(?:just )?kill (?:yourself|myself)\b|\b(?:will|wish|want) (?:myself|yourself) to die\b|"
        r"\b(?:might|may|could|going to|gonna|will) end (?:it all|it|all|everything|things)\s*(?:[.!?,;\n]|"
        r"$)|"
        r"\bdo not want to be here any ?more\b|\b(?:want|wish|need) (?:it|this|everything|life)? ?"
        r"(?:would |to )?(?:just )?(?:end|be over) already\b|\bi wish (?:it )?(?:would )?just end\b",
        "death_wish",
        2,
        negatable=False,
    ),
    _w(
        r"\bcan (?:you|i|one|a person) die (?:of|from)\b|\b(?:made|make|survived|my|another) (?:a |an )?"
        r"(?:failed |suicide )?attempt (?:\w+ ){0,2}(?:last night|yesterday|last week|this morning|"
        r"tonight)\b",
        "suicidal_plan",
        2,
        health=True,
    ),
    _w(
        r"\b(?:do|does) not (?:even )?care about (?:anything|anyone|myself|life) any ?more\b|\b(?:forgot|"
        r"forgotten|forget|no one remembered|nobody remembered|without anyone remembering|alone on) "
        r"(?:\w+ )?(?:my )?birthday\b|\btoo much (?:for me )?(?:to )?(?:handle|bear|take|deal with|"
        r"cope with)\b",
        "cannot_cope",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:do not think|feel like|know that|pretty sure|wonder if) (?:\w+ )?(?:people|anyone|anybody|"
        r"they|"
        r"nobody|no one|my (?:family|friends|parents)) (?:\w+ )?(?:love|like|care about|want|need|miss) me\b|"
        r"\b(?:hope|wish) (?:i am|to be|i was|i were|i will be) (?:dead|gone)\b|\b(?:die|dying|dies) "
        r"(?:\w+ ){0,5}(?:and|but) not me\b|\b(?:can not stand|hate|hated|avoid|avoiding) (?:looking at )?"
        r"(?:what (?:i|you) (?:see|saw)|myself in the mirror|my reflection|(?:any )?mirrors)\b|"
        r"\bbirthday (?:\w+ )?(?:without anyone|and no one|and nobody|alone)\b|\bwhat (?:is it|does it feel) "
        r"like to be happy\b|\b(?:can not|do not) remember the last time i (?:was|felt)\b|"
        r"\battention (?:whore|seeker|seeking)\b",
        "worthlessness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:i thought i was|thought i was) getting better\b|\bcrash(?:ing|ed)? down\b|"
        r"\bback to square one\b|"
        r"\b(?:spiral|spiraling|spiralling)\b|(?:^|[.!?\n] ?)(?:i need help|please help me|please just help|"
        r"help me)"
        r"\s*(?:please)?\s*(?:[.!?\n]|$)",
        "relapse",
        1,
        health=True,
        negatable=False,
    ),
    _w(
        r"\bno (?:real |close |irl )?(?:friends|friend|gf|girlfriend|bf|boyfriend|one to talk to|"
        r"social life)\b|"
        r"\b(?:cheer me up|make me (?:feel better|smile|happy))\b|\bstill alive\b(?! and)",
        "loneliness",
        2,
        health_weight=1,
        negatable=False,
    ),
    _w(
        r"\b(?:vodka|whiske?y|liquor|tequila|rum|booze|beers|wine|shots|getting drunk|got drunk|"
        r"blackout drunk)\b",
        "substance",
        1,
        health=True,
    ),
    _w(
        r"\b(?:is|if) life (?:even |really )?worth (?:living|it)\b|\b(?:stop|quit|ragequit|give up) living\b|"
        r"\bstop existing\b|\bcease to exist\b",
        "no_reason_to_live",
        2,
        negatable=False,
    ),
    _w(
        r"\bi (?:\w+ )?(?:wish|hope|pray) (?:that )?(?:i (?:had|would get|could get|get|got|would catch|"
        r"catch)|"
        r"to get) (?:\w+ )?(?:cancer|a terminal|an incurable|a fatal|covid and die|sick and die|hit by (?:a|"
        r"the) "
        r"(?:car|bus|truck|train)|in an accident|into an accident|killed|shot|murdered)\b|"
        r"\b(?:euthanasia|euthanized|euthanised|assisted suicide|assisted dying)\b",
        "death_wish_passive",
        2,
    ),
    _w(
        r"\b(?:let|letting|lets) (?:everyone|everybody|my (?:family|parents|friends|mom|mum|dad|team|wife|"
        r"husband|partner)|them all|people|all of them) down\b|\b(?:never|not|will never be|am never) "
        r"(?:be )?good enough\b|\b(?:i am|i was|i feel) (?:always )?(?:a|the) (?:disappointment|"
        r"let ?down|problem|weird one|ugly one)\b",
        "low_self_worth",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:hear|hearing|heard) (?:\w+ )?(?:voices|demons|things that are not there)\b|"
        r"\bvoices (?:in|inside) my head\b|\bhallucinat\w+|\b(?:delusions?|psychosis|psychotic)\b",
        "psychosis",
        2,
        health_weight=1,
    ),
    _w(
        r"\bnothing (?:\w+ )?(?:helps|works|changes)(?: me)?\b|\b(?:too much|so much|more than i can) "
        r"(?:to )?(?:deal with|handle|bear|take|cope with)\b|\b(?:dis|un)interested in (?:everything|"
        r"anything|"
        r"life)\b|\bbeing alone\b|\bmental (?:issues|problems|struggles|illness)\b",
        "cannot_cope",
        1,
        health=True,
    ),
    _w(
        r"\b(?:does not|do not|did not|never) (?:\w+ )?care (?:about|for) me\b|\b(?:does not|do not|did not|"
        r"never) (?:\w+ )?(?:love|want|like|need|understand|notice|see|hear) me\b",
        "loneliness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:death|dying|mortality|the void|nonexistence|non-existence|oblivion)\b",
        "death_mention",
        1,
        health=True,
    ),
    _w(
        r"\bi (?:\w+ ){0,2}hate (?:society|humanity|this world|the world|people|everyone|everybody|life|"
        r"existing|being alive|being me|being here|my family|myself)\b",
        "self_hatred",
        2,
    ),
    _w(
        r"\b(?:can not|could not) (?:stop|help) (?:thinking|feeling|worrying|crying|overthinking|hating|"
        r"blaming|comparing)\b",
        "rumination",
        2,
        health=True,
    ),
    _w(
        r"\bmy (?:mental health|depression|anxiety|mood|ocd|ptsd|bpd|bipolar) (?:\w+ )?(?:is|has been|was|"
        r"keeps|got|is getting|has gotten) (?:\w+ )?(?:worse|bad|terrible|horrible|awful|out of control|"
        r"back|spiraling|spiralling|killing me|ruining)\b",
        "mental_health_worse",
        2,
    ),
    _w(
        r"\bmy (?:parents|family|mom|mum|dad|mother|father|friends|wife|husband|boyfriend|girlfriend|"
        r"partner) "
        r"(?:\w+ )?(?:do not|does not|never|will not|would not|can not) (?:\w+ )?(?:care|understand|love|"
        r"listen|support|believe|accept|respect|want) (?:\w+ )?(?:me|about me|how i feel|my feelings)\b|"
        r"\b(?:yell|yells|yelled|scream|screams|screamed|shout|shouts|shouted) at me\b|\b(?:kicked|"
        r"threw) me out\b",
        "family_conflict",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:gad|mdd|social anxiety|generalized anxiety|major depressive|clinical depression|seasonal "
        r"depression|postpartum depression|agoraphobia|dysphoria|anhedonia)\b",
        "mental_health_condition",
        1,
    ),
    _w(
        r"\b(?:i am|i feel|i have been) (?:\w+ )?(?:a virgin|an incel|kissless|touch starved|sexless)\b|"
        r"\bforever (?:single|a virgin)\b",
        "loneliness",
        1,
    ),
    _w(
        r"\b(?:sick|tired) of (?:this shit|it all|all of this|this life|everything|being alive|"
        r"my existence)\b|"
        r"\bi am so (?:tired|exhausted|done)\s*(?:[.!?,;\n]|$)",
        "exhaustion_with_life",
        2,
        health_weight=1,
    ),
    _w(
        r"\b(?:i am|i feel|i got|we are) (?:so |completely |totally |absolutely )?(?:fucked|screwed|doomed|"
        r"finished)\s*(?:[.!?,;\n]|$)|\bdoom\b",
        "hopelessness",
        1,
    ),
    _w(
        r"\b(?:nobody|no one|nothing) (?:can|could|will) (?:\w+ )?(?:help|save|fix) me\b|\bbeyond (?:help|"
        r"saving|repair)\b|\btoo late for me\b",
        "hopelessness",
        2,
        negatable=False,
    ),
    _w(
        r"\b(?:unemployed|jobless|homeless|broke and|in debt|evicted|kicked out|got fired|lost my job|"
        r"was fired|laid off|failed (?:my|the|all) (?:exams?|classes|class|test|course|semester|year)|"
        r"dropped out|flunked)\b",
        "life_stressor",
        1,
        health=True,
    ),
)

_DISTRESS_INDEX = _RuleIndex(rule.patterns for rule in _DISTRESS_RULES)

# A medical question: symptoms, medicines, tests, the pandemic. Weak distress words in such a message are
# the normal worry of someone who is unwell, not a sign of crisis.
_HEALTH_CONTEXT = re.compile(
    r"\b(?:symptoms?|fever|cough\w*|covid\w*|corona\w*|virus|viral|pneumonia|infection|infected|doctor|dr|"
    r"medicines?|medications?|mg|ml|dosage|tablets?|treatment|treated|diagnos\w+|tested|testing|"
    r"tested positive|positive for|pregnan\w+|blood|pressure|headaches?|vaccin\w+|chest|breath\w*|throat|"
    r"sore|flu|allerg\w+|asthma|diabet\w+|hospital|clinic|swab|quarantin\w+|self[- ]isolat\w+|masks?|"
    r"sanitizer|antibiotics?|prescri\w+|ache|aches|nausea|vomit\w*|diarrh\w+|rash|temperature|degrees|"
    r"lungs?|heart rate|bp|sugar|cholesterol|thyroid|surgery|x-?ray|scan|ct|mri|advise|please suggest|"
    r"side effects?|immune|immunity|sympto\w+|paracetamol|ibuprofen|tylenol|inhaler|cancer|tumou?r|kidney|"
    r"liver|stomach|abdom\w+|joints?|muscles?|bones?|knees?|shoulders?|spine|migraines?|cramps?|bleeding|"
    r"swollen|swelling|lumps?|urin\w+|bowel|stool|menstrua\w+|itch\w*|dental|tooth|sinus|nasal|mucus|"
    r"phlegm|wheez\w+|oxygen|ventilator|icu|antibod\w+|pcr|incubation|contagious|transmi\w+|disease|"
    r"patient|nurse|pharmac\w+|health ?care|physician|specialist|dermatolog\w+|cardio\w*|neuro\w*)\b"
)
# Mental-health vocabulary: a medical question *about* depression, suicidality or psychiatric drugs is
# a mental-health context, so the medical gate above does not apply to it.
_MENTAL_HEALTH_CONTEXT = re.compile(
    r"\b(?:depress\w*|suicid\w*|self[- ]?harm\w*|bipolar|ptsd|therap(?:y|ist)|psychiatr\w+|psycholog\w+|"
    r"antidepressants?|anti depressants?|ssris?|snris?|mental (?:health|illness|disorders?)|eating disorder|"
    r"anorexi\w+|bulimi\w+|cyclothymi\w*|dysthymi\w*|cymbalta|zoloft|prozac|lexapro|sertraline|wellbutrin|"
    r"seroquel|abilify|"
    r"lithium|lamictal|citalopram|escitalopram|effexor|paxil|trazodone|mirtazapine|viibryd|panic attacks?|"
    r"lonely|loneliness|hopeless|worthless|self[- ]sabotage)\b"
)


# Negative-affect vocabulary (LIWC-style). Research on language and depression finds first-person singular
# pronouns together with negative-emotion words a robust marker of distress; this is the catch-all for
# what the phrase families above miss. Words that are everyday tech or workplace vocabulary ("kill",
# "dead", "fail", "crash", "bad", "lost", "broken", "hate") are deliberately absent.
_AFFECT_WORDS = frozenset(
    [
        "sad",
        "sadness",
        "sadder",
        "saddest",
        "depressed",
        "depression",
        "depressing",
        "lonely",
        "loneliness",
        "alone",
        "cry",
        "crying",
        "cried",
        "cries",
        "tears",
        "tearful",
        "sobbing",
        "miserable",
        "misery",
        "hopeless",
        "hopelessness",
        "helpless",
        "worthless",
        "empty",
        "emptiness",
        "numb",
        "heartbroken",
        "heartbreak",
        "grief",
        "grieving",
        "mourning",
        "anxious",
        "anxiety",
        "panic",
        "panicking",
        "scared",
        "afraid",
        "terrified",
        "fear",
        "fears",
        "frightened",
        "worried",
        "stressed",
        "overwhelmed",
        "exhausted",
        "hurting",
        "hurt",
        "pain",
        "painful",
        "struggle",
        "struggling",
        "ashamed",
        "shame",
        "guilt",
        "guilty",
        "regret",
        "regrets",
        "upset",
        "unhappy",
        "frustrated",
        "disappointed",
        "disappointment",
        "rejected",
        "rejection",
        "abandoned",
        "isolated",
        "isolation",
        "trapped",
        "failure",
        "loser",
        "desperate",
        "despair",
        "dread",
        "suicide",
        "suicidal",
        "doom",
        "darkness",
        "lonely",
        "unloved",
        "unwanted",
        "insecure",
        "nightmare",
        "nightmares",
        "insomnia",
        "exhausting",
        "agony",
        "anguish",
        "tormented",
        "torment",
        "breakup",
        "divorce",
        "cheated",
        "burden",
        "self-hatred",
        "bullied",
        "abused",
        "trauma",
        "ptsd",
        "scars",
        "overdose",
        "antidepressants",
        "worthlessness",
        "unlovable",
        "friendless",
        "heartache",
        "sorrow",
    ]
)
_AFFECT_TOKEN = re.compile(r"[a-z][a-z'-]*")
_HOSTILE_TO_YOU = _Rx(
    r"\b(?:fuck|screw|damn) (?:you|u|off)\b|\bshut (?:the fuck )?up\b|\bi (?:\w+ )?hate (?:you|u)\b|"
    r"\b(?:you|u) (?:are|r|re) (?:\w+ )?(?:stupid|dumb|idiot|useless|an idiot|a moron|a bitch|trash|garbage|"
    r"pathetic|worthless|annoying|retarded)\b|\b(?:you|u) (?:suck|stink)\b|\bkill yourself\b|\bkys\b"
)
_DISCLOSURE_MIN = 2
_FIRST_PERSON = _Rx(r"\b(?:i|me|my|myself|mine)\b")
# Team-chat and code vocabulary: weak affect words here are about work ("i'm so frustrated with this
# build"), so the catch-all does not apply.
_WORK_CONTEXT = re.compile(
    r"`|https?://|\(\)|[a-z0-9]_[a-z0-9]|(?<=[a-z0-9])\.(?:py|js|ts|go|rs|java|c|cpp|h|json|yaml|yml|toml|"
    r"md|txt|"
    r"log|sh)\b|"
    r"\b(?:api|build|builds|deploy|deployment|server|servers|repo|repository|bug|bugs|merge|config|pr|prs|"
    r"function|compile|compiler|install|installed|package|packages|dependency|dependencies|library|plugin|"
    r"branch|docker|npm|pip|github|gitlab|error|errors|exception|crash|crashes|crashed|log|logs|debug|"
    r"release|version|versions|commit|commits|pull request|code|codebase|script|scripts|ci|pipeline|"
    r"backend|frontend|database|query|endpoint|cluster|kubernetes|stack trace|null|undefined|runtime|"
    r"sprint|standup|jira|ticket|tickets|test suite|unit tests?|refactor|linter|module|modules|"
    r"browser|firmware|driver|kernel|windows 10|linux|macos|android|ios|app|apps|software|developers?|devs?|"
    r"issue|files?|tools?|applications?|features?|users?|data|documentation|docs|implementation|execution|"
    r"settings|updates?|upgrade|patch|workaround|maintainers?|contributors?|readme|output|input|"
    r"parameters?|arguments?|source|encoder|product|client|customers)\b"
)


# Further markers of personal emotional disclosure from language-and-mental-health research: absolutist
# words ("always", "nothing", "never") are over-used in depression and suicidal ideation forums, and
# posts that disclose distress talk about one's life, feelings, loneliness, sleep and thoughts, swear,
# wish, and ask peers ("does anyone else ...") or themselves ("why can't i ...").
# Tone: negation of the whole of life ("never", "nothing", "nobody", "anymore"), wishing,
# and asking peers ("does anyone else ...") or oneself ("why can't i ...").
_DISCLOSURE_TONE: tuple[_Rx, ...] = tuple(
    _Rx(p)
    for p in (
        r"\b(?:never|nothing(?! but)|nobody|no one|any ?more|no matter|no longer|constantly|all the time|"
        r"every single)\b",
        r"\b(?:i wish|if only|i just want|i want to be|i miss|i used to)\b",
        r"\b(?:any(?:one|body) else|does any(?:one|body)|has any(?:one|body)|how do (?:you|people|"
        r"i) (?:deal|cope|"
        r"handle|stop|get|make|know)|why (?:am|do|did|can not|is|does|must|would|should) (?:i|it|everything|"
        r"everyone|life|this)|what is wrong|is it (?:normal|just me)|am i the only)\b",
    )
)
# Topic: one's life, feelings, people, nights and thoughts.
_DISCLOSURE_TOPIC: tuple[_Rx, ...] = tuple(
    _Rx(p)
    for p in (
        r"\b(?:my life|life|living|alive|exist|existence|my future|happy|happiness|purpose)\b",
        r"\b(?:i feel|i felt|feeling|feelings|emotions?|mood|heart)\b",
        r"\b(?:friends?|girlfriend|boyfriend|relationship|family|parents|mom|mum|dad|"
        r"alone|ex|crush|partner|wife|husband)\b",
        r"\b(?:sleep|slept|night|tonight|bed|wake|woke|awake|exhausted)\b",
        r"\b(?:thoughts?|thinking|mind|brain|head|mental\w*|overthink\w*|memories|past)\b",
        r"\b(?:always|everyone|everybody|everything|completely|totally|entirely|forever|whole)\b",
    )
)


_INWARD: tuple[_Rx, ...] = (
    _DISCLOSURE_TONE[-1],
    *_DISCLOSURE_TOPIC[3:6],
    _Rx(
        r"\bi (?:always |just |still |sometimes |often |really |kind of |honestly )?(?:feel|felt) like\b|"
        r"\bi (?:have been|keep|am|was) feeling\b|\bmy (?:feelings|emotions|heart|mood)\b"
    ),
)


def _affect_catch_all(doc: _Doc, health: bool, partial: bool) -> int:
    """Weight from a personal disclosure of distress when the phrase families are not enough (0 or 2).

    Outside medical and technical talk only: "i'm so tired of this build" is about work.
    """
    text = doc.text
    if health or _WORK_CONTEXT.search(text):
        return 0
    # Hostility aimed at the listener is not a disclosure about oneself (and abuse must stay endable).
    if _HOSTILE_TO_YOU.search(text, tokens=doc.tokens):
        return 0
    first_person = _FIRST_PERSON.search(text, tokens=doc.tokens) is not None
    affect = False
    for m in _AFFECT_TOKEN.finditer(text) if not _AFFECT_WORDS.isdisjoint(doc.tokens) else ():
        if m.group(0) in _AFFECT_WORDS and not doc.negated_before(m.start(), words=4):
            affect = True
            break
    tone = sum(1 for pattern in _DISCLOSURE_TONE if pattern.search(text, tokens=doc.tokens))
    topic = sum(1 for pattern in _DISCLOSURE_TOPIC if pattern.search(text, tokens=doc.tokens))
    if first_person:
        # A negative-affect word, a negative tone with a personal topic, one weak distress cue from the
        # families above (``partial``), or an inward topic (sleep, one's mind, absolutes, asking peers).
        inward = any(pattern.search(text, tokens=doc.tokens) for pattern in _INWARD)
        return 2 if affect or partial or inward or tone + topic >= _DISCLOSURE_MIN else 0
    # Peer-support posts speak of "you" in general ("have any of you hated what you saw?"): the same
    # signals, more of them.
    return 2 if (affect and tone + topic >= _DISCLOSURE_MIN) or (tone and tone + topic >= 3) else 0


def _distress_score(doc: _Doc) -> tuple[int, list[str]]:
    text = doc.text
    health = _HEALTH_CONTEXT.search(text) is not None and _MENTAL_HEALTH_CONTEXT.search(text) is None
    score = 0
    cues: list[str] = []
    counted: set[int] = set()
    for (index, alt), chunk_start, chunk_end in _DISTRESS_INDEX.spans(doc):
        rule = _DISTRESS_RULES[index]
        weight = rule.health_weight if health else rule.weight
        if weight == 0 or index in counted:
            continue
        for m in rule.patterns[alt].iter(text, chunk_start, chunk_end):
            if rule.negatable and doc.negated_before(m.start(), words=3):
                continue
            span = doc.quote_at(m.start())
            if span is not None and _quote_speaker(doc, span) == "other":
                continue  # someone else's words, quoted
            score += weight
            counted.add(index)
            if rule.cue not in cues:
                cues.append(rule.cue)
            break  # one count per rule: repetition is not extra evidence
    if score < 2:
        extra = _affect_catch_all(doc, health, partial=score > 0)
        if extra:
            score += extra
            cues.append("personal_negative_affect")
    return score, cues


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

# Scanning is linear in the text, but a pasted log of megabytes is not a message from a person in
# crisis; the head and tail of very long texts carry what the person wrote around the paste.
_MAX_SCAN = 20_000


def assess_risk(text: str) -> RiskAssessment:
    """Assess one user message. Pure and deterministic; never raises on any string."""
    if not text or text.isspace():
        return RiskAssessment(RiskLevel.NONE, None, ())
    norm = normalize_text(text)
    if len(norm) > _MAX_SCAN:
        half = _MAX_SCAN // 2
        norm = norm[:half] + "\n" + norm[-half:]
    doc = _Doc.build(norm)
    hits = _self_harm_hits(doc) + _threat_hits(doc)
    score, distress_cues = _distress_score(doc)
    if score >= 2:
        hits.extend(_Hit(RiskLevel.POSSIBLE, SELF_HARM, cue) for cue in distress_cues)
    if not hits:
        return RiskAssessment(RiskLevel.NONE, None, ())
    level = max(h.level for h in hits)
    top = [h for h in hits if h.level == level]
    # Self-harm first: when both are present, the person themselves is the one to look after.
    kind = SELF_HARM if any(h.kind == SELF_HARM for h in top) else HARM_TO_OTHERS
    cues = tuple(sorted({h.cue for h in hits}))
    return RiskAssessment(level, kind, cues)
