"""Local, deterministic detectors: pure functions, no network, linear in the length of the message.

* :func:`assess_risk` — may the writer harm themselves or others? (``POSSIBLE`` is a soft mark: an
  ending then needs the verifier's explicit "no risk"; ``LIKELY`` vetoes endings and shows crisis
  resources at once.)
* :func:`is_end_request` — is the user asking to end this chat?
* :func:`is_abusive` — is the message abuse aimed at the bot or at others?

The names are imported on first use, and the tables are built once, by the first message that needs
them (``risk.default_detector``): commands which never read a message (``haven admin``, ``haven --help``)
never pay for them, and an idle ``haven run`` holds none of their 25–45 MB.
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
]

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
