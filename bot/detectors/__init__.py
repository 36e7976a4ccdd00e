"""Local, deterministic detectors: pure functions, no network, well under a millisecond per message.

* :func:`assess_risk` — may the user harm themselves or others? (``POSSIBLE`` vetoes endings,
  ``LIKELY`` also shows crisis resources at once.)
* :func:`is_end_request` — is the user asking to end this chat?
* :func:`is_abusive` — is the message abuse aimed at the bot or at others?
"""

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
