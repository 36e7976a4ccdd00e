"""Failures, handled one way by every adapter: logged without people's words, retried by one rule.

- ``log_failure`` logs what failed, the exception's type and the innermost Haven frames it passed
  through, and the ids it is given — never the exception's text, which can quote people's words (a
  database error repeats its parameters).
- ``retry_turn`` runs a message turn again when it failed on a passing fault (``transient``: the
  database restarting, a dropped connection) before any of its reply was shown, after
  ``TURN_RETRY_DELAYS``. The engine's dedupe makes a turn that had already stored the message come
  back as a duplicate, so a retry never answers twice.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from bot.ports import StorageUnavailable

T = TypeVar("T")

TURN_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
_ROOT = str(Path(__file__).resolve().parents[1])


def transient(exc: BaseException) -> bool:
    """A fault that may pass by itself: a lost connection, or the database (re)starting."""
    return isinstance(exc, ConnectionError | TimeoutError | StorageUnavailable)


def where(exc: BaseException) -> str:
    """The innermost Haven frames an exception passed through (``repository.py:_finish_turn < …``)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith(_ROOT) and "site-packages" not in f.filename
    ]
    return " < ".join(f"{Path(f.filename).name}:{f.name}" for f in reversed(frames[-3:])) or "?"


def log_failure(
    logger: logging.Logger, event: str, exc: BaseException, *, level: int = logging.ERROR, **ids: object
) -> None:
    """Log ``event`` with the exception's type and place and ``ids`` (platform ids, never text)."""
    logger.log(level, event, extra={**ids, "error": type(exc).__name__, "where": where(exc)})


async def retry_turn(
    attempt: Callable[[int], Awaitable[T]],
    *,
    shown: Callable[[BaseException], bool],
    logger: logging.Logger,
    event: str,
    delays: tuple[float, ...] = TURN_RETRY_DELAYS,
    **ids: object,
) -> T:
    """``attempt(n)`` until it returns; a transient failure is retried unless ``shown(exc)`` says part
    of the reply is already on screen. The last failure is raised for the caller to log and answer."""
    for n, pause in enumerate((*delays, None)):
        try:
            return await attempt(n)
        except Exception as exc:
            if pause is None or shown(exc) or not transient(exc):
                raise
            log_failure(logger, f"{event}; trying again", exc, level=logging.WARNING, attempt=n + 1, **ids)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
