"""Where the evaluation data is (``../shared/eval-data`` beside the checkout, or ``HAVEN_EVAL_DATA``),
and what a test does when it is missing: CI must measure the detectors, so it fails there; a developer's
checkout without the data skips."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.postgres import in_ci

ENV_VAR = "HAVEN_EVAL_DATA"


def data_dir_or_skip(present: Callable[[Path], bool], what: str) -> Path:
    """The data folder when ``present`` says it holds what the test needs; else fail in CI (saying
    ``what`` it must do), skip elsewhere."""
    override = os.environ.get(ENV_VAR)
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "eval-data"
    if not present(path):
        if in_ci():
            pytest.fail(f"CI must {what}, but the evaluation data is missing: {path}")
        pytest.skip(f"evaluation data not found at {path} (set {ENV_VAR})")
    return path
