"""The rules' pattern language, compiled to regular expressions over normalised clauses.

Patterns are sequences of words, matched on normalised clauses (see ``normalize.py``):

* ``word`` a word; ``word*`` any word starting so (inflection: ``kill*`` = kill, kills, killing);
  ``*ly`` any longer word ending so (adverbs);
* ``{name}`` any phrase of a macro (the file's own, or the language's ``lang.<xx>.toml``);
* ``(a b|c)`` one of several phrases; ``[a b|c]`` the same, optional;
* ``_`` any one word; ``...3`` up to three words of anything; ``$`` the end of the clause.

Rule files with ``compact = true`` (Chinese, Japanese) match the same syntax without spaces between the
pieces, on the clause's characters; there ``...3`` is up to three characters.

Every compiled pattern is a regular expression with bounded repetition only, run on one clause (or one
window of a long clause), and each rule is tried only on clauses that contain one of its anchor words,
so the cost grows linearly with the message. Besides its expression, a compiled pattern knows the words
every match of it holds (``Requirement``), which lets a clause that lacks them go unsearched.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from bot.detectors.fold import fold_text
from bot.detectors.normalize import Clause

__all__ = ["Compiler", "LazyRegex", "Node", "Part", "PatternError", "Requirement", "trie", "union"]


class LazyRegex:
    """A regular expression compiled on first use.

    Lexicons inlined into patterns make some rules' expressions long, and compiling all of them takes
    seconds; a process compiles only the patterns its messages reach.
    The detector runs in worker threads, and several first messages arrive at once: one thread
    compiles, the others wait for it, instead of each burning the same second of CPU.
    """

    __slots__ = ("_compiled", "_lock", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def compiled(self) -> re.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                compiled = self._compiled
                if compiled is None:
                    compiled = self._compiled = re.compile(self.pattern)
        return compiled

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().search(text, pos)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled().finditer(text)


class Requirement:
    """Words of which every match of a pattern holds at least one: whole words, and word beginnings
    (from ``kill*``). In files without spaces both are substrings of the clause's characters."""

    __slots__ = ("_beginnings", "_substrings", "stems", "words")

    def __init__(self, words: frozenset[str], stems: tuple[str, ...]) -> None:
        self.words = words
        self.stems = stems
        # Their expressions are written on first use: most requirements are only ever tested as sets
        # of words (``risk.RiskDetector``), and writing them all was a fifth of building the detector.
        self._beginnings: LazyRegex | None = None
        self._substrings: LazyRegex | None = None

    def beginnings_source(self) -> str | None:
        """One search of the clause's text instead of a test per token: a token begins with a stem
        where a space and the stem occur ("kill*" in " i killed it ")."""
        return " (?:" + trie(self.stems) + ")" if self.stems else None

    def substrings_source(self) -> str:
        return trie(self.words | set(self.stems))

    def met(self, clause: Clause) -> bool:
        if not self.words.isdisjoint(clause.vocabulary):
            return True
        if not self.stems:
            return False
        beginnings = self._beginnings
        if beginnings is None:  # two threads may both write it: the same expression either way
            beginnings = self._beginnings = LazyRegex(" (?:" + trie(self.stems) + ")")
        return beginnings.search(clause.text) is not None

    def met_compact(self, clause: Clause) -> bool:
        substrings = self._substrings
        if substrings is None:
            substrings = self._substrings = LazyRegex(self.substrings_source())
        return substrings.search(clause.compact) is not None


@dataclass(frozen=True, slots=True)
class Part:
    """One pattern of a rule, and word groups each of its matches holds a word of. Its expression reads
    the space before the match too (a literal first character lets the engine skip to the spaces, where
    the rule's look-behind ``(?<= )`` made it try every position): see ``search.first_matches``."""

    regex: LazyRegex
    requires: tuple[Requirement, ...]


PIECE = re.compile(r"\s*(\.\.\.\d+|\{[\w.]+\}|[()\[\]|$]|[^\s()\[\]|{}$]+)")


class PatternError(ValueError):
    pass


@dataclass
class Node:
    regex: str
    anchors: frozenset[str] | None  # None: not required / unknown
    words: frozenset[str]
    word: str | None = None  # set when the node is one plain word: lexicons of them become a trie
    # Every match holds a word of each of these sets ("kill*" is a word beginning): the anchors of all
    # the required elements of a sequence, where ``anchors`` keeps only the most selective one.
    required: tuple[frozenset[str], ...] = ()
    # The words (and beginnings) a match's first word is one of; None: any word may be. ``nullable``:
    # the node may match nothing, so what follows it may come first. Unknown is read as None and True.
    first: frozenset[str] | None = None
    nullable: bool = True


def _selective(groups: Sequence[frozenset[str]]) -> frozenset[str]:
    """The group whose shortest word is longest (the rarest in text, as ``anchors`` is chosen)."""
    return max(groups, key=lambda g: min((len(w.rstrip("*")) for w in g), default=0))


TRIE_FROM = 12  # alternatives of plain words from which a trie beats an alternation


def trie(words: Iterable[str]) -> str:
    """A regular expression for exactly these words, shared prefixes factored out.

    Python's engine tries an alternation's branches one by one at every position; a lexicon of 400
    nouns then costs 400 tries per word of the message. Factored, it costs about one per letter.
    """
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    escaped: dict[str, str] = {}

    def esc(ch: str) -> str:
        e = escaped.get(ch)
        if e is None:
            e = escaped[ch] = re.escape(ch)
        return e

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        # A run of single letters (most of a trie's nodes) is written without a call per letter.
        chain = []
        while len(node) == 1:
            ((ch, child),) = node.items()
            if not ch:
                break
            chain.append(esc(ch))
            node = child
        branches = [esc(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return "".join(chain)
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return "".join(chain) + (f"(?:{body})?" if "" in node else body)

    return emit(root)


class Compiler:
    def __init__(
        self,
        macros: Mapping[str, Sequence[str]],
        compact: bool,
        foreign_expansions: Mapping[str, str] | None = None,
        negators: Iterable[str] | None = None,
    ) -> None:
        self._macros = macros
        self._compact = compact
        # Another language's contractions are expanded in every message ("im" -> "i am"), so this
        # file's word "im" (German "in the", Polish "to them") must also match its expansion.
        self._foreign = foreign_expansions or {}
        # A wildcard never stands for a negator: "no neighbour of ours deserves to die" must not match
        # "_ _ deserves to die" with the "no" swallowed, out of sight of the negation check.
        words = sorted(negators or (), key=len, reverse=True)
        not_negator = "(?!(?:" + "|".join(map(re.escape, words)) + ") )" if words else ""
        self._any_word = not_negator + "[^ ]+ "
        self._depth = 0
        self._cache: dict[str, Node] = {}  # a macro compiles once per file
        self._words: dict[str, Node] = {}  # and a word (nodes are never changed once made)

    def compile(self, pattern: str) -> Node:
        pieces = [m.group(1) for m in PIECE.finditer(pattern)]
        if "".join(pieces) != "".join(pattern.split()):
            raise PatternError(f"cannot read pattern {pattern!r}")
        # Read from the end of a reversed list: taking a piece is a pop, not a copy of the rest (which
        # made a long macro's phrases quadratic to read).
        stack = pieces[::-1]
        try:
            node = self._alternatives(stack, closing=None)
        except PatternError as exc:
            raise PatternError(f"{exc} (in {pattern!r})") from None
        if stack:
            raise PatternError(f"unbalanced brackets in {pattern!r}")
        return node

    def _alternatives(self, stack: list[str], closing: str | None) -> Node:
        alts: list[Node] = []
        while True:
            alts.append(self._sequence(stack))
            if stack and stack[-1] == "|":
                stack.pop()
                continue
            break
        if closing is not None:
            if not stack or stack[-1] != closing:
                raise PatternError(f"missing {closing!r}")
            stack.pop()
        return union(alts)

    def _sequence(self, stack: list[str]) -> Node:
        parts: list[Node] = []
        while stack and stack[-1] not in ("|", ")", "]"):
            head = stack.pop()
            if head == "(":
                node = self._alternatives(stack, ")")
            elif head == "[":
                inner = self._alternatives(stack, "]")
                node = Node(f"(?:{inner.regex})?", None, inner.words, first=inner.first)
            elif head.startswith("{"):
                node = self._macro(head[1:-1])
            elif head.startswith("..."):
                n = int(head[3:])
                gap = f".{{0,{n}}}" if self._compact else f"(?:{self._any_word}){{0,{n}}}"
                node = Node(gap, None, frozenset())
            elif head == "$":
                node = Node("$", None, frozenset(), first=frozenset())
            elif head == "_":
                node = Node("." if self._compact else self._any_word, None, frozenset())
            else:
                node = self._words.get(head) or self._words.setdefault(head, self._word(head))
            parts.append(node)
        if not parts:
            return Node("", None, frozenset(), first=frozenset())
        if len(parts) == 1:
            # One element as it is: a plain word keeps ``word``, so a lexicon of them becomes a trie
            # (wrapped in a sequence it lost it, and every macro of plain words stayed an alternation).
            return parts[0]
        required = [p.anchors for p in parts if p.anchors is not None]
        # The most selective required element: the one whose shortest word is longest.
        anchors = max(required, key=lambda a: min((len(w) for w in a), default=0), default=None)
        first: frozenset[str] | None = frozenset()
        for p in parts:
            first = None if first is None or p.first is None else first | p.first
            if not p.nullable:
                break
        return Node(
            "".join(p.regex for p in parts),
            anchors,
            frozenset().union(*(p.words for p in parts)),
            required=tuple(g for p in parts for g in p.required),
            first=first,
            nullable=all(p.nullable for p in parts),
        )

    def _word(self, word: str) -> Node:
        if "?" in word or "..." in word or "\\" in word:
            # Regular-expression habits ("(so )?", "x...3", "\\w") would silently match nothing.
            raise PatternError(f"{word!r} is not pattern syntax: use [optional] and a spaced ...N")
        # Pattern words are folded as the text is (casefolded, Latin accents off, "ß" -> "ss"), so
        # "zasługują" or "Töten" in a rule matches what the normaliser makes of the message.
        word = fold_text(word)
        sep = "" if self._compact else " "
        if word.startswith("*") and len(word) > 1 and not self._compact:
            # "*ly": any word ending so (adverbs); never an anchor, and it must be more than the suffix.
            return Node(r"[^ ]+" + re.escape(word[1:]) + sep, None, frozenset(), nullable=False)
        if word.endswith("*") and len(word) > 1:
            stem = word[:-1]
            rest = r"[^ ]*?" if self._compact else r"[^ ]*"
            anchors = frozenset({stem})
            return Node(
                re.escape(stem) + ("" if self._compact else rest) + sep,
                anchors,
                frozenset({stem}),
                required=(frozenset({stem + "*"}),),
                first=frozenset({stem + "*"}),
                nullable=False,
            )
        # In scripts without spaces an anchor is a substring that must occur in the clause.
        anchors = frozenset({word})
        node = Node(
            re.escape(word) + sep, anchors, frozenset({word}), word, (anchors,), first=anchors, nullable=False
        )
        if not self._compact and word in self._foreign:
            return union([node, self.compile(self._foreign[word])])
        return node

    def _macro(self, name: str) -> Node:
        if name in self._cache:
            return self._cache[name]
        if name not in self._macros:
            raise PatternError(f"unknown macro {{{name}}}")
        self._depth += 1
        if self._depth > 8:
            raise PatternError(f"macro {{{name}}} refers to itself")
        try:
            node = union([self.compile(phrase) for phrase in self._macros[name]])
        finally:
            self._depth -= 1
        self._cache[name] = node
        return node


def union(alts: list[Node]) -> Node:
    if len(alts) == 1:
        return alts[0]
    anchors: frozenset[str] | None = frozenset()
    for alt in alts:
        anchors = None if alt.anchors is None or anchors is None else anchors | alt.anchors
    # An empty alternative makes the whole group optional: then nothing in it is required.
    if any(not alt.regex for alt in alts):
        anchors = None
    words = frozenset().union(*(a.words for a in alts))
    # A match of the union is a match of one alternative: it holds a word of that one's chosen group.
    required: tuple[frozenset[str], ...] = ()
    if all(a.regex and a.required for a in alts):
        required = (frozenset().union(*(_selective(a.required) for a in alts)),)
    first: frozenset[str] | None = frozenset()
    for alt in alts:
        first = None if first is None or alt.first is None else first | alt.first
    nullable = any(alt.nullable for alt in alts)
    plain = [a for a in alts if a.word is not None]
    if len(plain) >= TRIE_FROM:
        sep = plain[0].regex[len(re.escape(plain[0].word or "")) :]  # " " between words, "" in compact files
        rest = [a.regex for a in alts if a.word is None]
        words_trie = "(?:" + trie(a.word or "" for a in plain) + ")" + sep
        regex = "(?:" + "|".join([words_trie, *rest]) + ")"
        return Node(regex, anchors, words, required=required, first=first, nullable=nullable)
    regex = "(?:" + "|".join(a.regex for a in alts) + ")"
    return Node(regex, anchors, words, required=required, first=first, nullable=nullable)
