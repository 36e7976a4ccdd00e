"""Latency of the local detectors, per message, over every row of the evaluation data, plus the eval table.

Run from the repository root:  python bench/detectors.py [--data DIR] [--repeat N] [--no-eval]

Each message is timed ``--repeat`` times and the fastest run is kept, which filters out scheduler noise
from other processes; the machine description at the top says what the figures were measured on.

A second table times crafted worst-case inputs up to the engine's 20,000-character cap (issue 9: every
call ≤ 20 ms there, ≤ 5 ms p99 on the data), the rules' own examples joined up to the cap among them.
Those are timed *cold*: every memo of tokens and clauses (the normaliser's and the risk detector's) is
cleared before each run, so a phrase is measured as a first reading of its words.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script, without installing the package
    sys.path.insert(0, str(ROOT))

from bot.detectors import assess_risk, is_abusive, is_end_request  # noqa: E402
from bot.detectors.risk import default_detector  # noqa: E402
from bot.eval import ENV_VAR, default_data_dir, evaluate, format_table, iter_messages  # noqa: E402


def _cpu_model() -> str:
    name = platform.processor() or platform.uname().processor
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            models = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        name = models[0] if models else name
    except OSError:
        pass
    return name or "unknown"


def describe_machine() -> str:
    uname = platform.uname()
    lines = [
        f"machine:   {uname.system} {uname.release} {uname.machine} ({uname.node})",
        f"processor: {_cpu_model()} (platform.processor(): {platform.processor() or 'n/a'})",
        f"cpus:      {os.cpu_count()}",
        f"python:    {platform.python_implementation()} {platform.python_version()}",
    ]
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        lines.append(f"load avg:  {one:.2f} {five:.2f} {fifteen:.2f} (other processes share the CPUs)")
    return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def time_detector(detector: Callable[[str], object], messages: Sequence[str], repeat: int) -> list[float]:
    """Per-message latency in microseconds (best of ``repeat`` runs), sorted."""
    out: list[float] = []
    clock = time.perf_counter
    for message in messages:
        best = float("inf")
        for _ in range(repeat):
            start = clock()
            detector(message)
            best = min(best, clock() - start)
        out.append(best * 1e6)
    out.sort()
    return out


def latency_table(messages: Sequence[str], repeat: int) -> str:
    detectors = DETECTORS
    for _, detector in detectors:  # warm up: imports, regex caches, branch predictors
        for message in messages[:200]:
            detector(message)
    lengths = sorted(len(m) for m in messages)
    header = f"{'detector':<16}{'n':>7}{'p50 µs':>10}{'p90 µs':>10}{'p99 µs':>10}{'max µs':>11}"
    rows = [header, "-" * len(header)]
    for name, detector in detectors:
        t = time_detector(detector, messages, repeat)
        rows.append(
            f"{name:<16}{len(t):>7}{percentile(t, 0.5):>10.0f}{percentile(t, 0.9):>10.0f}"
            f"{percentile(t, 0.99):>10.0f}{t[-1]:>11.0f}"
        )
    rows.append(
        f"message length (chars): p50 {percentile(lengths, 0.5):.0f}, p90 {percentile(lengths, 0.9):.0f}, "
        f"p99 {percentile(lengths, 0.99):.0f}, max {lengths[-1] if lengths else 0}"
    )
    return "\n".join(rows)


CAP = 20_000  # bot/engine.py MAX_INPUT_CHARS: longer messages are refused before any detector runs
CRAFTED_LIMIT_MS = 20.0
DETECTORS: list[tuple[str, Callable[[str], object]]] = [
    ("assess_risk", assess_risk),
    ("is_end_request", is_end_request),
    ("is_abusive", is_abusive),
]


def _fill(unit: str, size: int = CAP) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _distinct(clause: Callable[[int], str]) -> str:
    """Clauses that all differ (so that no repeat is read once), up to the cap."""
    text, i = "", 0
    while len(text) < CAP:
        text += clause(i)
        i += 1
    return text[:CAP]


# Every character Python counts as whitespace: spaces of every width, line and paragraph separators,
# and the control characters (tab, U+001C-U+001F, U+0085 ...).
UNICODE_WHITESPACE = "".join(chr(cp) for cp in range(0x110000) if chr(cp).isspace())


def joined_rule_texts() -> list[tuple[str, str]]:
    """The rules' own examples and counter-examples joined up to the cap: distinct real sentences, each
    waking the rules it was written for, and the counter-examples (near misses, none a crisis) read to
    the end. Joined by spaces they make a few long clauses read in overlapping windows."""
    rules = list(default_detector().rules.rules)  # the tables the timed detector reads, loaded once
    examples = [e for r in rules for e in r.examples]
    counters = [c for r in rules for c in r.counter]
    threats = [e for r in rules if r.kind == "harm_to_others" for e in r.examples]
    shuffled = random.Random(0).sample(examples, len(examples))
    return [
        ("rule examples joined '. '", ". ".join(examples)[:CAP]),
        ("rule examples shuffled '. '", ". ".join(shuffled)[:CAP]),
        ("rule examples joined ' '", " ".join(examples)[:CAP]),
        ("threat rules' examples '. '", ". ".join(threats)[:CAP]),
        ("counter-examples joined '. '", ". ".join(counters)[:CAP]),
        ("counter-examples joined ' '", " ".join(counters)[:CAP]),
    ]


def crafted_inputs() -> list[tuple[str, str]]:
    """Named adversarial inputs: repeated phrases, whitespace runs, one huge word, punctuation, leet,
    letter spacing, scripts without spaces, emoji, invisible and combining characters."""
    return [
        ("'i want to kill myself ' x n", _fill("i want to kill myself ")),
        ("'i do not want to kill myself ' x n", _fill("i do not want to kill myself ")),
        ("'dumb ' x n", _fill("dumb ")),
        ("'kill them all ' x n", _fill("kill them all ")),
        ("'you are a worthless idiot ' x n", _fill("you are a worthless idiot ")),
        ("'please end this chat ' x n", _fill("please end this chat ")),
        ("U+0085 run between letters", _fill("a\u0085")),
        ("U+2028 run", _fill("\u2028")),
        ("mixed Unicode whitespace", _fill("\u0085\u2028\u2029\u3000\t\n \u00a0")),
        ("every Unicode whitespace, runs of 8", _fill("".join(f"kill{ch * 8}" for ch in UNICODE_WHITESPACE))),
        ("'\\n' x n (one clause)", _fill("kill\n")),
        ("20,000 chars, no space", _fill("a")),
        ("100,000 chars, no space (over cap)", _fill("a", 100_000)),
        ("'!?' x n", _fill("!?")),
        ("'...' x n", _fill("...")),
        ("'-' x n", _fill("-")),
        ("quotes '\"a\" ' x n", _fill('"a" ')),
        ("'k i l l ' x n", _fill("k i l l ")),
        ("'k i l l myself ' x n", _fill("k i l l myself ")),
        ("leet run '1!|' x n", _fill("1!|")),
        ("leet words 'k1!| ' x n", _fill("k1!| ")),
        ("stretched 'dieeee...' x n", _fill("dieeeeeeeeeeeeeeeeeee ")),
        ("hyphen breaks 'ki-\\nll ' x n", _fill("ki-\nll ")),
        ("CJK '我想死了' x n", _fill("我想死了")),
        ("CJK spaced '我 不 想 死 ' x n", _fill("我 不 想 死 ")),
        ("emoji run", _fill("\U0001f602")),
        ("mixed scripts", _fill("кill мyself 我 😂 d13 ")),
        ("zero-width inside words", _fill("k\u200bi\u200bl\u200bl ")),
        ("combining strikethrough", _fill("k\u0336")),
        (
            "distinct short clauses",
            ". ".join(f"{chr(0x430 + i % 32)}{chr(0x61 + i // 32 % 26)}" for i in range(5000))[:CAP],
        ),
        # Distinct clauses that each wake rules of the risk tables: each is read in full.
        ("distinct 'they should all die N. '", _distinct(lambda i: f"they should all die {i}. ")),
        ("distinct 'i hate my life N, '", _distinct(lambda i: f"i hate my life {i}, ")),
        (
            "distinct 'if i fail N, ..kill myself'",
            _distinct(lambda i: f"if i fail {i}, i will kill myself. "),
        ),
        *joined_rule_texts(),
    ]


def crafted_table(repeat: int) -> str:
    risk = default_detector()
    clock = time.perf_counter
    header = f"{'crafted input':<38}{'chars':>8}" + "".join(f"{name + ' ms':>19}" for name, _ in DETECTORS)
    rows = [header, "-" * len(header)]
    worst = 0.0
    for label, text in crafted_inputs():
        cells = []
        for _, detector in DETECTORS:
            best = float("inf")
            for _ in range(repeat):
                risk.clear_cache()
                start = clock()
                detector(text)
                best = min(best, clock() - start)
            ms = best * 1e3
            if len(text) <= CAP:
                worst = max(worst, ms)
            cells.append(f"{ms:>17.2f}{' !' if ms > CRAFTED_LIMIT_MS else '  '}")
        rows.append(f"{label[:37]:<38}{len(text):>8}" + "".join(cells))
    rows.append(
        f"worst call up to {CAP:,} chars: {worst:.2f} ms (! marks calls over {CRAFTED_LIMIT_MS:.0f} ms)"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="evaluation data directory")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per message (best is kept)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation table")
    args = parser.parse_args(argv)
    data_dir: Path = args.data or default_data_dir()
    if not data_dir.is_dir():
        fallback = ROOT.parent / "shared" / "eval-data"
        data_dir = fallback if fallback.is_dir() else data_dir
    if not data_dir.is_dir():
        print(f"evaluation data not found: {data_dir} (use --data DIR or set {ENV_VAR})", file=sys.stderr)
        return 2
    messages = list(iter_messages(data_dir))
    print(describe_machine())
    print(f"data:      {data_dir} ({len(messages)} messages)")
    print()
    print(latency_table(messages, max(1, args.repeat)))
    print()
    print(crafted_table(max(1, args.repeat)))
    if not args.no_eval:
        print()
        print(format_table(evaluate(data_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
