"""Which rules may match a window of a clause, found without searching it.

A rule is tried on a window only when one of its anchor words is there, and only when the window holds
a word of every group its patterns require (numbered, so that a window's test is a few set operations);
of a rule read pattern by pattern, only the patterns whose words are there are searched. A clause is read
in its *shape*: each word that no rule or context word can tell apart becomes one stand-in, so distinct
clauses of one shape are searched and judged once per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain

from bot.detectors.memo import looked_up
from bot.detectors.normalize import WITHOUT_SPACES, Clause
from bot.detectors.patterns import LazyRegex, Requirement
from bot.detectors.rules import Rule, RuleSet
from bot.detectors.search import PartTest

__all__ = ["ANY_WORD", "RuleIndex", "WindowMemo"]

TOKEN_MEMO = 50_000
# What a word stands for in a clause's shape when neither a rule nor a context word can tell it from
# any other word (see ``RuleIndex.form``); itself such a word, which ``__init__`` checks.
ANY_WORD = "\x00"


@dataclass(slots=True)
class WindowMemo:
    """What one message's selection found per window text: a repeated window is not tested again."""

    met: dict[str, frozenset[int]] = field(default_factory=dict)  # window text -> its requirements
    parts: dict[tuple[str, str], list[LazyRegex]] = field(default_factory=dict)  # rule, text -> viable


class RuleIndex:
    """The rules of some kinds, indexed by anchor word and by the word groups their patterns require."""

    def __init__(self, rules: RuleSet, kinds: Iterable[str]) -> None:
        self._rules = rules
        self._kinds = kinds = frozenset(kinds)
        self._prefix_lengths = sorted({len(a) for a in rules.by_anchor})
        # Anchor -> (id, rule) of these kinds' rules: a new token's rules are one dict of these.
        self._by_anchor = {
            anchor: pairs
            for anchor, anchored in rules.by_anchor.items()
            if (pairs := tuple((r.id, r) for r in anchored if r.kind in kinds))
        }
        self._always = tuple(r for r in rules.always if r.kind in kinds)
        # token -> the rules it anchors; a cache of a pure function of the immutable tables.
        self._by_token: dict[str, tuple[tuple[str, Rule], ...]] = {}
        # ``Rule.may_match`` of each rule of spaced scripts as set tests on numbered requirements: a
        # window's met requirements are the union of its tokens' (memoised per token), and a rule's
        # test is then a few set operations instead of a test per requirement. Most windows are
        # distinct in a long message, and their candidates test dozens of requirements each.
        numbers: dict[Requirement, int] = {}
        self._tests: dict[str, _Test] = {}
        self._part_tests: dict[str, PartTest] = {}  # rule -> which of its patterns a window may match
        for rule in rules.rules:
            if rule.compact or not rule.requires or not all(rule.requires):
                continue  # substrings, or no word required: ``may_match`` itself, which is cheap there
            rests: dict[int, list[frozenset[int]]] = {}
            for cnf in rule.requires:
                first, *rest = (numbers.setdefault(q, len(numbers)) for q in cnf)
                rests.setdefault(first, []).append(frozenset(rest))
            gates = frozenset(numbers.setdefault(q, len(numbers)) for q in rule.gates)
            self._tests[rule.id] = _Test(gates, frozenset(rests), {k: tuple(v) for k, v in rests.items()})
            if rule.parts:
                by_first: dict[int, list[tuple[int, frozenset[int]]]] = {}
                for index, part in enumerate(rule.parts):
                    first, *rest = (numbers.setdefault(q, len(numbers)) for q in part.requires)
                    by_first.setdefault(first, []).append((index, frozenset(rest)))
                self._part_tests[rule.id] = PartTest(
                    frozenset(by_first), {k: tuple(v) for k, v in by_first.items()}
                )
        by_word: dict[str, set[int]] = {}
        by_stem: dict[str, set[int]] = {}
        for requirement, number in numbers.items():
            for word in requirement.words:
                by_word.setdefault(word, set()).add(number)
            for stem in requirement.stems:
                by_stem.setdefault(stem, set()).add(number)
        self._met_by_word = {k: frozenset(v) for k, v in by_word.items()}
        self._met_by_stem = {k: frozenset(v) for k, v in by_stem.items()}
        self._stem_lengths = sorted({len(stem) for stem in by_stem})
        self._met_of: dict[str, frozenset[int]] = {}  # token -> the requirements it meets (memo)
        # The words the mechanism can tell apart: the rules' words, beginnings and endings, the anchors
        # (looked up by every beginning of a token), and every language's context words. Any other
        # token is read as "some word" by every pattern, idiom, requirement and context test, so a
        # clause is read in its shape, with such tokens replaced by one stand-in: "they should all die
        # 17" and "... 18" are then one text, searched and judged once per message. Rules that read
        # characters (files without spaces) would see the stand-in's characters: with a conditional
        # one among them (they read joined clauses of any script), clauses are read as they are.
        lexicon = rules.lexicon
        context = (
            w
            for lang in rules.languages.values()
            for group in (
                lang.negators,
                lang.scope_breaks,
                lang.jokes,
                lang.conditionals,
                lang.subjects,
                lang.neg_raisers,
                lang.ability,
                lang.reporting,
                lang.first_person,
                lang.second_person,
            )
            for entry in group
            for w in (entry, *entry.split())
        )
        self._read_words = lexicon.words | frozenset(context)
        self._read_beginnings = lexicon.beginnings | frozenset(rules.by_anchor)
        # Looked up by a token's own beginnings, one per length: ``str.startswith`` with thousands of
        # beginnings compares each of them, about 25 µs per new token.
        self._beginning_lengths = tuple(sorted({len(b) for b in self._read_beginnings}))
        self._read_endings = tuple(sorted(lexicon.endings))
        # Rules whose grammar is a whole conditional sentence ("if only it were quick, i'd go through with
        # it"): the comma after the condition ends a clause, so the detector also reads a clause that holds
        # a conditional word joined with the clause after it.
        self.conditional_rules = tuple(r for r in rules.rules if r.conditional_form and r.kind in kinds)
        self._shapes = not any(r.compact for r in self.conditional_rules) and not self.is_read(ANY_WORD)
        self._shape_of: dict[str, str] = {}  # token -> itself, or ANY_WORD (memo)

    def clear_cache(self) -> None:
        """Forget every memo of tokens (for measuring a first reading)."""
        self._by_token.clear()
        self._shape_of.clear()
        self._met_of.clear()

    def memoised(self) -> int:
        """How many tokens the memos hold."""
        return len(self._by_token) + len(self._shape_of) + len(self._met_of)

    def holds(self, rule: Rule, met: frozenset[int]) -> bool | None:
        """``rule.may_match`` from the requirement numbers ``met``, or None when the rule is not tested
        so (substrings, or a pattern that requires no word)."""
        test = self._tests.get(rule.id)
        return None if test is None else test.holds(met)

    def form(
        self,
        clause: Clause,
        by_id: dict[int, Clause],
        interned: dict[tuple[tuple[str, ...], tuple[bool, ...]], Clause],
    ) -> Clause:
        """``clause`` in its shape: each word no rule or context word reads replaced by ``ANY_WORD``,
        one object per distinct shape in a message (or the clause itself when nothing is replaced)."""
        form = by_id.get(id(clause))
        if form is None:
            form = by_id[id(clause)] = (
                self._shape(clause, interned) if self._shapes and not clause.cjk else clause
            )
        return form

    def _shape(
        self, clause: Clause, interned: dict[tuple[tuple[str, ...], tuple[bool, ...]], Clause]
    ) -> Clause:
        tokens = clause.tokens
        shaped = tuple(looked_up(self._shape_of, tokens, self._stand))
        if shaped == tokens:
            return clause
        key = (shaped, clause.quoted)
        form = interned.get(key)
        if form is None:
            form = interned[key] = Clause(key[0], clause.quoted, False)
        return form

    def _stand(self, token: str) -> str:
        """What ``token`` stands for in a shape: itself, or ``ANY_WORD`` (memoised)."""
        stand = token if self.is_read(token) else ANY_WORD
        if len(self._shape_of) >= TOKEN_MEMO:
            self._shape_of.clear()
        self._shape_of[token] = stand
        return stand

    def is_read(self, token: str) -> bool:
        """Whether some pattern, idiom, requirement, anchor or context word may tell ``token`` apart."""
        if token in self._read_words or token.endswith(self._read_endings):
            return True
        beginnings = self._read_beginnings
        for n in self._beginning_lengths:
            if n > len(token):
                break
            if token[:n] in beginnings:
                return True
        return False

    def viable(self, window: Clause, memo: WindowMemo, rules: Iterable[Rule] | None = None) -> list[Rule]:
        """Those of ``rules`` (by default the candidates) whose required words ``window`` holds: of a
        rule read pattern by pattern, those of one of its patterns (kept in ``memo`` for ``_read``)."""
        known: dict[Requirement, bool] = {}
        tried = self.candidates(window) if rules is None else rules
        if window.cjk:  # rules of scripts without spaces read substrings, not tokens
            return [r for r in tried if r.may_match(window, known)]
        met = memo.met.get(window.text)
        if met is None:
            met = memo.met[window.text] = self.met(window)
        tests = self._tests
        viable = []
        for rule in tried:
            test = tests.get(rule.id)
            if not (rule.may_match(window, known) if test is None else test.holds(met)):
                continue
            if rule.parts and not self.parts(rule, window, memo):
                continue  # each pattern lacks one of its words (the rule's test reads only two of them)
            viable.append(rule)
        return viable

    def met(self, window: Clause) -> frozenset[int]:
        """The numbers of the requirements ``window``'s words meet."""
        return _NONE_MET.union(*looked_up(self._met_of, window.vocabulary, self._meets))

    def _meets(self, token: str) -> frozenset[int]:
        """The requirements ``token`` meets: it is one of their words or begins with one of their stems
        (memoised)."""
        met = self._met_by_word.get(token, _NONE_MET)
        by_stem = self._met_by_stem
        for n in self._stem_lengths:
            if n > len(token):
                break
            more = by_stem.get(token[:n])
            if more is not None:  # most beginnings are no stem: no new set for them
                met = met | more
        if len(self._met_of) >= TOKEN_MEMO:
            self._met_of.clear()
        self._met_of[token] = met
        return met

    def candidates(self, clause: Clause) -> list[Rule]:
        """The rules worth trying on ``clause``: those with an anchor word in it, and the anchorless."""
        # One dict built from every token's (id, rule) pairs at C speed: a rule keeps the place of its
        # first token, as a loop over the tokens would give it (the order of hits decides the cues).
        found: dict[str, Rule] = dict(
            chain.from_iterable(looked_up(self._by_token, clause.vocabulary, self._anchored))
        )
        if clause.cjk:
            compact = clause.compact
            index = self._rules.compact_by_char
            for ch in [ch for ch in dict.fromkeys(compact) if ch in index]:
                for word, rule in index[ch]:
                    if rule.id not in found and rule.kind in self._kinds and word in compact:
                        found[rule.id] = rule
        for rule in self._always:
            if not rule.compact or clause.cjk:
                found[rule.id] = rule
        return list(found.values())

    def _anchored(self, token: str) -> tuple[tuple[str, Rule], ...]:
        """The rules one of whose anchors (a word or a word's beginning) is ``token``, by id, memoised."""
        rules = self._by_token.get(token)
        if rules is None and WITHOUT_SPACES.match(token):
            return ()  # Chinese, Japanese, Korean pieces: only the compact index can anchor them
        if rules is None:
            by_anchor = self._by_anchor
            size = len(token)
            hits: dict[str, Rule] = {}
            for n in self._prefix_lengths:
                if n > size:
                    break
                pairs = by_anchor.get(token[:n])
                if pairs is not None:
                    hits.update(pairs)
            rules = tuple(hits.items())
            if len(self._by_token) >= TOKEN_MEMO:
                self._by_token.clear()
            self._by_token[token] = rules
        return rules

    def parts(self, rule: Rule, clause: Clause, memo: WindowMemo) -> list[LazyRegex] | None:
        """The patterns of ``rule`` whose required words ``clause`` holds, or None to read the rule's
        whole expression (its patterns are not kept apart)."""
        test = self._part_tests.get(rule.id)
        if test is None:
            return None
        key = (rule.id, clause.text)
        parts = memo.parts.get(key)
        if parts is None:
            met = memo.met.get(clause.text)
            if met is None:
                met = memo.met[clause.text] = self.met(clause)
            all_parts = rule.parts
            parts = memo.parts[key] = [all_parts[index].regex for index in test.viable(met)]
        return parts


_NONE_MET: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class _Test:
    """``Rule.may_match`` on the numbers of the requirements a window meets: every gate, and every
    requirement of one of the patterns' lists (found by the list's first requirement)."""

    gates: frozenset[int]
    firsts: frozenset[int]
    rests: Mapping[int, tuple[frozenset[int], ...]]  # first requirement -> the rest of each list

    def holds(self, met: frozenset[int]) -> bool:
        if not self.gates <= met:
            return False
        for first in self.firsts & met:
            for rest in self.rests[first]:
                if rest <= met:
                    return True
        return False
