"""The usage report's cost estimate: which price a model gets, the arithmetic, and the report's totals."""

from __future__ import annotations

import pytest

from bot.pricing import DEFAULT_PRICES, ModelPrice, cost, parse_prices, price_of, usage_report
from bot.types import UsageLine

PRICES = {
    "claude-sonnet-4": ModelPrice(3.0, 15.0, 3.75, 0.30),
    "claude-sonnet-4-5": ModelPrice(2.0, 10.0, 2.5, 0.2),  # a more specific entry wins
    "house-model": ModelPrice(1.0, 1.0, 1.0, 1.0),
}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("house-model", "house-model", id="exact"),
        pytest.param("claude-sonnet-4-6", "claude-sonnet-4", id="family"),
        pytest.param("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", id="longest-family"),
        pytest.param("claude-sonnet-4@20250514", "claude-sonnet-4", id="vertex-style-version"),
        pytest.param("claude-sonnet-40", None, id="not-a-family-member"),
        pytest.param("rehearsal", None, id="unknown"),
    ],
)
def test_which_price_a_model_gets(model: str, expected: str | None) -> None:
    assert price_of(model, PRICES) == (PRICES[expected] if expected else None)


def test_the_models_haven_uses_by_default_have_a_price() -> None:
    from bot.config import DEFAULT_MODEL, Settings

    verifier = Settings.model_fields["verifier_model"].default
    assert price_of(DEFAULT_MODEL, DEFAULT_PRICES) is not None
    assert price_of(verifier, DEFAULT_PRICES) is not None


def test_cost_counts_each_kind_of_token_at_its_price() -> None:
    line = UsageLine("", "claude-sonnet-4-6", 2, 1_000_000, 2_000_000, 10_000_000, 100_000)
    # 1 M input at 3, 2 M cache writes at 3.75, 10 M cache reads at 0.30, 0.1 M output at 15.
    assert cost(line, PRICES) == pytest.approx(3.0 + 7.5 + 3.0 + 1.5)
    assert cost(UsageLine("", "rehearsal", 1, 5, 0, 0, 5), PRICES) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"m": {"input": 1, "output": 2, "cache_write": 1}}, id="missing-kind"),
        pytest.param({"m": {"input": 1, "output": -2, "cache_write": 1, "cache_read": 0}}, id="negative"),
        pytest.param(
            {"m": {"input": "cheap", "output": 2, "cache_write": 1, "cache_read": 0}}, id="not-a-number"
        ),
    ],
)
def test_a_bad_price_table_is_refused(raw: dict[str, dict[str, object]]) -> None:
    with pytest.raises(ValueError, match="price of 'm'"):
        parse_prices(raw)  # type: ignore[arg-type]


def test_the_report_totals_every_line_and_names_models_without_a_price() -> None:
    lines = [
        UsageLine("U1", "claude-sonnet-4-6", 3, 1_000_000, 0, 1_000_000, 0),
        UsageLine("U2", "rehearsal", 2, 10, 0, 0, 10),
    ]
    report = usage_report(lines, PRICES, by="user")
    total = report["total"]
    assert total["calls"] == 5 and total["input_tokens"] == 1_000_010 and total["output_tokens"] == 10
    assert total["cost_usd"] == pytest.approx(3.3) and total["unpriced_models"] == ["rehearsal"]
    assert total["cache_hit_ratio"] == pytest.approx(0.5, abs=1e-4)
    assert [(x["user"], x["cost_usd"]) for x in report["lines"]] == [("U1", pytest.approx(3.3)), ("U2", None)]
    assert "lines" not in usage_report(lines, PRICES, by=None)
