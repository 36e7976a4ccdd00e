"""Regression floors for the local detectors on the real evaluation data (../shared/eval-data).

The floors are the figures measured when the detectors were written, rounded a few points towards
failure, and never weaker than the product targets (design brief 1.4):

* HateCheck threats (label 1) recall at ``possible`` >= 0.90
* DiaSafety risk contexts (label 1) recall at ``possible`` >= 0.90
* STRUDEL benign violent idioms: false alarms <= 1% at ``possible`` and exactly 0 at ``likely``
* DiaSafety health questions (label 0): false alarms <= 5% at ``possible``

The data is for measuring, not fitting: when a floor fails, improve a whole family of expressions or a
grammatical rule, never add a special case for a row.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.detectors import risk
from bot.eval import (
    CONVABUSE,
    DIASAFETY,
    HATECHECK,
    STRUDEL,
    EvalRow,
    evaluate,
    format_table,
    iter_messages,
    main,
)

ENV_VAR = "HAVEN_EVAL_DATA"


def _in_ci() -> bool:
    # Same convention as the rest of the suite: set, and not an explicit false.
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _data_dir() -> Path:
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "eval-data"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    path = _data_dir()
    if not all((path / name).is_file() for name in (HATECHECK, DIASAFETY, STRUDEL, CONVABUSE)):
        if _in_ci():
            pytest.fail(f"CI must measure the detectors, but the evaluation data is missing: {path}")
        pytest.skip(f"evaluation data not found at {path} (set {ENV_VAR})")
    return path


@pytest.fixture(scope="module")
def figures(data_dir: Path) -> dict[tuple[str, str, str, str], EvalRow]:
    return {(r.file, r.detector, r.level, r.metric): r for r in evaluate(data_dir)}


# (file, detector, level, metric) -> lowest acceptable value. Measured in brackets.
FLOORS = {
    (HATECHECK, "risk", "possible", "recall"): 0.97,  # [1.000]  target 0.90
    (HATECHECK, "risk", "likely", "recall"): 0.20,  # [0.231]
    (DIASAFETY, "risk", "possible", "recall"): 0.90,  # [0.901]  target 0.90
    (DIASAFETY, "risk", "likely", "recall"): 0.12,  # [0.151]
    (CONVABUSE, "abuse", "-", "precision"): 0.95,  # [0.984]
    (CONVABUSE, "abuse", "-", "recall"): 0.70,  # [0.750]
}
# (file, detector, level, metric) -> highest acceptable value.
CEILINGS = {
    (STRUDEL, "risk", "possible", "false_alarm"): 0.01,  # [0.006]  target 0.01
    (STRUDEL, "risk", "likely", "false_alarm"): 0.0,  # [0.000]  target 0
    (DIASAFETY, "risk", "possible", "false_alarm"): 0.03,  # [0.015]  target 0.05
    (DIASAFETY, "risk", "likely", "false_alarm"): 0.005,  # [0.000]
    (HATECHECK, "risk", "possible", "false_alarm"): 0.06,  # [0.036]
    (HATECHECK, "risk", "likely", "false_alarm"): 0.01,  # [0.003]
    (HATECHECK, "risk", "possible", "false_alarm[counter_quote_nh]"): 0.02,  # [0.000]
    (HATECHECK, "risk", "likely", "false_alarm[counter_quote_nh]"): 0.0,  # [0.000]
    (HATECHECK, "risk", "possible", "false_alarm[counter_ref_nh]"): 0.02,  # [0.000]
    (HATECHECK, "risk", "likely", "false_alarm[counter_ref_nh]"): 0.0,  # [0.000]
    (CONVABUSE, "abuse", "-", "false_alarm"): 0.03,  # [0.012]
    (CONVABUSE, "risk", "possible", "false_alarm"): 0.06,  # [0.033]
    (CONVABUSE, "risk", "likely", "false_alarm"): 0.01,  # [0.002]
}
TARGET_FLOORS = {
    (HATECHECK, "risk", "possible", "recall"): 0.90,
    (DIASAFETY, "risk", "possible", "recall"): 0.90,
}
TARGET_CEILINGS = {
    (STRUDEL, "risk", "possible", "false_alarm"): 0.01,
    (STRUDEL, "risk", "likely", "false_alarm"): 0.0,
    (DIASAFETY, "risk", "possible", "false_alarm"): 0.05,
}


def test_floors_are_never_weaker_than_the_targets() -> None:
    for key, target in TARGET_FLOORS.items():
        assert FLOORS[key] >= target, key
    for key, target in TARGET_CEILINGS.items():
        assert CEILINGS[key] <= target, key


@pytest.mark.parametrize("key", sorted(FLOORS), ids=lambda k: "/".join(k))
def test_floor(figures: dict[tuple[str, str, str, str], EvalRow], key: tuple[str, str, str, str]) -> None:
    row = figures[key]
    assert row.n > 0
    assert row.value >= FLOORS[key], f"{'/'.join(key)} = {row.value:.3f} < floor {FLOORS[key]}"


@pytest.mark.parametrize("key", sorted(CEILINGS), ids=lambda k: "/".join(k))
def test_ceiling(figures: dict[tuple[str, str, str, str], EvalRow], key: tuple[str, str, str, str]) -> None:
    row = figures[key]
    assert row.n > 0
    assert row.value <= CEILINGS[key], f"{'/'.join(key)} = {row.value:.3f} > ceiling {CEILINGS[key]}"


def test_table_lists_every_figure(figures: dict[tuple[str, str, str, str], EvalRow]) -> None:
    table = format_table(list(figures.values()))
    lines = table.splitlines()
    assert lines[0].split() == ["file", "detector", "level", "metric", "value", "n"]
    assert len(lines) == 2 + len(figures)
    assert set(FLOORS) | set(CEILINGS) <= set(figures)


def test_main_prints_the_table(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "A_diasafety_risk_contexts.jsonl" in out and "false_alarm[counter_quote_nh]" in out


def test_main_reports_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err


def test_prefilters_never_skip_a_pattern_that_matches(data_dir: Path) -> None:
    """The substring/token prefilters are an optimisation only: on every real message, any pattern that
    matches must also pass its prefilter (on the whole text and on the chunk it matches in)."""
    patterns = [rx for rule in risk._SELF_HARM_RULES for rx in rule.patterns]
    patterns += [rx for rule in risk._DISTRESS_RULES for rx in rule.patterns]
    for message in iter_messages(data_dir):
        doc = risk._Doc.build(risk.normalize_text(message)[:20_000])
        for rx in patterns:
            m = rx.regex.search(doc.text)
            if m is None:
                continue
            assert rx.possible(doc.text, doc.tokens), rx.pattern
            assert list(rx.iter(doc.text)) and next(rx.iter(doc.text)).span() == m.span(), rx.pattern
