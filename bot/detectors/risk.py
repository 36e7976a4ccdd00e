"""Risk detector: signs that the writer may harm themselves or someone else.

Two levels with opposite priorities:

* ``POSSIBLE`` is a *soft* mark: an ending of the conversation then needs the independent verifier's
  explicit "no risk". Recall matters most: distress in plain words counts, in the languages people write.
* ``LIKELY`` is a *hard* signal: it vetoes every ending and shows crisis resources at once. Precision
  matters most: only explicit first-person suicidal intent, plan or means, explicit self-harm, or an
  explicit first-person threat to kill or hurt someone — never negated, quoted, or joked about in the
  same clause.

The language is in ``data/*.toml`` (rules with their examples and counter-examples), the mechanism in
``normalize.py`` (evasion-proof clauses), ``rules.py`` and ``patterns.py`` (rules of patterns),
``selection.py`` (which rules a window may match), ``search.py`` (where they match) and ``context.py``
(negation, quotation, joking). Everything is a pure function of the text.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from bot.detectors.context import ContextWords, judge
from bot.detectors.normalize import Clause, Normalizer
from bot.detectors.patterns import LazyRegex
from bot.detectors.rules import Rule, RuleSet, load_rule_files
from bot.detectors.search import first_matches
from bot.detectors.selection import RuleIndex, WindowMemo
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
        self._index = RuleIndex(rules, RISK_KINDS)
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
        self._conditionals = frozenset(w for lang in rules.languages.values() for w in lang.conditionals)

    @property
    def normalizer(self) -> Normalizer:
        return self._normalizer

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @property
    def index(self) -> RuleIndex:
        return self._index

    def clear_cache(self) -> None:
        """Forget every memo of tokens and clauses, the normaliser's too (for measuring a first
        reading: a message of new words fills them as it is read)."""
        self._normalizer.clear_cache()
        self._index.clear_cache()

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
        forms = [self._index.form(clause, by_id, interned) for clause in clauses]
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
                    rules = tried[shape.text, shape.cjk] = self._index.viable(shape, searches)
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
            if self._index.conditional_rules and not self._conditionals.isdisjoint(clause.tokens):
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
        for rule in self._index.viable(joined, searches, self._index.conditional_rules):
            if rule.id in settled:
                continue
            hit = self._read(rule, joined, before, rest[0] if rest else None, searches)
            if hit is not None:
                yield hit

    def _read(
        self, rule: Rule, clause: Clause, before: Clause | None, after: Clause | None, memo: _Searches
    ) -> Hit | None:
        """``rule``'s hit in ``clause``, judged in context, or None (its requirements are met)."""
        hay = clause.compact if rule.compact else clause.text
        key = (rule.id, hay)
        if key not in memo.spans:
            memo.spans[key] = _spans(rule, hay, self._index.parts(rule, clause, memo))
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


@dataclass(slots=True)
class _Searches(WindowMemo):
    """What one message's searches found, per rule and window text: a repeated window with other
    neighbours is judged again in its new context, but its text is not searched again."""

    spans: dict[tuple[str, str], tuple[tuple[int, int], ...] | None] = field(default_factory=dict)
    excused: dict[tuple[str, str], bool] = field(default_factory=dict)


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
