"""What the model calls cost, estimated from a price table (USD per million tokens). Pure.

The estimate is for budgeting, not billing: it multiplies the stored token counts by the table's prices.
Haven ships list prices for the Claude models it uses by default; an operator with other models, or
other prices, sets ``HAVEN_MODEL_PRICES`` (JSON: model → ``{"input", "output", "cache_write",
"cache_read"}``), which is merged over these. A model with no price gives no estimate (None), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.admin import cache_hit_ratio
from bot.types import UsageGrouping, UsageLine

PER = 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens of each kind (``cache_write``: 5-minute cache writes)."""

    input: float
    output: float
    cache_write: float
    cache_read: float


# List prices per million tokens. Cache writes cost 1.25x input, cache reads 0.1x input.
DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "claude-sonnet-4": ModelPrice(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0, 1.25, 0.10),
    "claude-opus-4-5": ModelPrice(5.0, 25.0, 6.25, 0.50),
}


def parse_prices(raw: Mapping[str, Mapping[str, float]]) -> dict[str, ModelPrice]:
    """``HAVEN_MODEL_PRICES``' JSON object as prices; a missing or negative price is a ValueError."""
    prices: dict[str, ModelPrice] = {}
    for model, kinds in raw.items():
        try:
            price = ModelPrice(*(float(kinds[k]) for k in ("input", "output", "cache_write", "cache_read")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"price of {model!r} needs input, output, cache_write and cache_read (USD per million tokens)"
            ) from exc
        if min(price.input, price.output, price.cache_write, price.cache_read) < 0:
            raise ValueError(f"price of {model!r} is negative")
        prices[model] = price
    return prices


def price_of(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of ``model``: its own entry, else the longest entry its id starts with (a dated or newer
    point release of a family: ``claude-sonnet-4-6`` is priced as ``claude-sonnet-4``)."""
    if model in prices:
        return prices[model]
    family = [name for name in prices if model.startswith(name + "-") or model.startswith(name + "@")]
    return prices[max(family, key=len)] if family else None


def cost(line: UsageLine, prices: Mapping[str, ModelPrice]) -> float | None:
    """The estimated cost of ``line`` in USD, or None when its model has no price."""
    price = price_of(line.model, prices)
    if price is None:
        return None
    return (
        line.input_tokens * price.input
        + line.output_tokens * price.output
        + line.cache_creation_input_tokens * price.cache_write
        + line.cache_read_input_tokens * price.cache_read
    ) / PER


_COUNTS = ("calls", "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


def usage_report(
    lines: Sequence[UsageLine], prices: Mapping[str, ModelPrice], *, by: UsageGrouping | None
) -> dict[str, Any]:
    """Lines and their total, each with its estimated cost; models without a price are named, and
    their tokens count in the totals but not in the cost."""
    total: dict[str, Any] = {k: sum(getattr(line, k) for line in lines) for k in _COUNTS}
    total["cache_hit_ratio"] = round(cache_hit_ratio(total), 4)
    costs = [(line, cost(line, prices)) for line in lines]
    total["cost_usd"] = round(float(sum(c for _, c in costs if c is not None)), 6)
    total["unpriced_models"] = sorted({line.model for line, c in costs if c is None})
    report: dict[str, Any] = {"total": total}
    if by is not None:
        report["lines"] = [
            {by: line.key, "model": line.model, **{k: getattr(line, k) for k in _COUNTS}, "cost_usd": c}
            for line, c in costs
        ]
    return report
