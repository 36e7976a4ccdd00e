"""Risk detector: signs that the writer may harm themselves or someone else.

Two levels with opposite priorities:

* ``POSSIBLE`` is a *soft* mark: an ending of the conversation then needs the independent verifier's
  explicit "no risk". Recall matters most: distress in plain words counts, in the languages people write.
* ``LIKELY`` is a *hard* signal: it vetoes every ending and shows crisis resources at once. Precision
  matters most: only explicit first-person suicidal intent, plan or means, explicit self-harm, or an
  explicit first-person threat to kill or hurt someone — never negated, quoted, or joked about in the
  same clause.

The language is in ``data/*.toml`` (rules with their examples and counter-examples), the mechanism in
``normalize.py`` (evasion-proof clauses), ``rules.py`` (patterns) and ``context.py`` (negation,
quotation, joking). Everything is a pure function of the text.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice

from bot.detectors.context import ContextWords, judge
from bot.detectors.memo import looked_up
from bot.detectors.normalize import WITHOUT_SPACES, Clause, Normalizer
from bot.detectors.patterns import LazyRegex, Requirement
from bot.detectors.rules import Rule, RuleSet, load_rule_files
from bot.detectors.search import PartTest, first_matches
from bot.types import RiskAssessment, RiskLevel

__all__ = [
    "HARM_TO_OTHERS",
    "SELF_HARM",
    "RiskAssessment",
    "RiskDetector",
    "RiskLevel",
    "assess_risk",
    "head_and_tail",
    "normalize_text",
]

SELF_HARM = "self_harm"
HARM_TO_OTHERS = "harm_to_others"
RISK_KINDS = (SELF_HARM, HARM_TO_OTHERS)

WINDOW = 64  # long clauses are read in overlapping windows of this many words
STEP = 48
MAX_CUES = 4
MAX_MATCHES = 8
WEAK_CLUSTER = 2  # weak rules (symptom families) that together make a soft mark
TOKEN_MEMO = 50_000
# What a word stands for in a clause's shape when neither a rule nor a context word can tell it from
# any other word (see ``RiskDetector._shape``); itself such a word, which ``__init__`` checks.
ANY_WORD = "\x00"


NO_RISK = RiskAssessment(RiskLevel.NONE, None, ())


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    level: RiskLevel
    why: str

    @property
    def weak(self) -> bool:
        return self.rule.level == "weak"


class RiskDetector:
    """Runs the rule tables of the risk kinds over a message's clauses."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        symbols = {k: v for lang in rules.languages.values() for k, v in lang.symbols.items()}
        self._normalizer = Normalizer(rules.vocabulary, _expansions(rules), symbols)
        self._words = ContextWords.per_language(rules.languages)
        self._no_words = ContextWords.of(None, rules.languages.get("en"))
        self._prefix_lengths = sorted({len(a) for a in rules.by_anchor})
        # Anchor -> (id, rule) of the risk kinds' rules: a new token's rules are one dict of these.
        self._risk_by_anchor = {
            anchor: pairs
            for anchor, anchored in rules.by_anchor.items()
            if (pairs := tuple((r.id, r) for r in anchored if r.kind in RISK_KINDS))
        }
        self._always = tuple(r for r in rules.always if r.kind in RISK_KINDS)
        # The same rule in other languages ("self_harm.es.suicide_mention_self" for the Italian one).
        # Spanish, Italian and Portuguese share words such as "suicidio"; where a sibling matches the
        # same clause, the exception written for that language holds for every sibling's match.
        family: dict[tuple[str, str], list[Rule]] = {}
        for rule in rules.rules:
            family.setdefault((rule.kind, rule.id.rsplit(".", 1)[-1]), []).append(rule)
        self._siblings: dict[str, tuple[Rule, ...]] = {
            r.id: tuple(o for o in group if o.id != r.id and o.unless is not None and o.compact == r.compact)
            for group in family.values()
            for r in group
        }
        # token -> the rules it anchors; a cache of a pure function of the immutable tables.
        self._by_token: dict[str, tuple[tuple[str, Rule], ...]] = {}
        # Rules whose grammar is a whole conditional sentence ("if only it were quick, i'd go through with
        # it"): the comma after the condition ends a clause, so they also read a clause that holds a
        # conditional word joined with the clause after it.
        self._conditional_rules = tuple(r for r in rules.rules if r.conditional_form and r.kind in RISK_KINDS)
        self._conditionals = frozenset(w for lang in rules.languages.values() for w in lang.conditionals)
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
        self._shapes = not any(r.compact for r in self._conditional_rules) and not self._is_read(ANY_WORD)
        self._shape_of: dict[str, str] = {}  # token -> itself, or ANY_WORD (memo)

    @property
    def normalizer(self) -> Normalizer:
        return self._normalizer

    def clear_cache(self) -> None:
        """Forget every memo of tokens and clauses, the normaliser's too (for measuring a first
        reading: a message of new words fills them as it is read)."""
        self._normalizer.clear_cache()
        self._by_token.clear()
        self._shape_of.clear()
        self._met_of.clear()

    def assess(self, text: str) -> RiskAssessment:
        best: dict[RiskLevel, list[Hit]] = {}
        weak: dict[str, Hit] = {}
        settled: set[str] = set()
        for hit in self._hits(text, settled):
            if hit.rule.level != "likely":
                # Its later hits would add nothing: the same cue at the same level (or a weak rule's
                # first hit, which is the one kept), so the rule is not tried again in this message.
                settled.add(hit.rule.id)
            if hit.weak:
                weak.setdefault(hit.rule.id, hit)
                continue
            best.setdefault(hit.level, []).append(hit)
            if hit.level is RiskLevel.LIKELY:
                break  # nothing ranks higher; the rest of a long message need not be read
        by_kind: dict[str, list[Hit]] = {}
        for hit in weak.values():
            by_kind.setdefault(hit.rule.kind, []).append(hit)
        for hits in by_kind.values():
            if len(hits) >= WEAK_CLUSTER:
                best.setdefault(RiskLevel.POSSIBLE, []).extend(hits)
        if not best:
            return NO_RISK
        level = max(best)
        hits = best[level]
        kinds = {h.rule.kind for h in hits}
        kind = SELF_HARM if SELF_HARM in kinds else hits[0].rule.kind
        cues = tuple(sorted({h.rule.id for h in hits if h.rule.kind == kind}))[:MAX_CUES]
        return RiskAssessment(level, kind, cues)

    def hits(self, text: str) -> Iterator[Hit]:
        """Every hit of every rule in ``text``, clause by clause."""
        return self._hits(text, ())

    def _hits(self, text: str, settled: Container[str]) -> Iterator[Hit]:
        """The hits of the rules not in ``settled`` (which the caller may grow while it reads)."""
        clauses = list(self._normalizer.clauses(text))
        interned: dict[tuple[tuple[str, ...], tuple[bool, ...]], Clause] = {}
        by_id: dict[int, Clause] = {}  # the normaliser hands out one object per distinct clause
        forms = [self._form(clause, by_id, interned) for clause in clauses]
        seen: set[tuple[str, str, str]] = set()
        # Readings by shape (quotation marks included, which the texts above leave out): one with the
        # same shape and the same neighbours' shapes finds what the first found, so it is not repeated.
        alike: set[tuple[str, tuple[bool, ...], str, str]] = set()
        joined_alike: set[tuple[int, int, int, int]] = set()
        # The rules worth trying on each distinct window (anchored there, and whose required words are
        # there): a message of many short clauses repeats most of them, with other neighbours, and
        # most have none, which then costs one look-up per clause.
        tried: dict[tuple[str, bool], list[Rule]] = {}
        searches = _Searches()
        idle: set[int] = set()  # clauses (by identity: the normaliser reuses them) with nothing to read
        last = len(clauses) - 1
        for i, clause in enumerate(clauses):
            if id(clause) in idle:
                continue
            before = clauses[i - 1] if i > 0 else None
            after = clauses[i + 1] if i < last else None
            form = forms[i]
            form_before = forms[i - 1] if i > 0 else None
            form_after = forms[i + 1] if i < last else None
            busy = False
            if len(clause.tokens) <= WINDOW:
                pairs: Iterable[tuple[Clause, Clause]] = ((clause, form),)
            elif form is clause:
                pairs = ((window, window) for window in _windows(clause))
            else:
                pairs = zip(_windows(clause), _windows(form), strict=True)
            for window, shape in pairs:
                rules = tried.get((shape.text, shape.cjk))
                if rules is None:
                    rules = tried[shape.text, shape.cjk] = self._viable(shape, searches)
                if not rules:
                    continue
                busy = True
                # A repeated phrase is read once (with the same neighbours it would judge the same).
                key = (window.text, before.text if before else "", after.text if after else "")
                like = (
                    shape.text,
                    shape.quoted,
                    form_before.text if form_before else "",
                    form_after.text if form_after else "",
                )
                if key in seen or like in alike:
                    continue
                seen.add(key)
                alike.add(like)
                for rule in rules:
                    if rule.id in settled:
                        continue
                    hit = self._read(rule, shape, form_before, form_after, searches)
                    if hit is not None:
                        yield hit
            if self._conditional_rules and not self._conditionals.isdisjoint(clause.tokens):
                busy = True
                if form_after is not None:
                    rest = forms[i + 2 : i + 3]
                    # ``forms`` holds every clause object for the whole message, so their ids are stable.
                    joint = (id(form), id(form_after), id(form_before), id(rest[0]) if rest else 0)
                    if joint not in joined_alike:
                        joined_alike.add(joint)
                        yield from self._conditional_sentence(
                            form, form_after, form_before, rest, settled, searches
                        )
            if not busy:
                idle.add(id(clause))

    def _form(
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
        stand = token if self._is_read(token) else ANY_WORD
        if len(self._shape_of) >= TOKEN_MEMO:
            self._shape_of.clear()
        self._shape_of[token] = stand
        return stand

    def _is_read(self, token: str) -> bool:
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

    def _viable(self, window: Clause, memo: _Searches, rules: Iterable[Rule] | None = None) -> list[Rule]:
        """Those of ``rules`` (by default the candidates) whose required words ``window`` holds: of a
        rule read pattern by pattern, those of one of its patterns (kept in ``memo`` for ``_read``)."""
        known: dict[Requirement, bool] = {}
        tried = self.candidates(window) if rules is None else rules
        if window.cjk:  # rules of scripts without spaces read substrings, not tokens
            return [r for r in tried if r.may_match(window, known)]
        met = memo.met.get(window.text)
        if met is None:
            met = memo.met[window.text] = self._met(window)
        tests = self._tests
        viable = []
        for rule in tried:
            test = tests.get(rule.id)
            if not (rule.may_match(window, known) if test is None else test.holds(met)):
                continue
            if rule.parts and not self._parts(rule, window, memo):
                continue  # each pattern lacks one of its words (the rule's test reads only two of them)
            viable.append(rule)
        return viable

    def _met(self, window: Clause) -> frozenset[int]:
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

    def _conditional_sentence(
        self,
        clause: Clause,
        after: Clause,
        before: Clause | None,
        rest: list[Clause],
        settled: Container[str],
        searches: _Searches,
    ) -> Iterator[Hit]:
        """Conditional rules on a condition clause joined with the clause after it (bounded: one window)."""
        if len(clause.tokens) + len(after.tokens) > WINDOW or self._conditionals.isdisjoint(clause.tokens):
            return
        joined = Clause(clause.tokens + after.tokens, clause.quoted + after.quoted, clause.cjk or after.cjk)
        for rule in self._viable(joined, searches, self._conditional_rules):
            if rule.id in settled:
                continue
            hit = self._read(rule, joined, before, rest[0] if rest else None, searches)
            if hit is not None:
                yield hit

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
                    if rule.id not in found and rule.kind in RISK_KINDS and word in compact:
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
            by_anchor = self._risk_by_anchor
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

    def _read(
        self, rule: Rule, clause: Clause, before: Clause | None, after: Clause | None, memo: _Searches
    ) -> Hit | None:
        """``rule``'s hit in ``clause``, judged in context, or None (its requirements are met)."""
        hay = clause.compact if rule.compact else clause.text
        key = (rule.id, hay)
        if key not in memo.spans:
            memo.spans[key] = _spans(rule, hay, self._parts(rule, clause, memo))
        spans = memo.spans[key]
        if spans is None:
            return None  # an idiom in the clause cancels every match
        words = self._words.get(rule.lang, self._no_words)
        best: Hit | None = None
        for start, end in spans:
            verdict = judge(rule, clause, start, end, words, before=before, after=after, idiom=False)
            if verdict.level is None:
                continue
            hit = Hit(
                rule, RiskLevel.LIKELY if verdict.level == "likely" else RiskLevel.POSSIBLE, verdict.why
            )
            if hit.level is RiskLevel.LIKELY:
                return (
                    None if self._excused(rule, clause, hay, memo) else hit
                )  # a later match cannot rank higher
            best = best or hit  # a softened match; a later, unsoftened one may still count in full
        return None if best is not None and self._excused(rule, clause, hay, memo) else best

    def _parts(self, rule: Rule, clause: Clause, memo: _Searches) -> list[LazyRegex] | None:
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
                met = memo.met[clause.text] = self._met(clause)
            all_parts = rule.parts
            parts = memo.parts[key] = [all_parts[index].regex for index in test.viable(met)]
        return parts

    def _excused(self, rule: Rule, clause: Clause, hay: str, memo: _Searches) -> bool:
        """A sibling reads the same words here (its own pattern matches) and its language's exception
        applies: "no es un suicidio" cancels the Italian rule's "suicidio" too.

        Asked only once the rule itself counts: most tries of a rule match nothing, and the siblings'
        searches then cost more than the rule's own."""
        excused = memo.excused.get((rule.id, hay))
        if excused is None:
            excused = memo.excused[rule.id, hay] = any(
                sibling.unless is not None
                and sibling.may_match(clause)
                and sibling.regex.search(hay)
                and sibling.unless.search(hay)
                for sibling in self._siblings.get(rule.id, ())
            )
        return excused


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


@dataclass(slots=True)
class _Searches:
    """What one message's searches found, per rule and window text: a repeated window with other
    neighbours is judged again in its new context, but its text is not searched again."""

    spans: dict[tuple[str, str], tuple[tuple[int, int], ...] | None] = field(default_factory=dict)
    excused: dict[tuple[str, str], bool] = field(default_factory=dict)
    met: dict[str, frozenset[int]] = field(default_factory=dict)  # window text -> its requirements
    parts: dict[tuple[str, str], list[LazyRegex]] = field(default_factory=dict)  # rule, text -> viable


def _spans(rule: Rule, hay: str, parts: list[LazyRegex] | None) -> tuple[tuple[int, int], ...] | None:
    """Where ``rule`` matches ``hay`` (its first matches: more are repeats that context judges alike),
    or None when the rule's idiom is there too, which cancels every match. ``parts``: its patterns
    that may match ``hay``, searched instead of the whole expression, with the same result."""
    if parts is None:
        spans = tuple((m.start(), m.end()) for m in islice(rule.regex.finditer(hay), MAX_MATCHES))
    else:
        spans = first_matches(rule.regex, parts, hay, MAX_MATCHES)
    if spans and rule.unless is not None and rule.unless.search(hay):
        return None
    return spans


def _windows(clause: Clause) -> Iterator[Clause]:
    """The clause itself, or overlapping windows that together cover every word of a long clause."""
    n = len(clause.tokens)
    if n <= WINDOW:
        yield clause
        return
    start = 0
    while True:
        end = min(n, start + WINDOW)
        yield Clause(clause.tokens[start:end], clause.quoted[start:end], clause.cjk)
        if end >= n:
            return
        start += STEP


def _expansions(rules: RuleSet) -> dict[str, str]:
    table: dict[str, str] = {}
    for lang in rules.languages.values():
        table.update(lang.expansions)
    return table


def default_detector() -> RiskDetector:
    """The detector over the shipped rule tables, built once on first use (it is immutable).

    Several worker threads may ask at once for the first messages of a process; one builds, the rest
    wait for it.
    """
    with _BUILDING:
        return _build_default()


_BUILDING = threading.Lock()


@functools.cache
def _build_default() -> RiskDetector:
    return RiskDetector(load_rule_files())


def assess_risk(text: str) -> RiskAssessment:
    return default_detector().assess(text)


def normalize_text(text: str) -> str:
    """The shared normalisation as one string with punctuation kept (for the abuse and end-request
    detectors, whose patterns read whole lines)."""
    return default_detector().normalizer.flat(text)


HEAD_CHARS = 3_000
TAIL_CHARS = 1_000


def head_and_tail(text: str) -> str:
    """What the line-reading detectors read of a long message: its opening and its end.

    Abuse and a request to end the chat show in what a person types, not somewhere inside a pasted
    log; reading a bounded part keeps those detectors' time bounded whatever the message's length.
    (The risk detector reads every clause.)
    """
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n\n" + text[-TAIL_CHARS:]
