"""Rule tables: load the TOML files under ``bot/detectors/data``, compile their patterns, match clauses.

The language lives in the data files; this module is the mechanism. A rule file holds one ``kind``
(``self_harm``, ``harm_to_others`` ...) for one language, a few ``[macros]`` and a list of rules:

.. code-block:: toml

    lang = "en"
    kind = "self_harm"

    [macros]
    want = ["want", "wanna", "wish", "need"]

    [[rule]]
    id = "wish_to_die"
    family = "explicit wish to die (C-SSRS ideation)"
    level = "likely"
    patterns = ["{I} {want} to die"]
    examples = ["i want to die"]
    counter = ["i never want to die", "this flaky test, i want to die lol"]

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
so the cost grows linearly with the message.
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

from bot.detectors.normalize import Clause, fold_text

__all__ = ["Lexicon", "Part", "Requirement", "Rule", "RuleFile", "RuleSet", "load_rule_files"]

# "weak": a symptom that marks nothing alone; two weak rules of different families in one message make a
# "possible" (screening questionnaires count symptoms the same way).
LEVELS = ("weak", "possible", "likely")


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
        return " (?:" + _trie(self.stems) + ")" if self.stems else None

    def substrings_source(self) -> str:
        return _trie(self.words | set(self.stems))

    def met(self, clause: Clause) -> bool:
        if not self.words.isdisjoint(clause.vocabulary):
            return True
        if not self.stems:
            return False
        beginnings = self._beginnings
        if beginnings is None:  # two threads may both write it: the same expression either way
            beginnings = self._beginnings = LazyRegex(" (?:" + _trie(self.stems) + ")")
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


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # "<kind>.<lang>.<id>": a cue name that may appear in audit logs (never user text)
    kind: str
    lang: str
    family: str
    level: str  # "possible" | "likely"
    regex: LazyRegex
    compact: bool
    anchors: frozenset[str] | None  # the clause must contain one of these words; None = always try
    negatable: bool
    quotable: bool  # inside quotation marks the rule does not apply to the writer
    # The rule's own grammar is a conditional ("if it were painless I'd have gone through with it long ago"),
    # so an "if" in its clause is what it describes, not a hedge that lowers it.
    conditional_form: bool
    unless: LazyRegex | None  # an idiom in the same clause that cancels the rule
    examples: tuple[str, ...]
    counter: tuple[str, ...]
    # Per pattern, every requirement its matches meet; a clause that meets all of no pattern's cannot
    # match, and is not searched. Empty: some pattern requires no word, so every clause is searched.
    requires: tuple[tuple[Requirement, ...], ...] = ()
    # Necessary for any pattern's requirements at once: the union of every pattern's first group (and
    # of every second one). One test each, where most clauses fail, before the patterns are read.
    gates: tuple[Requirement, ...] = ()
    # Each pattern on its own with the words it requires, in the rule's order: a clause is searched for
    # those whose words it holds (``search.first_matches``), not for all seventy of a long rule. Empty:
    # only ``regex`` is read (files without spaces, a pattern that requires no word, a trie of words).
    parts: tuple[Part, ...] = ()

    def may_match(self, clause: Clause, known: dict[Requirement, bool] | None = None) -> bool:
        """False when no match is possible: a test on words, far cheaper than a search of the clause.

        ``known`` remembers the requirements already tested on this clause: the rules tried on one
        clause share most of them (their macros), so each is tested once."""
        if not self.requires:
            return True
        if known is None:
            known = {}
        for gate in self.gates:
            met = known.get(gate)
            if met is None:
                met = known[gate] = gate.met_compact(clause) if self.compact else gate.met(clause)
            if not met:
                return False
        for cnf in self.requires:
            for requirement in cnf:
                met = known.get(requirement)
                if met is None:
                    met = known[requirement] = (
                        requirement.met_compact(clause) if self.compact else requirement.met(clause)
                    )
                if not met:
                    break
            else:
                return True
        return False


@dataclass(frozen=True, slots=True)
class RuleFile:
    name: str
    lang: str
    kind: str
    rules: tuple[Rule, ...]
    vocabulary: frozenset[str]


@dataclass(frozen=True)
class LanguageData:
    """``lang.<xx>.toml``: macros shared by a language's rule files, plus its context words."""

    lang: str
    macros: Mapping[str, Sequence[str]]
    expansions: Mapping[str, str]
    negators: frozenset[str]
    scope_breaks: frozenset[str]  # conjunctions that end a negation's reach ("but", "and")
    jokes: frozenset[str]
    conditionals: frozenset[str]
    symbols: Mapping[str, str] = field(default_factory=dict)
    # A match that opens with its own subject ("i want to die") starts a new predicate: a negator
    # before it belongs to the previous one, unless it negates a neg-raising verb ("i do not think").
    subjects: frozenset[str] = frozenset()
    neg_raisers: frozenset[str] = frozenset()
    # "can not kill myself" denies an ability, not the wish: a negator right after these verbs does not
    # cancel the match that follows it.
    ability: frozenset[str] = frozenset()


# -- pattern compiler ---------------------------------------------------------------------------------

_PIECE = re.compile(r"\s*(\.\.\.\d+|\{[\w.]+\}|[()\[\]|$]|[^\s()\[\]|{}$]+)")


class PatternError(ValueError):
    pass


@dataclass
class _Node:
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


def _trie(words: Iterable[str]) -> str:
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


class _Compiler:
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
        self._cache: dict[str, _Node] = {}  # a macro compiles once per file
        self._words: dict[str, _Node] = {}  # and a word (nodes are never changed once made)

    def compile(self, pattern: str) -> _Node:
        pieces = [m.group(1) for m in _PIECE.finditer(pattern)]
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

    def _alternatives(self, stack: list[str], closing: str | None) -> _Node:
        alts: list[_Node] = []
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
        return _union(alts)

    def _sequence(self, stack: list[str]) -> _Node:
        parts: list[_Node] = []
        while stack and stack[-1] not in ("|", ")", "]"):
            head = stack.pop()
            if head == "(":
                node = self._alternatives(stack, ")")
            elif head == "[":
                inner = self._alternatives(stack, "]")
                node = _Node(f"(?:{inner.regex})?", None, inner.words, first=inner.first)
            elif head.startswith("{"):
                node = self._macro(head[1:-1])
            elif head.startswith("..."):
                n = int(head[3:])
                gap = f".{{0,{n}}}" if self._compact else f"(?:{self._any_word}){{0,{n}}}"
                node = _Node(gap, None, frozenset())
            elif head == "$":
                node = _Node("$", None, frozenset(), first=frozenset())
            elif head == "_":
                node = _Node("." if self._compact else self._any_word, None, frozenset())
            else:
                node = self._words.get(head) or self._words.setdefault(head, self._word(head))
            parts.append(node)
        if not parts:
            return _Node("", None, frozenset(), first=frozenset())
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
        return _Node(
            "".join(p.regex for p in parts),
            anchors,
            frozenset().union(*(p.words for p in parts)),
            required=tuple(g for p in parts for g in p.required),
            first=first,
            nullable=all(p.nullable for p in parts),
        )

    def _word(self, word: str) -> _Node:
        if "?" in word or "..." in word or "\\" in word:
            # Regular-expression habits ("(so )?", "x...3", "\\w") would silently match nothing.
            raise PatternError(f"{word!r} is not pattern syntax: use [optional] and a spaced ...N")
        # Pattern words are folded as the text is (casefolded, Latin accents off, "ß" -> "ss"), so
        # "zasługują" or "Töten" in a rule matches what the normaliser makes of the message.
        word = fold_text(word)
        sep = "" if self._compact else " "
        if word.startswith("*") and len(word) > 1 and not self._compact:
            # "*ly": any word ending so (adverbs); never an anchor, and it must be more than the suffix.
            return _Node(r"[^ ]+" + re.escape(word[1:]) + sep, None, frozenset(), nullable=False)
        if word.endswith("*") and len(word) > 1:
            stem = word[:-1]
            rest = r"[^ ]*?" if self._compact else r"[^ ]*"
            anchors = frozenset({stem})
            return _Node(
                re.escape(stem) + ("" if self._compact else rest) + sep,
                anchors,
                frozenset({stem}),
                required=(frozenset({stem + "*"}),),
                first=frozenset({stem + "*"}),
                nullable=False,
            )
        # In scripts without spaces an anchor is a substring that must occur in the clause.
        anchors = frozenset({word})
        node = _Node(
            re.escape(word) + sep, anchors, frozenset({word}), word, (anchors,), first=anchors, nullable=False
        )
        if not self._compact and word in self._foreign:
            return _union([node, self.compile(self._foreign[word])])
        return node

    def _macro(self, name: str) -> _Node:
        if name in self._cache:
            return self._cache[name]
        if name not in self._macros:
            raise PatternError(f"unknown macro {{{name}}}")
        self._depth += 1
        if self._depth > 8:
            raise PatternError(f"macro {{{name}}} refers to itself")
        try:
            node = _union([self.compile(phrase) for phrase in self._macros[name]])
        finally:
            self._depth -= 1
        self._cache[name] = node
        return node


def _union(alts: list[_Node]) -> _Node:
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
        trie = "(?:" + _trie(a.word or "" for a in plain) + ")" + sep
        regex = "(?:" + "|".join([trie, *rest]) + ")"
        return _Node(regex, anchors, words, required=required, first=first, nullable=nullable)
    regex = "(?:" + "|".join(a.regex for a in alts) + ")"
    return _Node(regex, anchors, words, required=required, first=first, nullable=nullable)


# -- loading ------------------------------------------------------------------------------------------


def _data_files() -> list[tuple[str, str]]:
    root = resources.files("bot.detectors").joinpath("data")
    return sorted(
        (entry.name, entry.read_text("utf-8")) for entry in root.iterdir() if entry.name.endswith(".toml")
    )


def _language(name: str, data: Mapping[str, object]) -> LanguageData:
    def words(key: str) -> frozenset[str]:
        return frozenset(str(w) for w in data.get(key, ()))  # type: ignore[attr-defined]

    macros = {str(k): [str(p) for p in v] for k, v in dict(data.get("macros", {})).items()}  # type: ignore[call-overload]
    return LanguageData(
        lang=str(data.get("lang", name)),
        macros=macros,
        expansions={str(k): str(v) for k, v in dict(data.get("expansions", {})).items()},  # type: ignore[call-overload]
        negators=words("negators"),
        scope_breaks=words("scope_breaks"),
        jokes=words("jokes"),
        conditionals=words("conditionals"),
        symbols={str(k): str(v) for k, v in dict(data.get("symbols", {})).items()},  # type: ignore[call-overload]
        subjects=words("subjects"),
        neg_raisers=words("neg_raisers"),
        ability=words("ability"),
    )


def _rule_file(
    name: str,
    data: Mapping[str, object],
    languages: Mapping[str, LanguageData],
    interned: dict[tuple[bool, frozenset[str]], Requirement],
) -> RuleFile:
    lang, kind = str(data["lang"]), str(data["kind"])
    compact = bool(data.get("compact", False))
    shared = languages.get(lang)
    macros: dict[str, Sequence[str]] = dict(shared.macros) if shared else {}
    macros.update({str(k): [str(p) for p in v] for k, v in dict(data.get("macros", {})).items()})  # type: ignore[call-overload]
    foreign = {k: v for code, other in languages.items() if code != lang for k, v in other.expansions.items()}
    compiler = _Compiler(macros, compact, foreign, shared.negators if shared else None)
    rules: list[Rule] = []
    vocabulary: set[str] = set()
    for raw in data.get("rule", ()):  # type: ignore[attr-defined]
        rid = f"{kind}.{lang}.{raw['id']}"
        level = str(raw.get("level", "possible"))
        if level not in LEVELS:
            raise PatternError(f"{name}: rule {rid}: level must be one of {LEVELS}")
        if not raw.get("examples"):
            raise PatternError(f"{name}: rule {rid} has no examples")
        try:
            nodes = [compiler.compile(p) for p in raw["patterns"]]
            unless_nodes = [compiler.compile(p) for p in raw.get("unless", ())]
        except PatternError as exc:
            raise PatternError(f"{name}: rule {rid}: {exc}") from None
        whole = _union(nodes)
        for node in (*nodes, *unless_nodes):
            vocabulary |= {w for w in node.words if w.isalpha()}
        lead = "" if compact else "(?<= )"
        requires, gates = _requirements(nodes, interned, compact)
        parts = _parts(nodes, interned) if requires and not compact else ()
        rules.append(
            Rule(
                id=rid,
                kind=kind,
                lang=lang,
                family=str(raw.get("family", "")),
                level=level,
                regex=LazyRegex(lead + whole.regex),
                compact=compact,
                anchors=whole.anchors,
                negatable=bool(raw.get("negatable", True)),
                quotable=bool(raw.get("quotable", True)),
                conditional_form=bool(raw.get("conditional_form", False)),
                unless=LazyRegex(lead + _union(unless_nodes).regex) if unless_nodes else None,
                examples=tuple(str(x) for x in raw.get("examples", ())),
                counter=tuple(str(x) for x in raw.get("counter", ())),
                requires=requires,
                gates=gates,
                parts=parts,
            )
        )
    return RuleFile(name, lang, kind, tuple(rules), frozenset(vocabulary))


REQUIREMENTS_PER_PATTERN = 2  # the most selective groups are tested; the rest rarely decide


def _parts(
    patterns: Sequence[_Node], interned: dict[tuple[bool, frozenset[str]], Requirement]
) -> tuple[Part, ...]:
    """A rule's patterns one by one, when their union is their alternation in this order (``_union``
    makes a trie of a dozen plain words, which orders them otherwise) and each requires some word."""
    if sum(p.word is not None for p in patterns) >= TRIE_FROM:
        return ()
    parts = []
    for pattern in patterns:
        groups = sorted(set(pattern.required), key=_rarity, reverse=True)
        requires = tuple(_requirement((False, g), interned) for g in groups)
        parts.append(Part(LazyRegex(" " + _first_word(pattern) + pattern.regex), requires))
    return tuple(parts)


def _first_word(pattern: _Node) -> str:
    """A look-ahead for the words a pattern's match may begin with, or nothing (any word may).

    Many patterns open with a long macro (``{group}``: hundreds of phrases, some optional words before
    the noun) that the engine tries branch by branch at every word of the clause; a trie of its first
    words rejects a word in a few character tests, and the pattern is tried only where one stands."""
    first = pattern.first
    if first is None or pattern.nullable or not first or any(" " in w for w in first):
        return ""
    words = [w for w in first if not w.endswith("*")]
    stems = [w[:-1] for w in first if w.endswith("*")]
    branches = ([f"(?:{_trie(words)}) "] if words else []) + ([_trie(stems)] if stems else [])
    return "(?=" + "|".join(branches) + ")"


def _requirements(
    patterns: Sequence[_Node], interned: dict[tuple[bool, frozenset[str]], Requirement], compact: bool
) -> tuple[tuple[tuple[Requirement, ...], ...], tuple[Requirement, ...]]:
    """A rule's ``requires`` and ``gates``: per pattern, its most selective word groups, rarest first
    (a pattern implied by another, whose groups include all of the other's, is dropped: the other is
    met whenever it is); and for each place in those lists, the union of the groups in it."""
    if not all(p.required for p in patterns):
        return (), ()  # a pattern that requires no word can match any clause
    cnfs = {
        frozenset(sorted(set(p.required), key=_rarity, reverse=True)[:REQUIREMENTS_PER_PATTERN])
        for p in patterns
    }
    kept = sorted((c for c in cnfs if not any(o < c for o in cnfs)), key=lambda c: sorted(map(sorted, c)))
    ordered = [sorted(c, key=_rarity, reverse=True) for c in kept]
    gates = [
        frozenset().union(*(groups[k] for groups in ordered))
        for k in range(REQUIREMENTS_PER_PATTERN)
        if len(ordered) > 1 and all(len(groups) > k for groups in ordered)
    ]
    return (
        tuple(tuple(_requirement((compact, g), interned) for g in groups) for groups in ordered),
        tuple(_requirement((compact, g), interned) for g in gates),
    )


def _rarity(group: frozenset[str]) -> tuple[int, list[str]]:
    """Longer words are rarer in text: a group whose shortest word is longest is tested first."""
    return min(len(w.rstrip("*")) for w in group), sorted(group)


def _requirement(
    key: tuple[bool, frozenset[str]], interned: dict[tuple[bool, frozenset[str]], Requirement]
) -> Requirement:
    """One object per distinct group across the rule set (macros repeat the same groups), in files
    with spaces and in files without, whose tests differ."""
    group = key[1]
    found = interned.get(key)
    if found is None:
        found = interned[key] = Requirement(
            frozenset(w for w in group if not w.endswith("*")),
            tuple(sorted(w[:-1] for w in group if w.endswith("*"))),
        )
    return found


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Every word piece written in the patterns, idioms, macros and expansions of the rule files, folded
    as the compiler folds it: whole words, word beginnings (``kill*``) and word endings (``*ly``).

    A superset of what any compiled expression tests a token for: a token that is none of these words,
    begins with none of the beginnings and ends with none of the endings is read by every rule exactly
    as any other such token (as "some word")."""

    words: frozenset[str]
    beginnings: frozenset[str]
    endings: frozenset[str]


_SYNTAX = frozenset(("(", ")", "[", "]", "|", "$", "_"))


def _lexicon(phrases: Iterable[str]) -> Lexicon:
    words: set[str] = set()
    beginnings: set[str] = set()
    endings: set[str] = set()
    seen: set[str] = set()  # the files repeat most words many times over
    for phrase in phrases:
        for piece in (m.group(1) for m in _PIECE.finditer(phrase)):
            if piece in seen or piece in _SYNTAX or piece.startswith(("{", "...")):
                continue
            seen.add(piece)
            for word in {piece, fold_text(piece)}:
                words.add(word)  # also as written: a compact file's "*x" or a lone "*" is a plain word
                if word.startswith("*") and len(word) > 1:
                    endings.add(word[1:])
                if word.endswith("*") and len(word) > 1:
                    beginnings.add(word[:-1])
    return Lexicon(frozenset(words), frozenset(beginnings), frozenset(endings))


def _phrases(parsed: Iterable[tuple[str, Mapping[str, object]]]) -> Iterator[str]:
    """Every pattern-syntax string of the files: rules' patterns and idioms, macros, expansions."""
    for _, data in parsed:
        for phrases in dict(data.get("macros", {})).values():  # type: ignore[call-overload]
            yield from (str(p) for p in phrases)
        yield from (str(v) for v in dict(data.get("expansions", {})).values())  # type: ignore[call-overload]
        for raw in data.get("rule", ()):  # type: ignore[attr-defined]
            yield from (str(p) for p in raw.get("patterns", ()))
            yield from (str(p) for p in raw.get("unless", ()))


@dataclass(frozen=True)
class RuleSet:
    files: tuple[RuleFile, ...]
    languages: Mapping[str, LanguageData]
    by_anchor: Mapping[str, tuple[Rule, ...]]  # word (or word beginning) -> rules of spaced scripts
    # first character -> (anchor substring, rule) for rules of scripts written without spaces
    compact_by_char: Mapping[str, tuple[tuple[str, Rule], ...]]
    always: tuple[Rule, ...]  # rules without any anchor
    vocabulary: frozenset[str]
    lexicon: Lexicon  # what the patterns can tell apart (see ``RiskDetector`` shapes)

    @property
    def rules(self) -> Iterable[Rule]:
        for f in self.files:
            yield from f.rules


def load_rule_files(files: Iterable[tuple[str, str]] | None = None) -> RuleSet:
    """Parse every ``*.toml`` under ``bot/detectors/data`` (or the given ``(name, text)`` pairs)."""
    parsed = [(name, tomllib.loads(text)) for name, text in (files if files is not None else _data_files())]
    languages = {str(d.get("lang")): _language(name, d) for name, d in parsed if name.startswith("lang.")}
    interned: dict[tuple[bool, frozenset[str]], Requirement] = {}
    rule_files = tuple(
        _rule_file(name, d, languages, interned)
        for name, d in parsed
        if not name.startswith("lang.") and "rule" in d
    )
    by_anchor: dict[str, list[Rule]] = {}
    compact_by_char: dict[str, list[tuple[str, Rule]]] = {}
    always: list[Rule] = []
    for f in rule_files:
        for rule in f.rules:
            if not rule.anchors:
                always.append(rule)
            elif rule.compact:
                for word in rule.anchors:
                    compact_by_char.setdefault(word[0], []).append((word, rule))
            else:
                for word in rule.anchors:
                    by_anchor.setdefault(word, []).append(rule)
    vocabulary: set[str] = set()
    for f in rule_files:
        vocabulary |= f.vocabulary
    for lang in languages.values():
        for phrases in lang.macros.values():
            for phrase in phrases:
                vocabulary |= {w.rstrip("*") for w in re.findall(r"[^\s()\[\]|{}]+", phrase) if w.isalpha()}
        vocabulary |= lang.negators | lang.jokes
    return RuleSet(
        rule_files,
        languages,
        {k: tuple(v) for k, v in by_anchor.items()},
        {k: tuple(v) for k, v in compact_by_char.items()},
        tuple(always),
        frozenset(vocabulary),
        _lexicon(_phrases(parsed)),
    )
