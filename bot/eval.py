"""Measure the local detectors on the labelled evaluation data (``../shared/eval-data``).

The data is for measuring, not for fitting: this module only counts. ``haven eval`` calls :func:`main`.
Every ``*.jsonl`` file in the folder is measured, whatever its name. Each row is ``{text, label, ...}`` or
``{turns: [{role, text}], label, ...}`` where the label refers to the last user turn (see SOURCES.md).

Figures are per file and per label group (``label_name``, and the language when rows carry
``meta.lang``), never pooled: the risk detector's ``possible`` and ``likely`` rates (recall on label 1,
false alarms on label 0: the "marked" share of each group). A few subsets get their own line:
HateCheck's quoting/denouncing contrasts, DiaSafety's rows that state suicide or self-harm explicitly
(``meta.si_keyword_heuristic``), and for multi-turn rows the share of conversations in which any user
turn is marked. ConvAbuse also measures the abuse detector.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.detectors import RiskLevel, assess_risk, is_abusive

__all__ = ["EvalRow", "evaluate", "evaluate_file", "format_table", "iter_messages", "load_rows", "main"]

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
    group: str  # "<label_name>" or "<label_name>/<lang>", with a subset in brackets when filtered
    detector: str  # "risk" | "abuse"
    level: str  # "possible" | "likely" | "-" for detectors without levels
    # "marked": share of the group's rows the risk detector marks at ``level`` — recall where the group is
    # risk, a false-alarm rate where it is not; "any_turn_marked": the same over every user turn of a
    # multi-turn row; "precision" | "recall" | "false_alarm" for the abuse detector.
    metric: str
    value: float
    n: int  # rows in the denominator

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.file, self.group, self.detector, self.level, self.metric)


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


def data_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.glob("*.jsonl") if p.is_file())


def iter_messages(data_dir: Path) -> Iterator[str]:
    """Every labelled message of every file in ``data_dir`` (for benchmarks)."""
    for path in data_files(data_dir):
        for row in load_rows(path):
            yield message_text(row)


def _group(row: dict[str, Any]) -> str:
    name = str(row.get("label_name") or f"label_{row.get('label')}")
    lang = str((row.get("meta") or {}).get("lang") or "").split(" ")[0]
    return f"{name}/{lang}" if lang else name


def _rates(
    file: str, group: str, metric: str, levels: Sequence[RiskLevel], detector: str = "risk"
) -> Iterator[EvalRow]:
    n = len(levels)
    for level in (RiskLevel.POSSIBLE, RiskLevel.LIKELY):
        hit = sum(1 for x in levels if x >= level)
        yield EvalRow(file, group, detector, level.name.lower(), metric, hit / n if n else 0.0, n)


def evaluate_file(path: Path) -> list[EvalRow]:
    """All figures for one file."""
    file = path.name
    rows = load_rows(path)
    levels = [assess_risk(message_text(r)).level for r in rows]
    groups: dict[tuple[str, int], list[RiskLevel]] = defaultdict(list)
    subsets: dict[tuple[str, int], list[RiskLevel]] = defaultdict(list)
    turns: dict[tuple[str, int], list[RiskLevel]] = defaultdict(list)
    for row, level in zip(rows, levels, strict=True):
        label = int(row.get("label", 0))
        groups[(_group(row), label)].append(level)
        meta = row.get("meta") or {}
        if meta.get("functionality") in COUNTER_FUNCTIONALITIES:
            subsets[(f"{_group(row)}[{meta['functionality']}]", label)].append(level)
        if label == 1 and meta.get("si_keyword_heuristic") is True:
            subsets[(f"{_group(row)}[si_keyword_heuristic]", label)].append(level)
        user_turns = [str(t.get("text", "")) for t in row.get("turns", ()) if t.get("role") == "user"]
        if len(user_turns) > 1:
            turns[(_group(row), label)].append(max(assess_risk(t).level for t in user_turns))
    out: list[EvalRow] = []
    for (group, _label), subset in sorted(groups.items()):
        out.extend(_rates(file, group, "marked", subset))
    for (group, _label), subset in sorted(subsets.items()):
        out.extend(_rates(file, group, "marked", subset))
    for (group, _label), subset in sorted(turns.items()):
        out.extend(_rates(file, group, "any_turn_marked", subset))
    if file == CONVABUSE:
        out.extend(_abuse(file, rows))
    return out


def _abuse(file: str, rows: Sequence[dict[str, Any]]) -> list[EvalRow]:
    predicted = [is_abusive(message_text(r)) for r in rows]
    gold = [r["label"] == 1 for r in rows]
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    n_pos = sum(gold)
    n_neg = len(gold) - n_pos
    n_pred = tp + fp
    return [
        EvalRow(file, "all", "abuse", "-", "precision", tp / n_pred if n_pred else 0.0, n_pred),
        EvalRow(file, "all", "abuse", "-", "recall", tp / n_pos if n_pos else 0.0, n_pos),
        EvalRow(file, "all", "abuse", "-", "false_alarm", fp / n_neg if n_neg else 0.0, n_neg),
    ]


def evaluate(data_dir: Path) -> list[EvalRow]:
    """All figures for every ``*.jsonl`` file in ``data_dir``."""
    out: list[EvalRow] = []
    for path in data_files(data_dir):
        out.extend(evaluate_file(path))
    return out


def format_table(rows: Iterable[EvalRow]) -> str:
    """A fixed-width text table, one line per figure."""
    header = ("file", "group", "detector", "level", "metric", "value", "n")
    body = [(r.file, r.group, r.detector, r.level, r.metric, f"{r.value:.3f}", str(r.n)) for r in rows]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def fmt(line: Sequence[str]) -> str:
        cells = [cell.rjust(widths[i]) if i >= 5 else cell.ljust(widths[i]) for i, cell in enumerate(line)]
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
        print(f"no evaluation files (*.jsonl) in {data_dir}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
