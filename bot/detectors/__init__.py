"""Local, deterministic detectors: pure functions, no network, linear in the length of the message.

* :func:`assess_risk` — may the writer harm themselves or others? (``POSSIBLE`` is a soft mark: an
  ending then needs the verifier's explicit "no risk"; ``LIKELY`` vetoes endings and shows crisis
  resources at once.)
* :func:`is_end_request` — is the user asking to end this chat?
* :func:`is_abusive` — is the message abuse aimed at the bot or at others?
* :func:`warm_up` — build the rule tables ahead of the first message (a background thread at start-up).

The names are imported on first use, so that commands which never read a message (``haven admin``,
``haven --help``) do not pay for compiling the rule tables.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.detectors.abuse import is_abusive
    from bot.detectors.end_request import is_end_request
    from bot.detectors.risk import (
        HARM_TO_OTHERS,
        SELF_HARM,
        RiskAssessment,
        RiskLevel,
        assess_risk,
        normalize_text,
    )

__all__ = [
    "HARM_TO_OTHERS",
    "SELF_HARM",
    "RiskAssessment",
    "RiskLevel",
    "assess_risk",
    "is_abusive",
    "is_end_request",
    "normalize_text",
    "warm_up",
]

# A plain request in the words most rules are anchored on: reading it builds the tables and compiles the
# rules those words reach, which is most of what a process's first message would otherwise wait for.
WARM_UP_TEXT = "hi, can you help me? i feel so tired of my work and i want to plan my week"

_HOMES = {
    "is_abusive": "bot.detectors.abuse",
    "is_end_request": "bot.detectors.end_request",
    **dict.fromkeys(
        ("HARM_TO_OTHERS", "SELF_HARM", "RiskAssessment", "RiskLevel", "assess_risk", "normalize_text"),
        "bot.detectors.risk",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bot.detectors' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def warm_up() -> None:
    """Build the detectors and compile the rules ``WARM_UP_TEXT`` reaches (about 2.5 s of CPU and 25 MB)
    so that a process's first message is judged at once instead of after that. Safe to run on a thread
    while messages arrive: the first message waits for the same build instead of starting another."""
    from bot.detectors.abuse import is_abusive
    from bot.detectors.end_request import is_end_request
    from bot.detectors.risk import assess_risk

    assess_risk(WARM_UP_TEXT)
    is_abusive(WARM_UP_TEXT)
    is_end_request(WARM_UP_TEXT)
