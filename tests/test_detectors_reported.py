"""Reported speech across a clause boundary: "he said, they should all be shot" reports someone else's
words, as quotation marks would, so a threat in them is not the writer's and a wish to die in them keeps
only a soft mark. Three limits keep the writer's own words and the threats the writer received:

* the speaker is the writer ("i said, ...", "ich habe gesagt, ...");
* the reported words are said to the writer ("my husband said, i will kill you": a threat received);
* the clause before must end in the verb of saying ("he left, they should all be shot" reports nothing).

Written by hand for this table, none copied from the evaluation files.
"""

from __future__ import annotations

import pytest

from bot.detectors import RiskLevel, assess_risk
from bot.detectors.risk import HARM_TO_OTHERS, SELF_HARM

NONE, POSSIBLE, LIKELY = RiskLevel.NONE, RiskLevel.POSSIBLE, RiskLevel.LIKELY

REPORTED_THREATS = [
    "he said, they should all be shot",
    "my neighbour said: they should all be shot, which is disgusting",
    "someone wrote: kill all the immigrants",
    "er sagte, die gehören alle erschossen, das ist widerlich",
    "el dijo, hay que matarlos a todos",
    "il a dit : il faut tous les tuer",
    "ha detto: bisogna ammazzarli tutti",
    "ele disse: tem que matar todos eles",
]

# The same threats with nothing reporting them, or reported by the writer: they keep their mark.
OWN_THREATS = [
    "they should all be shot",
    "he left, they should all be shot",
    "i said, they should all be shot",
    "ich habe gesagt, die gehören alle erschossen",
    "kill all the immigrants",
    "die gehören alle erschossen",
    "hay que matarlos a todos",
    "il faut tous les tuer",
    "bisogna ammazzarli tutti",
    "tem que matar todos eles",
]

# Reported words addressed to the writer: a threat received, which stays marked.
THREATS_RECEIVED = [
    "my husband said, i will kill you tonight",
    "my dad yelled, i will kill you",
    "er schrieb: ich bring dich um",
]


@pytest.mark.parametrize("text", REPORTED_THREATS)
def test_a_reported_threat_is_not_the_writers(text: str) -> None:
    assert assess_risk(text).level is NONE, text


@pytest.mark.parametrize("text", OWN_THREATS + THREATS_RECEIVED)
def test_own_and_received_threats_stay_marked(text: str) -> None:
    verdict = assess_risk(text)
    assert verdict.level is POSSIBLE and verdict.kind == HARM_TO_OTHERS, text


def test_a_reported_wish_to_die_keeps_a_soft_mark() -> None:
    reported = assess_risk("my friend said, i want to kill myself")
    assert reported.level is POSSIBLE and reported.kind == SELF_HARM
    assert assess_risk("i said, i want to kill myself").level is LIKELY
