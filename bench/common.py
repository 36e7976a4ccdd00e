"""Shared bench helpers: the machine's description, percentiles, an instant model, a table printer."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
from collections.abc import Sequence

from bot.model import ChunkSink, ModelReply, ModelRequest, Usage
from bot.policy import Verification


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}, Python {platform.python_version()}"


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


class InstantModel:
    """A model with a configurable latency and a fixed short answer: measures everything but the model."""

    def __init__(self, latency: float = 0.0) -> None:
        self._latency = latency

    @property
    def rehearsal(self) -> bool:
        return False

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        if self._latency:
            await asyncio.sleep(self._latency)
        return ModelReply(
            content=({"type": "text", "text": "A short answer."},),
            stop_reason="end_turn",
            usage=Usage(input_tokens=10, output_tokens=4),
            model="instant",
        )

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return None  # the estimate is all there is offline

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        return Verification(persistent_abuse=True, risk=False)

    async def aclose(self) -> None:
        return None
