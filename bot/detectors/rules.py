"""Rule tables: load the TOML files under ``bot/detectors/data`` into rules of compiled patterns.

The language lives in the data files; this module and ``patterns.py`` (the pattern syntax and its
compiler) are the mechanism. A rule file holds one ``kind`` (``self_harm``, ``harm_to_others`` ...) for
one language, a few ``[macros]`` and a list of rules:

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
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

from bot.detectors.fold import fold_text
from bot.detectors.normalize import Clause
from bot.detectors.patterns import (
    PIECE,
    TRIE_FROM,
    Compiler,
    LazyRegex,
    Node,
    Part,
    PatternError,
    Requirement,
    trie,
    union,
)

__all__ = ["LanguageData", "Lexicon", "Rule", "RuleFile", "RuleSet", "load_rule_files"]

# "weak": a symptom that marks nothing alone; two weak rules of different families in one message make a
# "possible" (screening questionnaires count symptoms the same way).
LEVELS = ("weak", "possible", "likely")


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
    # Hyperbole split by a comma ("i want to die, my team lost again"): a clause that is nothing but
    # ``alone`` (read from its first word), next to a clause that ``beside`` matches, does not count.
    alone: LazyRegex | None = None
    beside: LazyRegex | None = None

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
    # A clause that ends in one of these verbs of saying ("he said, ...", "er schrieb: ...") hands the
    # next clause to someone else, unless its speaker is one of ``first_person`` ("i said, ...") or the
    # words reported are addressed to ``second_person`` (the writer: "he said, i will kill you").
    reporting: frozenset[str] = frozenset()
    first_person: frozenset[str] = frozenset()
    second_person: frozenset[str] = frozenset()


# -- loading ---------------------------------------------------------------------------------------


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
        reporting=words("reporting"),
        first_person=words("first_person"),
        second_person=words("second_person"),
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
    compiler = Compiler(macros, compact, foreign, shared.negators if shared else None)
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
            alone_nodes = [compiler.compile(p) for p in raw.get("when_alone", ())]
            beside_nodes = [compiler.compile(p) for p in raw.get("unless_beside", ())]
        except PatternError as exc:
            raise PatternError(f"{name}: rule {rid}: {exc}") from None
        whole = union(nodes)
        if bool(alone_nodes) != bool(beside_nodes):
            raise PatternError(f"{name}: rule {rid}: when_alone and unless_beside go together")
        for node in (*nodes, *unless_nodes, *alone_nodes, *beside_nodes):
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
                unless=LazyRegex(lead + union(unless_nodes).regex) if unless_nodes else None,
                examples=tuple(str(x) for x in raw.get("examples", ())),
                counter=tuple(str(x) for x in raw.get("counter", ())),
                requires=requires,
                gates=gates,
                parts=parts,
                alone=LazyRegex("^ " + union(alone_nodes).regex) if alone_nodes else None,
                beside=LazyRegex(lead + union(beside_nodes).regex) if beside_nodes else None,
            )
        )
    return RuleFile(name, lang, kind, tuple(rules), frozenset(vocabulary))


REQUIREMENTS_PER_PATTERN = 2  # the most selective groups are tested; the rest rarely decide


def _parts(
    patterns: Sequence[Node], interned: dict[tuple[bool, frozenset[str]], Requirement]
) -> tuple[Part, ...]:
    """A rule's patterns one by one, when their union is their alternation in this order (``union``
    makes a trie of a dozen plain words, which orders them otherwise) and each requires some word."""
    if sum(p.word is not None for p in patterns) >= TRIE_FROM:
        return ()
    parts = []
    for pattern in patterns:
        groups = sorted(set(pattern.required), key=_rarity, reverse=True)
        requires = tuple(_requirement((False, g), interned) for g in groups)
        parts.append(Part(LazyRegex(" " + _first_word(pattern) + pattern.regex), requires))
    return tuple(parts)


def _first_word(pattern: Node) -> str:
    """A look-ahead for the words a pattern's match may begin with, or nothing (any word may).

    Many patterns open with a long macro (``{group}``: hundreds of phrases, some optional words before
    the noun) that the engine tries branch by branch at every word of the clause; a trie of its first
    words rejects a word in a few character tests, and the pattern is tried only where one stands."""
    first = pattern.first
    if first is None or pattern.nullable or not first or any(" " in w for w in first):
        return ""
    words = [w for w in first if not w.endswith("*")]
    stems = [w[:-1] for w in first if w.endswith("*")]
    branches = ([f"(?:{trie(words)}) "] if words else []) + ([trie(stems)] if stems else [])
    return "(?=" + "|".join(branches) + ")"


def _requirements(
    patterns: Sequence[Node], interned: dict[tuple[bool, frozenset[str]], Requirement], compact: bool
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
        for piece in (m.group(1) for m in PIECE.finditer(phrase)):
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
            yield from (str(p) for p in raw.get("when_alone", ()))
            yield from (str(p) for p in raw.get("unless_beside", ()))


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
