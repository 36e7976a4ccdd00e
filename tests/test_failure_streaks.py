"""The model-failure alert's timing: a streak per workspace, one alert per streak, a quiet period."""

from __future__ import annotations

import pytest

from bot.failure_streaks import FailureStreaks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# Each step: (seconds later, workspace, "fail" | "ok", alert expected on a "fail").
@pytest.mark.parametrize(
    ("steps"),
    [
        pytest.param(
            [(0, "A", "fail", False), (1, "A", "fail", False), (1, "A", "fail", True)],
            id="third-failure-alerts",
        ),
        pytest.param(
            [
                (0, "A", "fail", False),
                (1, "A", "fail", False),
                (1, "A", "ok", False),
                (1, "A", "fail", False),
            ],
            id="an-answer-ends-the-streak",
        ),
        pytest.param(
            [
                (0, "A", "fail", False),
                (0, "B", "fail", False),
                (0, "A", "fail", False),
                (0, "B", "fail", False),
            ],
            id="workspaces-counted-apart",
        ),
        pytest.param(
            [
                (0, "A", "fail", False),
                (0, "A", "fail", False),
                (0, "A", "fail", True),
                (1, "A", "fail", False),
            ],
            id="one-alert-per-streak",
        ),
        pytest.param(
            [
                *[(0, "A", "fail", n == 2) for n in range(3)],
                (10, "A", "ok", False),
                *[(10, "A", "fail", False) for _ in range(3)],  # flapping inside the quiet hour: silent
                (3600, "A", "fail", True),  # the outage still goes on an hour later: told again
            ],
            id="quiet-period-after-an-alert",
        ),
        pytest.param(
            [
                *[(0, "A", "fail", n == 2) for n in range(3)],
                (3700, "A", "ok", False),
                *[(1, "A", "fail", n == 2) for n in range(3)],
            ],
            id="a-new-streak-after-the-quiet-period",
        ),
    ],
)
def test_when_the_model_failure_alert_fires(steps: list[tuple[float, str, str, bool]]) -> None:
    clock = Clock()
    streaks = FailureStreaks(after=3, quiet_seconds=3600, clock=clock)
    for later, key, what, alert in steps:
        clock.now += later
        if what == "ok":
            streaks.succeeded(key)
        else:
            assert streaks.failed(key) is alert, (clock.now, key)


def test_the_streak_length_is_reported() -> None:
    streaks = FailureStreaks(after=3)
    for _ in range(4):
        streaks.failed("A")
    assert streaks.failures("A") == 4 and streaks.failures("B") == 0
