"""Measure the local detectors on the labelled evaluation data (``../shared/eval-data``).

The data is for measuring, not for fitting: this module only counts. ``haven eval`` calls :func:`main`.
Each file is JSON Lines, ``{text, label, ...}`` or ``{turns: [{role, text}], label, ...}`` where the label
refers to the last user turn (see the data's SOURCES.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.detectors import RiskLevel, assess_risk, is_abusive

__all__ = ["EvalRow", "evaluate", "format_table", "iter_messages", "load_rows", "main"]

HATECHECK = "A_hatecheck_threats.jsonl"
DIASAFETY = "A_diasafety_risk_contexts.jsonl"
STRUDEL = "B_strudel_issue_comments_violent_idioms.jsonl"
CONVABUSE = "C_convabuse_turn_windows.jsonl"
# HateCheck functionalities that quote or denounce someone else's hateful words.
COUNTER_FUNCTIONALITIES = ("counter_quote_nh", "counter_ref_nh")

ENV_VAR = "HAVEN_EVAL_DATA"


@dataclass(frozen=True)
class EvalRow:
    file: str
    detector: str  # "risk" | "abuse"
    level: str  # "possible" | "likely" | "-" for detectors without levels
    metric: str  # "recall" | "false_alarm" | "precision", with a subset in brackets when filtered
    value: float
    n: int  # rows in the denominator


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file; blank lines are skipped."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def message_text(row: dict[str, Any]) -> str:
    """The message a label refers to: ``text``, or the last user turn of a window."""
    if "text" in row:
        return str(row["text"])
    for turn in reversed(row.get("turns", [])):
        if turn.get("role") == "user":
            return str(turn.get("text", ""))
    return ""


def iter_messages(data_dir: Path) -> Iterator[str]:
    """Every labelled message of every known file present in ``data_dir`` (for benchmarks)."""
    for name in (HATECHECK, DIASAFETY, STRUDEL, CONVABUSE):
        path = data_dir / name
        if path.exists():
            for row in load_rows(path):
                yield message_text(row)


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _risk_rows(
    file: str,
    metric: str,
    levels: Sequence[RiskLevel],
    *,
    at_least: Callable[[RiskLevel], Sequence[bool]],
) -> Iterator[EvalRow]:
    for level in (RiskLevel.POSSIBLE, RiskLevel.LIKELY):
        flags = at_least(level)
        yield EvalRow(file, "risk", level.name.lower(), metric, _rate(flags), len(flags))


def _risk_metrics(
    file: str, rows: Sequence[dict[str, Any]], *, positives: bool, negatives: bool
) -> list[EvalRow]:
    levels = [assess_risk(message_text(r)).level for r in rows]
    out: list[EvalRow] = []
    groups: list[tuple[str, list[RiskLevel]]] = []
    if positives:
        groups.append(("recall", [lv for lv, r in zip(levels, rows, strict=True) if r["label"] == 1]))
    if negatives:
        groups.append(("false_alarm", [lv for lv, r in zip(levels, rows, strict=True) if r["label"] == 0]))
    for metric, subset in groups:
        out.extend(
            _risk_rows(file, metric, subset, at_least=lambda lvl, s=subset: [x >= lvl for x in s])  # type: ignore[misc]
        )
    return out


def _hatecheck(rows: Sequence[dict[str, Any]]) -> list[EvalRow]:
    out = _risk_metrics(HATECHECK, rows, positives=True, negatives=True)
    for functionality in COUNTER_FUNCTIONALITIES:
        subset = [r for r in rows if r.get("meta", {}).get("functionality") == functionality]
        for row in _risk_metrics(HATECHECK, subset, positives=False, negatives=True):
            out.append(
                EvalRow(row.file, row.detector, row.level, f"false_alarm[{functionality}]", row.value, row.n)
            )
    return out


def _convabuse(rows: Sequence[dict[str, Any]]) -> list[EvalRow]:
    predicted = [is_abusive(message_text(r)) for r in rows]
    gold = [r["label"] == 1 for r in rows]
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    n_pos = sum(gold)
    n_neg = len(gold) - n_pos
    n_pred = tp + fp
    out = [
        EvalRow(CONVABUSE, "abuse", "-", "precision", tp / n_pred if n_pred else 0.0, n_pred),
        EvalRow(CONVABUSE, "abuse", "-", "recall", tp / n_pos if n_pos else 0.0, n_pos),
        EvalRow(CONVABUSE, "abuse", "-", "false_alarm", fp / n_neg if n_neg else 0.0, n_neg),
    ]
    # Risk on every row: none of these windows were collected as risk, so any flag is counted as a false
    # alarm (a few users do tell a chatbot they want to die; the figure is an upper bound).
    levels = [assess_risk(message_text(r)).level for r in rows]
    out.extend(_risk_rows(CONVABUSE, "false_alarm", levels, at_least=lambda lvl: [x >= lvl for x in levels]))
    return out


def evaluate(data_dir: Path) -> list[EvalRow]:
    """All figures for every evaluation file found in ``data_dir`` (missing files are skipped)."""
    out: list[EvalRow] = []
    path = data_dir / HATECHECK
    if path.exists():
        out.extend(_hatecheck(load_rows(path)))
    path = data_dir / DIASAFETY
    if path.exists():
        out.extend(_risk_metrics(DIASAFETY, load_rows(path), positives=True, negatives=True))
    path = data_dir / STRUDEL
    if path.exists():
        # Every STRUDEL row is benign: whatever is flagged is a false alarm, whatever the label says.
        rows = [{**r, "label": 0} for r in load_rows(path)]
        out.extend(_risk_metrics(STRUDEL, rows, positives=False, negatives=True))
    path = data_dir / CONVABUSE
    if path.exists():
        out.extend(_convabuse(load_rows(path)))
    return out


def format_table(rows: Iterable[EvalRow]) -> str:
    """A fixed-width text table, one line per figure."""
    header = ("file", "detector", "level", "metric", "value", "n")
    body = [(r.file, r.detector, r.level, r.metric, f"{r.value:.3f}", str(r.n)) for r in rows]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def fmt(line: Sequence[str]) -> str:
        cells = [cell.rjust(widths[i]) if i >= 4 else cell.ljust(widths[i]) for i, cell in enumerate(line)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def default_data_dir() -> Path:
    """``../shared/eval-data`` from the working directory, else ``$HAVEN_EVAL_DATA``."""
    local = Path.cwd().parent / "shared" / "eval-data"
    if local.is_dir():
        return local
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haven eval", description="Measure the local detectors.")
    parser.add_argument("--data", type=Path, default=None, help="evaluation data directory")
    args = parser.parse_args(argv)
    data_dir: Path = args.data if args.data is not None else default_data_dir()
    if not data_dir.is_dir():
        print(f"evaluation data not found: {data_dir} (use --data DIR or set {ENV_VAR})", file=sys.stderr)
        return 2
    rows = evaluate(data_dir)
    if not rows:
        print(f"no evaluation files in {data_dir}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
