"""The first matches of a rule's union of patterns, found by searching only the patterns that can match.

A rule's expression is ``(?<= )(?:p1|p2|...)``: at each position of the clause the engine tries every
pattern in turn, so a rule of seventy patterns costs seventy tries per character, on every clause that
meets the required words of just one of them. A pattern whose required words the clause lacks cannot
match anywhere in it; searching only the others, each on its own, finds exactly what the union finds:

* the union's next match starts where the earliest of the patterns' next matches starts;
* there, it is the match of the first pattern, in the rule's order, that matches at that position
  (nothing follows the group, so the engine keeps the first alternative that matches, as it matched);
* the union's search then resumes where that match ends; a pattern whose next match starts at or
  after that point still has it as its next one, and the others are searched again from there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

from bot.detectors.patterns import LazyRegex

Span = tuple[int, int]


def first_matches(whole: LazyRegex, parts: Sequence[LazyRegex], hay: str, limit: int) -> tuple[Span, ...]:
    """The first ``limit`` matches of ``whole`` in ``hay``, as ``whole.finditer`` finds them.

    ``whole`` is ``(?<= )(?:p1|p2|...)``; ``parts`` are `` p1``, `` p2`` ... in that order, less those
    that cannot match ``hay``. A part's match of the space before its pattern starts one character
    before the pattern's match; the same pattern then matches the same way (a space is no choice)."""
    pending: list[tuple[int, int, re.Match[str]]] = []  # (start, the part's index, its next match)
    for index, part in enumerate(parts):
        match = part.search(hay)
        if match is not None:
            pending.append((match.start() + 1, index, match))
    spans: list[Span] = []
    while pending and len(spans) < limit:
        start, _, match = min(pending, key=_earliest)
        end = match.end()
        if end == start:
            # After an empty match ``finditer`` steps on by its own rule: read it from the union itself
            # (no rule's pattern matches nothing today, but the data may change).
            return tuple((m.start(), m.end()) for m in islice(whole.finditer(hay), limit))
        spans.append((start, end))
        resumed: list[tuple[int, int, re.Match[str]]] = []
        for entry in pending:
            if entry[0] < end:
                again = parts[entry[1]].search(hay, end - 1)  # the space before a match from ``end``
                if again is None:
                    continue
                entry = (again.start() + 1, entry[1], again)
            resumed.append(entry)
        pending = resumed
    return tuple(spans)


def _earliest(entry: tuple[int, int, re.Match[str]]) -> tuple[int, int]:
    """The earliest start, and at one start the first part in the rule's order."""
    return entry[0], entry[1]


@dataclass(frozen=True, slots=True)
class PartTest:
    """Which patterns of a rule a clause may match, from the numbers of the requirements its words meet
    (``RiskDetector`` numbers them): found by each pattern's rarest requirement, so a rule of seventy
    patterns costs a few set tests."""

    firsts: frozenset[int]
    rests: Mapping[int, tuple[tuple[int, frozenset[int]], ...]]  # first -> (pattern's index, the rest)

    def viable(self, met: frozenset[int]) -> list[int]:
        """The indices of those patterns, in the rule's order."""
        found = [index for first in self.firsts & met for index, rest in self.rests[first] if rest <= met]
        found.sort()
        return found
