"""Text normalisation shared by every detector: one linear pass from raw chat text to clauses of tokens.

People dodge filters with look-alike letters, invisible characters, spacing and leetspeak, and write in
every script. Normalising once, before any rule runs, lets each rule be written in plain lower-case
words and keeps every rule immune to the same evasions. Each step is bounded per character or per
token, so the whole pass is linear in the length of the message: every regular expression here either
has no nested repetition or starts only at a word boundary, each distinct token is repaired once per
call (and memoised across calls), and repairing a token is a few table look-ups whatever its shape.

Steps, in order:

1–3. Characters are folded (``fold.py``): NFKC, format and other invisible characters dropped, Unicode
   spaces and line separators made plain, look-alike letters folded to Latin where the text is Latin,
   accents off, casefolded, typographic quotes made ASCII.
4. Words are split into clauses at sentence punctuation; a single line break or a hyphen between words
   does not end a clause.
5. Per token: leetspeak inside words (``k1ll``, ``d13``, ``k!ll``) and stretched letters (``dieeee``,
   every run read as one or two letters) are looked up in an index of the rules' vocabulary;
   letter-spaced runs (``k i l l``) and words broken by a hyphen or line break (``ki-ll``) are joined
   when the result is a vocabulary word; contractions and chat spellings are expanded (``im`` →
   ``i am``, ``wanna`` → ``want to``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from types import MappingProxyType

from bot.detectors.fold import char_class, fold_text
from bot.detectors.memo import looked_up

__all__ = ["WITHOUT_SPACES", "Clause", "Normalizer"]

# Sentence ends in the scripts we read. A line break alone is not one ("kill\nmyself"), a blank line is.
_CLAUSE_END = re.compile(
    r"[.!?;:,\u3002\uff01\uff1f\uff1b\uff0c\u3001\u061f\u060c\u061b\u0964\u0965\u2026]+|\n[ \n]*\n"
)
# "!" between two letters is a leet letter ("k!ll"), not an exclamation: it becomes U+01C3, the letter
# that looks like "!", before clauses are split. The pattern starts with the literal, so it scans fast.
_INNER_BANG = re.compile(r"!(?<=[^\W\d_]!)(?=[^\W\d_])")
_BANG_LETTER = "\u01c3"
# A word, then a hyphen or a single line break, then another word: perhaps one word broken in two. The
# left word starts at a word boundary and is taken possessively, so each word is scanned at most twice.
_HYPHEN_BREAK = re.compile(r"(?<!\w)(\w++)(?:-[ \t]*\n?[ \t]*|[ \t]*\n[ \t]*)(?=(\w+))")
_LEET: Mapping[str, str] = MappingProxyType(
    {
        "0": "o",
        "1": "il",
        "2": "z",
        "3": "e",
        "4": "a",
        "5": "s",
        "6": "g",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "il",
        _BANG_LETTER: "il",
        "|": "li",
        "+": "t",
        "€": "e",
        "(": "c",
    }
)
_LEET_CHARS = "".join(re.escape(c) for c in _LEET)
# A token is a run of letters/marks/digits, optionally with leet symbols and inner apostrophes.
# Combining marks are part of words: Python's \w leaves out the vowel signs of Indic scripts and the
# harakat of Arabic, which would cut "मरना" or "أموت" into pieces.
_MARKS = (
    "\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u0900-\u0dff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
)
_TOKEN = re.compile(rf"[\w{_MARKS}{_LEET_CHARS}'*]+")
_TOKEN_SPLIT = re.compile(f"({_TOKEN.pattern})")  # [between, token, between, token, ..., between]
_BLANKS = re.compile(r"[^\S\n]+")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_RUN2 = re.compile(r"(.)\1+")
_STRETCHED = re.compile(r"(.)\1\1")
_RUNS = re.compile(r"(.)\1*")
# Scripts written without spaces between words (kana, CJK ideographs, Hangul syllables).
WITHOUT_SPACES = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SINGLES = re.compile(r"s{3,}")
# Three one-letter tokens in a row, in the tokens joined by spaces: a letter class that holds every
# character ``str.isalpha`` accepts, so a clause without a match has no run to rejoin.
_SPACED_LETTERS = re.compile(r"(?<![^ ])[^\W\d_] [^\W\d_] [^\W\d_](?![^ ])")
_MAX_TOKEN = 40  # longer "words" are not words; they are kept but never rewritten
_MAX_SPACED = 200  # longest run of letter-spaced single letters that is rejoined
_SYMBOL_RUN = re.compile(r"([^\w\s\x00-\x7f])\1{3,}")
_HASHTAG = re.compile(r"#([^\W\d_]{4,40})\b")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_MEMO_SIZE = 50_000  # tokens and clauses remembered across calls (each table is cleared when full)
_CJK_PIECE = 32  # characters per token when a run of CJK text without spaces is cut up
_UNSEEN = object()

# A token's *shape*: each leet symbol read as its letter (the ambiguous ``1 ! |`` and the letters they
# stand for, ``i`` and ``l``, as one class), then every run of one character read once. A token and
# the vocabulary words it may spell share a shape, so one dictionary look-up finds the candidates.
_SHAPE_TABLE = MappingProxyType(
    str.maketrans({**{k: (v if len(v) == 1 else "1") for k, v in _LEET.items()}, "i": "1", "l": "1"})
)


def _shape(word: str) -> str:
    return _RUN2.sub(r"\1", word.translate(_SHAPE_TABLE))


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause: its tokens, and the same tokens as one space-delimited string for the rules' patterns.

    ``text`` is ``" " + " ".join(tokens) + " "`` so that every word, first and last included, is
    delimited by spaces; ``quoted`` marks tokens that stood inside quotation marks.
    """

    tokens: tuple[str, ...]
    quoted: tuple[bool, ...]
    cjk: bool  # written (partly) without spaces between words: rules then match substrings
    # Both strings are read by every rule tried on the clause, so they are built once.
    text: str = field(init=False)
    compact: str = field(init=False)  # the clause without spaces, for scripts that do not separate words
    # Its distinct tokens in the order they come, for look-ups by word: a tuple, not a set, whose order
    # would follow the strings' hashes (PYTHONHASHSEED) and, through the rules tried first, the cue named.
    vocabulary: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", " " + " ".join(self.tokens) + " ")
        object.__setattr__(self, "compact", "".join(self.tokens))
        object.__setattr__(self, "vocabulary", tuple(dict.fromkeys(self.tokens)))


class Normalizer:
    """Turns text into clauses. ``vocabulary`` holds every word the rules know (for repairing evasions);
    ``expansions`` maps a token to its canonical words (``im`` → ``i am``)."""

    def __init__(
        self,
        vocabulary: frozenset[str],
        expansions: Mapping[str, str],
        symbols: Mapping[str, str] | None = None,
    ) -> None:
        self._vocab = vocabulary
        self._expansions = expansions
        # Emoji that carry a word ("😂" is laughter) become that word, set apart by spaces.
        self._symbols = MappingProxyType(str.maketrans({k: f" {v} " for k, v in (symbols or {}).items()}))
        self._has_symbol = char_class(self._symbols) if self._symbols else None
        known = sorted(vocabulary | set(expansions))
        self._prefixes = frozenset(w[:n] for w in known for n in range(1, len(w) + 1))
        shapes: dict[str, list[str]] = {}
        for w in known:
            shapes.setdefault(_shape(w), []).append(w)
        # Longest first: a stretched word is read as the longest word it may spell ("kiill" → "kill").
        self._by_shape = MappingProxyType(
            {k: tuple(sorted(v, key=lambda w: (-len(w), w))) for k, v in shapes.items()}
        )
        self._memo: dict[str, tuple[str, ...]] = {}
        self._clauses: dict[str, Clause | None] = {}

    def clear_cache(self) -> None:
        """Forget the memoised tokens and clauses (for measuring a first reading of a text)."""
        self._memo.clear()
        self._clauses.clear()

    # -- tokens -------------------------------------------------------------------------------------

    def _known(self, word: str) -> bool:
        return word in self._vocab or word in self._expansions

    def _repair(self, token: str) -> str:
        """Leet and stretched letters: the vocabulary word ``token`` spells, or ``token`` unchanged.

        Each run of one character is read as one or two letters, and each leet symbol as one of the
        letters it stands for; the candidates come from the shape index, so the cost is linear in the
        token's length whatever mix of leet and runs it holds.
        """
        token = token.strip("'*")
        if not token or len(token) > _MAX_TOKEN or self._known(token):
            return token
        if token.isalpha() and _BANG_LETTER not in token and not _STRETCHED.search(token):
            # An ordinary word that the rules do not know. A double letter is spelling ("tell" is not a
            # stretched "tel"); only three or more of a letter are stretching.
            return token
        if not _HAS_LETTER.search(token):
            return token  # numbers and symbols alone ("404", "-9") are not leet
        candidates = self._by_shape.get(_shape(token))
        if not candidates:
            return token
        pieces = []
        for run in _RUNS.finditer(token):
            ch = run.group(1)
            letters = _LEET.get(ch, ch)
            cls = re.escape(letters) if len(letters) == 1 else f"[{re.escape(letters)}]"
            pieces.append(cls + ("{1,2}" if len(run.group(0)) > 1 else ""))
        spelled = re.compile("".join(pieces))
        for word in candidates:
            if spelled.fullmatch(word):
                return word
        return token

    def _words(self, raw: str) -> tuple[str, ...]:
        """The canonical words of one raw token (repaired, then expanded), memoised."""
        words = self._memo.get(raw)
        if words is None:
            token = self._repair(raw)
            expanded = self._expansions.get(token)
            words = tuple(expanded.split()) if expanded else (token,) if token else ()
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[raw] = words
        return words

    def _segmented(self, letters: str) -> tuple[str, ...] | None:
        key = " " + letters  # a space keeps these apart from tokens in the shared memo
        found = self._memo.get(key)
        if found is None:
            words = self._segment(letters)
            found = tuple(words) if words is not None else ()
            self._memo[key] = found
        return found or None

    def _segment(self, letters: str) -> list[str] | None:
        """Split a run of joined single letters into vocabulary words, or None ("iwanttodie").

        Each start position extends only while the letters are a prefix of some known word, so the
        cost is at most the run's length times the longest word, and usually a few steps per letter.
        """
        n = len(letters)
        best: list[int | None] = [None] * (n + 1)
        best[0] = 0
        for start in range(n):
            if best[start] is None:
                continue
            for end in range(start + 1, n + 1):
                piece = letters[start:end]
                if piece not in self._prefixes:
                    break
                if best[end] is None and self._known(piece):
                    best[end] = start
        if best[n] is None:
            return None
        words: list[str] = []
        end = n
        while end > 0:
            begin = best[end]
            assert begin is not None
            words.append(letters[begin:end])
            end = begin
        return words[::-1]

    def _join_spaced(self, tokens: list[str]) -> list[str] | None:
        """``k i l l myself`` → ``kill myself``: runs of three or more single letters are rejoined.
        None when nothing changed."""
        if len(tokens) < 3 or not _SPACED_LETTERS.search(" ".join(tokens)):
            return None  # one search instead of a test per token: most clauses have no such run
        singles = {t for t in set(tokens) if len(t) == 1 and t.isalpha()}
        if not singles:
            return None
        shape = "".join(["s" if t in singles else "w" for t in tokens])
        out: list[str] = []
        last = 0
        changed = False
        for run in _SINGLES.finditer(shape):
            i, j = run.span()
            words = self._segmented("".join(tokens[i:j])) if j - i <= _MAX_SPACED else None
            if words is not None and len(words) != j - i:
                out.extend(tokens[last:i])
                out.extend(words)
                last = j
                changed = True
        if not changed:
            return None
        out.extend(tokens[last:])
        return out

    def flat(self, text: str) -> str:
        """The normalised text as one string, punctuation kept: for detectors that read whole lines."""
        split = _TOKEN_SPLIT.split(self._rejoin(fold_text(text)))
        # Each distinct token is rewritten once, and put back with a map instead of a call per token.
        canonical = {raw: " ".join(self._words(raw)) for raw in dict.fromkeys(split[1::2])}
        split[1::2] = map(canonical.__getitem__, split[1::2])
        return _BLANKS.sub(" ", "".join(split)).strip()

    # -- clauses ------------------------------------------------------------------------------------

    def _hashtag(self, m: re.Match[str]) -> str:
        """``#HangTheTraitors`` / ``#hangthetraitors`` → ``hang the traitors``: a hashtag is words run
        together by convention, so its words are read as words (CamelCase first, else the vocabulary)."""
        tag = m.group(1)
        if _CAMEL.search(tag):
            return " " + _CAMEL.sub(" ", tag) + " "
        words = self._segmented(tag.lower()) if tag.isascii() and tag.isalpha() else None
        return " " + " ".join(words) + " " if words else m.group(0)

    def clauses(self, text: str) -> Iterator[Clause]:
        if "#" in text:
            text = _HASHTAG.sub(self._hashtag, text)
        folded = fold_text(text)
        if not folded.isascii():
            # A run of one emoji or symbol says what three of them say ("😂😂😂😂😂" is laughter);
            # cutting it keeps a page of emoji from becoming a page of tokens.
            folded = _SYMBOL_RUN.sub(r"\1\1\1", folded)
            if self._has_symbol is not None and self._has_symbol.search(folded):
                folded = folded.translate(self._symbols)
        # A word broken by a hyphen or a line break is rejoined when the halves are not words but the
        # whole is ("ki-\nll"); otherwise the break becomes a space ("kill-myself", "kill\nmyself").
        if "-" in folded or "\n" in folded:
            folded = self._rejoin(folded)
        if "!" in folded:
            folded = _INNER_BANG.sub(_BANG_LETTER, folded)
        for part in _CLAUSE_END.split(folded):
            clause = self._clause(part)
            if clause is not None:
                yield clause

    def _rejoin(self, text: str) -> str:
        """Each break between two words becomes a space, or nothing where the halves are one word.

        One split and one join instead of a Python call per break: a page of line breaks holds
        thousands of them, and each distinct pair of halves is judged once."""
        parts = _HYPHEN_BREAK.split(text)  # [before, left, right, before, left, right, ..., rest]
        if len(parts) == 1:
            return text
        lefts, rights = parts[1::3], parts[2::3]
        joined = {pair for pair in set(zip(lefts, rights, strict=True)) if self._joins(*pair)}
        del parts[2::3]  # the right half is only looked ahead at: it is also the next "before"
        parts[1::2] = [
            left if (left, right) in joined else left + " " for left, right in zip(lefts, rights, strict=True)
        ]
        return "".join(parts)

    def _joins(self, left: str, right: str) -> bool:
        return (
            len(left) <= _MAX_TOKEN
            and len(right) <= _MAX_TOKEN
            and not self._known(left)
            and not self._known(right)
            and self._known(left + right)
        )

    def _clause(self, part: str) -> Clause | None:
        """One clause, or None when it holds no letter at all ("404", "!?", "|1"): no rule reads it."""
        clause = self._clauses.get(part, _UNSEEN)
        if clause is _UNSEEN:
            clause = self._build_clause(part) if _HAS_LETTER.search(part) else None
            if len(self._clauses) >= _MEMO_SIZE:
                self._clauses.clear()
            self._clauses[part] = clause
        return clause  # type: ignore[return-value]

    def _build_clause(self, part: str) -> Clause | None:
        # Built with C-level maps rather than a Python step per token: a clause may be a page long.
        split = _TOKEN_SPLIT.split(part)
        raws = split[1::2]
        per_raw = looked_up(self._memo, raws, self._words)  # each distinct new token once
        tokens = list(chain.from_iterable(per_raw))
        if not tokens:
            return None
        if '"' not in part:
            quoted = [False] * len(tokens)
        else:
            # A token stands inside quotation marks when an odd number of them precede it (none is
            # inside a token); each of its words inherits that.
            opened = accumulate(map(str.count, split[0:-1:2], repeat('"')))
            inside = map(bool, map(operator.and_, opened, repeat(1)))
            quoted = list(chain.from_iterable(map(repeat, inside, map(len, per_raw))))
        joined = self._join_spaced(tokens)
        if joined is not None:
            quoted = [any(quoted)] * len(joined)
            tokens = joined
        cjk = not part.isascii() and WITHOUT_SPACES.search(part) is not None
        if cjk and max(map(len, tokens)) > _CJK_PIECE:
            # A long run without spaces is cut into pieces so that long clauses are read in windows of
            # tokens like any other; compact rules read the pieces joined again.
            pieces: list[str] = []
            flags: list[bool] = []
            for t, q in zip(tokens, quoted, strict=True):
                cut = [t[i : i + _CJK_PIECE] for i in range(0, len(t), _CJK_PIECE)]
                pieces.extend(cut)
                flags.extend([q] * len(cut))
            tokens, quoted = pieces, flags
        return Clause(tuple(tokens), tuple(quoted), cjk)
