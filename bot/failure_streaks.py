"""When to tell a workspace's admins that the model keeps failing: a streak of failed turns per
workspace, one alert per streak, and then a quiet period.

Per process and in memory: with several processes each may alert once for the same outage, which is
better than a shared counter that itself depends on the database (an outage's other usual suspect).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Three turns in a row that got the error note: one is a blip, three is an outage people feel.
MODEL_ALERT_AFTER = 3
# After an alert, the same workspace is not alerted again for this long, however the model flaps.
MODEL_ALERT_QUIET_SECONDS = 3600.0
# Workspaces remembered at most (a streak of a workspace not seen for long is forgotten first).
MAX_WORKSPACES = 10_000


@dataclass
class _Streak:
    failures: int = 0
    alerted_at: float | None = None


class FailureStreaks:
    """``failed(key)`` is True exactly when this failure should raise an alert."""

    def __init__(
        self,
        *,
        after: int = MODEL_ALERT_AFTER,
        quiet_seconds: float = MODEL_ALERT_QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._after = after
        self._quiet = quiet_seconds
        self._clock = clock
        self._streaks: dict[str, _Streak] = {}

    def failed(self, key: str) -> bool:
        now = self._clock()
        streak = self._streaks.pop(key, None) or _Streak()
        self._streaks[key] = streak  # most recently seen last
        streak.failures += 1
        quiet = streak.alerted_at is not None and now - streak.alerted_at < self._quiet
        if streak.failures < self._after or quiet:
            self._forget_oldest()
            return False
        streak.alerted_at = now
        return True

    def failures(self, key: str) -> int:
        """The current streak's length (for the alert's text)."""
        streak = self._streaks.get(key)
        return streak.failures if streak is not None else 0

    def succeeded(self, key: str) -> None:
        """A turn of ``key`` got its answer: the streak ends (a recent alert still keeps it quiet)."""
        streak = self._streaks.get(key)
        if streak is None:
            return
        streak.failures = 0
        if streak.alerted_at is None or self._clock() - streak.alerted_at >= self._quiet:
            del self._streaks[key]

    def _forget_oldest(self) -> None:
        while len(self._streaks) > MAX_WORKSPACES:
            del self._streaks[next(iter(self._streaks))]
