"""Haven's benchmark suite: one command, one table, plus docs/benchmarks.md and a plot.

    .venv/bin/python bench/run.py            # everything (needs the PostgreSQL server binaries)
    .venv/bin/python bench/run.py --quick    # fewer repetitions, for a smoke run

Everything runs on 127.0.0.1: an in-process instant model for engine overhead, the real Anthropic SDK
against the local scripted server for token accounting, a throwaway PostgreSQL for the PG rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import InstantModel, machine, median, pct, table  # noqa: E402
from bot.app import Services, initialize  # noqa: E402
from bot.types import Author, IncomingMessage, Origin, ThreadRef  # noqa: E402
from fakes.harness import make_settings  # noqa: E402


@dataclass
class Row:
    benchmark: str
    setting: str
    result: str
    target: str
    ok: bool | None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def add(
        self, benchmark: str, setting: str, result: str, target: str = "", ok: bool | None = None
    ) -> None:
        self.rows.append(Row(benchmark, setting, result, target, ok))
        print(f"  {benchmark} [{setting}]: {result}" + (f"  (target {target})" if target else ""), flush=True)


def _msg(thread: ThreadRef, n: int, start: bool) -> IncomingMessage:
    return IncomingMessage(
        thread,
        Author("U1", "Ann"),
        f"Question number {n}: how do I configure the retry policy for the worker pool?",
        f"{thread.thread}.{n}",
        origin=Origin.MENTION if start else Origin.THREAD_REPLY,
    )


async def _services(url: str, model: Any, **overrides: Any) -> Services:
    return await initialize(make_settings(url, **overrides), model=model)


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return (time.perf_counter() - t0) * 1000


# 1. engine overhead --------------------------------------------------------------------------------


async def engine_overhead(report: Report, url: str, label: str, turns: int, lengths: list[int]) -> None:
    s = await _services(url, InstantModel())
    try:
        times: list[float] = []
        for c in range(max(1, turns // 20)):
            thread = ThreadRef("slack", "TB", "C1", f"ov{c}")
            for n in range(20):
                times.append(await _timed(lambda t=thread, n=n: s.engine.handle_message(_msg(t, n, n == 0))))
        times = times[3:]  # first turns warm caches and connections
        report.add(
            "engine overhead per turn",
            label,
            f"p50 {median(times):.2f} ms, p99 {pct(times, 99):.2f} ms",
            "p50 ≤ 3 ms" if "SQLite" in label else "p50 ≤ 5 ms",
            median(times) <= (3 if "SQLite" in label else 5),
        )
        thread = ThreadRef("slack", "TB", "C1", "long")
        series: list[tuple[int, float]] = []
        n = 0
        for target in lengths:
            while n < target - 1:
                await s.engine.handle_message(_msg(thread, n, n == 0))
                n += 1
            samples = []
            for _ in range(5):  # the next few turns, at about this length
                samples.append(await _timed(lambda n=n: s.engine.handle_message(_msg(thread, n, n == 0))))
                n += 1
            series.append((target, median(samples)))
        report.series[label] = series
        first, last = series[0][1], series[-1][1]
        report.add(
            "overhead vs history length",
            label,
            ", ".join(f"{k} turns {v:.2f} ms" for k, v in series),
            "flat up to 200 turns",
            last <= max(2 * first, first + 1.0),
        )
    finally:
        await s.aclose()


# 2. concurrency ------------------------------------------------------------------------------------


async def concurrency(report: Report, url: str, conversations: int) -> None:
    """``conversations`` first turns at once against a model that takes 1 s.

    Measured twice. With the admission limit raised to ``conversations`` it shows what the engine adds
    when every turn may call the model at once (the target). With the default limit
    (``HAVEN_MAX_CONCURRENT_TURNS``, 64) it shows the limit at work: the turns go in waves of 64, about
    one second each, by design (``bot.admission``), so that row has no target."""
    default_limit = make_settings(url).max_concurrent_turns
    for limit in (conversations, default_limit):
        s = await _services(url, InstantModel(latency=1.0), HAVEN_MAX_CONCURRENT_TURNS=limit)
        try:
            tag = f"r{limit}"
            threads = [ThreadRef("slack", "TC", "C1", f"cc{tag}-{i}") for i in range(conversations)]
            t0 = time.perf_counter()
            results = await asyncio.gather(*(s.engine.handle_message(_msg(t, 0, True)) for t in threads))
            wall = time.perf_counter() - t0
            replied = sum(bool(r.replies) for r in results)
            setting = f"{conversations} at once, model 1 s, SQLite, 1 process, admission limit {limit}"
            result = f"{wall:.2f} s wall, {replied} replies"
            if limit == conversations:
                met = wall <= 2.0 and replied == conversations
                report.add("concurrent conversations", setting, result, "≤ 2 s", met)
            else:
                waves = math.ceil(conversations / limit)
                report.add("concurrent conversations", setting, f"{result} ({waves} waves of {limit})")
        finally:
            await s.aclose()


# 3. tokens -----------------------------------------------------------------------------------------


async def tokens(report: Report, url: str, turns: int) -> None:
    from fakes.fake_anthropic import FakeAnthropic, text

    async with FakeAnthropic(
        default=text("Here is a careful, reasonably detailed answer to your question. " * 6)
    ) as fake:
        settings = make_settings(url, fake.url)
        s = await initialize(settings)
        try:
            thread = ThreadRef("slack", "TT", "C1", "tok")
            for n in range(turns):
                await s.engine.handle_message(_msg(thread, n, n == 0))
            totals = await s.repo.usage_totals("slack", "TT")
        finally:
            await s.aclose()
    cached = (
        totals["input_tokens"]
        + 1.25 * totals["cache_creation_input_tokens"]
        + 0.1 * totals["cache_read_input_tokens"]
    )
    uncached = (
        totals["input_tokens"] + totals["cache_creation_input_tokens"] + totals["cache_read_input_tokens"]
    )
    ratio = cached / uncached if uncached else float("nan")
    report.add(
        "billed input tokens with caching",
        f"{turns}-turn conversation",
        f"{cached:,.0f} vs {uncached:,.0f} uncached: ratio {ratio:.3f}",
        "≤ 0.25",
        ratio <= 0.25,
    )


# 5. memory -----------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _bulk_fill(url: str, conversations: int, per_conv: int) -> None:
    """Insert a large history directly, much faster than running that many turns."""
    from sqlalchemy import insert

    from storage.db import create_sync_engine
    from storage.models import CONVERSATIONS, MESSAGES, utcnow

    now = utcnow()
    convs, msgs = [], []
    for c in range(conversations):
        cid = uuid.uuid4().hex
        convs.append(
            {
                "id": cid,
                "platform": "slack",
                "workspace": "TM",
                "channel": "C1",
                "thread": f"bulk{c}",
                "status": "active",
                "warnings": 0,
                "confirm_pending": False,
                "at_risk": False,
                "user_turns": per_conv // 2,
                "created_at": now,
            }
        )
        for i in range(per_conv):
            role = "user" if i % 2 == 0 else "assistant"
            body = f"stored message {i} of conversation {c}"
            msgs.append(
                {
                    "conversation_id": cid,
                    "platform": "slack",
                    "workspace": "TM",
                    "seq": i + 1,
                    "role": role,
                    "kind": "text",
                    "author_id": "U1",
                    "text": body,
                    "redacted": False,
                    "content": [{"type": "text", "text": body}],
                    "created_at": now,
                }
            )
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(CONVERSATIONS), convs)
            conn.execute(insert(MESSAGES), msgs)
    finally:
        engine.dispose()


def memory(report: Report, tmp: Path, conversations: int, per_conv: int) -> None:
    """In a fresh process, so the figure is a serving Haven's, not this bench's (SDK, fakes, plots)."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-probe", str(tmp), str(conversations), str(per_conv)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    empty, full = float(out[-2]), float(out[-1])
    report.add(
        "RSS while serving",
        f"empty DB → {conversations:,} conversations / {conversations * per_conv:,} msgs",
        f"{empty:.0f} MB → {full:.0f} MB",
        "≤ 150 MB, flat",
        full <= 150 and full - empty <= 15,
    )


async def memory_probe(tmp: Path, conversations: int, per_conv: int) -> tuple[float, float]:
    url = f"sqlite:///{tmp}/mem.db"
    s = await _services(url, InstantModel())
    try:

        async def serve(tag: str) -> float:
            for n in range(100):
                thread = ThreadRef("slack", "TM", "C2", f"{tag}{n % 10}")
                await s.engine.handle_message(_msg(thread, n, n < 10))
            gc.collect()
            return _rss_mb()

        empty = await serve("a")
        await asyncio.to_thread(_bulk_fill, url, conversations, per_conv)
        full = await serve("b")
    finally:
        await s.aclose()
    return empty, full


# 6. start-up ---------------------------------------------------------------------------------------


def startup(report: Report, runs: int) -> None:
    haven = str(Path(sys.executable).with_name("haven"))
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([haven, "--help"], capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
    w = median(walls)
    report.add("start-up", "`haven --help`", f"{w:.3f} s (median of {runs})", "≤ 0.5 s", w <= 0.5)
    mods = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bot.cli, adapters.terminal, bot.app; "
            "heavy = {'slack_bolt', 'slack_sdk', 'discord', 'anthropic'}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    report.add(
        "lazy imports", "`haven chat` path", f"platform/SDK modules imported: {mods}", "[]", mods == "[]"
    )


# 7. lighter processes ------------------------------------------------------------------------------


def lightness(report: Report, runs: int, rounds: int) -> None:
    """Real ``haven run`` processes (bench/lightness.py): time to ready and idle RSS per mode, then the
    per-turn overhead of streamed replies with 1 and 10 threads answering at once."""
    from bench.lightness import MODEL_SECONDS, parallel_overhead
    from bench.lightness import lightness as probe

    settings = {
        "slack-http": "Slack HTTP mode, Claude (key set)",
        "slack-http-rehearsal": "Slack HTTP mode, rehearsal model (no key)",
        "terminal": "terminal, rehearsal model (no key)",
    }
    for mode, setting in settings.items():
        light = probe(mode, runs)
        ready = "`/readyz` answering 200" if mode != "terminal" else "the greeting printed"
        report.add(
            "time to ready",
            f"{setting}: until {ready}",
            f"{light.ready_seconds:.2f} s (median of {runs}; CPU {light.cpu_seconds:.2f} s)",
            "≤ 1.5 s",
            light.ready_seconds <= 1.5,
        )
        report.add(
            "idle RSS", f"{setting}, 5 s after ready", f"{light.rss_mb:.0f} MB", "≤ 80 MB", light.rss_mb <= 80
        )
    for threads in (1, 10):
        o = parallel_overhead(threads, rounds if threads > 1 else 2 * rounds)
        report.add(
            "per-turn overhead, threads in parallel",
            f"{threads} thread{'s' if threads > 1 else ''} at once, streamed 900-char replies "
            f"(model {MODEL_SECONDS:.1f} s), Slack HTTP, SQLite",
            f"median {o.median_ms:.0f} ms, p95 {o.p95_ms:.0f} ms over {o.turns} turns; "
            f"CPU {o.cpu_ms_per_turn:.0f} ms per turn",
            "median ≤ 100 ms",
            o.median_ms <= 100,
        )
        if threads == 1:
            report.add(
                "first turn after start",
                "the process's first message, sent at ready (it builds the detectors and imports the "
                "Anthropic SDK), streamed reply",
                f"overhead {o.first_ms:.0f} ms",
            )


# report --------------------------------------------------------------------------------------------


def write_docs(report: Report, desc: str) -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    rows = [
        (r.benchmark, r.setting, r.result, r.target, "" if r.ok is None else ("yes" if r.ok else "NO"))
        for r in report.rows
    ]
    md = [
        "# Benchmarks",
        "",
        f"Machine: {desc}",
        "",
        "Produced by `python bench/run.py`.",
        "",
        table(["benchmark", "setting", "result", "target", "met"], rows),
        "",
    ]
    if report.series:
        md += ["![engine overhead per turn vs history length](benchmarks.png)", ""]
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for label, points in report.series.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_xlabel("history length (turns)")
        ax.set_ylabel("engine overhead per turn (ms, median)")
        ax.set_title("Haven engine overhead vs history length (model at zero latency)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(docs / "benchmarks.png", dpi=110)
    path = docs / "benchmarks.md"
    # The sections under the table (other benches' write-ups, kept by hand) stay as they are.
    kept = ""
    if path.exists():
        old = path.read_text()
        at = old.find("\n## ")
        kept = old[at:] if at >= 0 else ""
    path.write_text("\n".join(md).rstrip("\n") + "\n" + kept)


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    p.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    p.add_argument(
        "--only",
        choices=["lightness"],
        help="run one section and print its rows (docs/benchmarks.md is left alone)",
    )
    args = p.parse_args(argv)
    logging.disable(logging.INFO)
    desc = machine()
    print(f"Machine: {desc}\n", flush=True)
    report = Report()
    if args.only == "lightness":
        await asyncio.to_thread(lightness, report, 3 if not args.quick else 1, 5 if not args.quick else 2)
        print("\n" + _table(report))
        return 0
    lengths = [1, 25, 50, 100, 200] if not args.quick else [1, 25, 50]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        await engine_overhead(
            report, f"sqlite:///{tmp}/ov.db", "SQLite", 200 if not args.quick else 40, lengths
        )
        if not args.no_postgres:
            from fakes.postgres import postgres_available, start_postgres

            if postgres_available() is None:
                server = start_postgres()
                try:
                    await engine_overhead(
                        report,
                        server.create_database("bench_overhead"),
                        "PostgreSQL",
                        200 if not args.quick else 40,
                        lengths,
                    )
                finally:
                    server.stop()
        await concurrency(report, f"sqlite:///{tmp}/cc.db", 500 if not args.quick else 100)
        await tokens(report, f"sqlite:///{tmp}/tok.db", 40 if not args.quick else 10)
        slack = _slack_section()
        if slack is not None:
            await slack(report, tmp, 20 if not args.quick else 5)
        memory(report, tmp, 10_000 if not args.quick else 1_000, 10)
    startup(report, 5 if not args.quick else 2)
    await asyncio.to_thread(lightness, report, 3 if not args.quick else 1, 5 if not args.quick else 2)
    print("\n" + _table(report))
    if not args.no_docs:
        write_docs(report, desc)
        print(f"\nwrote {ROOT / 'docs' / 'benchmarks.md'}")
    return 0


def _table(report: Report) -> str:
    rows = [
        (r.benchmark, r.setting, r.result, r.target, "" if r.ok is None else ("yes" if r.ok else "NO"))
        for r in report.rows
    ]
    return table(["benchmark", "setting", "result", "target", "met"], rows)


def _slack_section() -> Callable[[Report, Path, int], Awaitable[None]] | None:
    try:
        from bench.slack_calls import slack_calls
    except ImportError:
        return None
    return slack_calls


if __name__ == "__main__":
    os.environ.setdefault("HAVEN_LOG_LEVEL", "WARNING")
    if sys.argv[1:2] == ["--memory-probe"]:
        logging.disable(logging.INFO)
        e, f = asyncio.run(memory_probe(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
        print(f"{e:.1f} {f:.1f}")
        raise SystemExit(0)
    raise SystemExit(asyncio.run(main()))
