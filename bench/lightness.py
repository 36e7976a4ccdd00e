"""How light a ``haven run`` process is: time to ready, idle RSS, and per-turn overhead with threads
answering in parallel. Real processes on 127.0.0.1, against the mock Slack and the scripted model.

    .venv/bin/python bench/lightness.py            # prints the figures (bench/run.py has them as rows)

- **Ready**: from ``python -m bot run`` to ``/readyz`` answering 200 (Slack HTTP mode), or to the
  terminal's greeting on stdout. The database is migrated beforehand, as on every start but the first.
- **Idle RSS**: ``VmRSS`` of the process ``IDLE_SECONDS`` after it was ready, no message sent (what it
  loads in the background by then counts). With a key the start-up check runs against the scripted
  model; the SDK and the detectors are loaded by the first message, so neither is in these figures.
- **Parallel overhead**: ``threads`` mentions sent at once, each answered by a streamed reply
  (``REPLY_CHARS`` characters in ``DELTA_CHARS``-character deltas ``DELTA_SECONDS`` apart after
  ``FIRST_TOKEN_SECONDS``, like a real model); a turn's overhead is the time from sending its event to
  Slack showing the finished reply, minus the model's own time (its request's arrival to its stream's last
  byte, measured by the scripted model). Medians over every turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.load import free_port, haven_env, running_mocks  # noqa: E402
from fakes.fake_anthropic import CutStream, Delay, FakeAnthropic, Reply  # noqa: E402
from fakes.slack_harness import BOT, CHANNEL, SlackHarness, signed_headers  # noqa: E402

IDLE_SECONDS = 5.0
START_SECONDS = 60.0
REPLY_CHARS = 900
DELTA_CHARS = 15
DELTA_SECONDS = 0.02
FIRST_TOKEN_SECONDS = 0.5
# What the scripted model takes for one reply by itself, nominally (the overhead subtracts the measured time).
MODEL_SECONDS = FIRST_TOKEN_SECONDS + (-(-REPLY_CHARS // DELTA_CHARS)) * DELTA_SECONDS
MODES = ("slack-http", "slack-http-rehearsal", "terminal")


@dataclass(frozen=True)
class Lightness:
    mode: str
    ready_seconds: float
    rss_mb: float
    cpu_seconds: float  # CPU time of the process when it was ready


@dataclass(frozen=True)
class Overhead:
    threads: int
    turns: int
    median_ms: float
    p95_ms: float
    cpu_ms_per_turn: float
    first_ms: float  # the process's first turn (left out of the rest): detectors built, SDK imported


class StreamingModel(FakeAnthropic):
    """Answers every question with ``REPLY_CHARS`` characters, streamed at a real model's pace, and
    notes when each answer's request arrived and its stream's last byte went out: the model's own time,
    which the overhead leaves out (sleeps on a busy machine overshoot, so it is measured, not assumed).
    """

    def __init__(self) -> None:
        super().__init__(default=self._respond)
        self.spans: dict[str, list[float]] = {}

    def _respond(self, body: dict[str, Any]) -> Delay:
        words = json.dumps(body.get("messages", [])[-1:])
        tag = words.split("Q:", 1)[1].split(" ", 1)[0] if "Q:" in words else "?"
        self.spans[tag] = [time.monotonic()]
        answer = f"A:{tag} " + ("Here is a careful answer, one sentence at a time. " * 30)
        reply = Reply(
            [{"type": "text", "text": answer[:REPLY_CHARS]}],
            delta_chars=DELTA_CHARS,
            delta_seconds=DELTA_SECONDS,
        )
        return Delay(FIRST_TOKEN_SECONDS, reply)

    async def _stream(
        self, request: web.Request, message: dict[str, Any], cut: CutStream | None, reply: Reply
    ) -> web.StreamResponse:
        response = await super()._stream(request, message, cut, reply)
        text = str(message["content"][0].get("text", "")) if message["content"] else ""
        if text.startswith("A:"):
            self.spans[text[2:].split(" ", 1)[0]].append(time.monotonic())
        return response

    def seconds(self, tag: str) -> float:
        start, end = self.spans[tag]
        return end - start


def streaming_model() -> StreamingModel:
    return StreamingModel()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _env(mode: str, tmp: Path, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    # Bytecode is read from __pycache__ as an installed Haven's is (pip compiles what it installs): with
    # PYTHONDONTWRITEBYTECODE set, as in some shells, every start compiled Haven's own modules (0.2 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp}/haven.db", PORT=str(free_port()), HAVEN_OPS_PORT=str(free_port())
    )
    if mode != "slack-http":
        env.pop("ANTHROPIC_API_KEY", None)
    if mode == "terminal":
        for key in [k for k in env if k.startswith("SLACK_")]:
            env.pop(key)
    return env


@contextlib.contextmanager
def haven(
    mode: str, tmp: Path, base: Mapping[str, str], profile: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], float, dict[str, str]]]:
    """``python -m bot run`` in ``mode``, yielded once ready with the seconds that took; always stopped
    (SIGTERM first, so a ``profile`` — cProfile's output file — gets written)."""
    env = _env(mode, tmp, base)
    subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True
    )
    terminal = mode == "terminal"
    t0 = time.perf_counter()
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen(
        [sys.executable, *profiler, "-m", "bot", "run"],
        env=env,
        cwd=tmp,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if terminal else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if terminal:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the greeting: the terminal takes input from here on
            if b"Haven" not in line:
                raise RuntimeError(f"terminal did not greet: {line!r}")
        else:
            _wait_ready(proc, int(env["HAVEN_OPS_PORT"]))
        yield proc, time.perf_counter() - t0, env
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"haven exited with {proc.returncode} before it was ready")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.01)
    raise RuntimeError("haven was not ready in time")


def lightness(mode: str, runs: int = 3) -> Lightness:
    """Median of ``runs`` starts of ``mode``: time to ready, idle RSS, CPU by ready."""
    samples: list[Lightness] = []
    compiled = [
        sys.executable,
        "-m",
        "compileall",
        "-q",
        *(str(ROOT / p) for p in ("bot", "adapters", "storage")),
    ]
    subprocess.run(compiled, check=True, capture_output=True)  # once, as ``pip install`` does
    with running_mocks(streaming_model()) as (anthropic, slack), tempfile.TemporaryDirectory() as d:
        base = haven_env("sqlite://", slack, anthropic)
        for n in range(runs):
            tmp = Path(d) / f"{mode}-{n}"
            tmp.mkdir()
            with haven(mode, tmp, base) as (proc, ready, _):
                cpu = cpu_seconds(proc.pid)
                time.sleep(IDLE_SECONDS)
                samples.append(Lightness(mode, ready, rss_mb(proc.pid), cpu))
    return Lightness(
        mode,
        statistics.median(s.ready_seconds for s in samples),
        statistics.median(s.rss_mb for s in samples),
        statistics.median(s.cpu_seconds for s in samples),
    )


def parallel_overhead(threads: int, rounds: int, profile: Path | None = None) -> Overhead:
    """``rounds`` times: ``threads`` new conversations at once, each answered by a streamed reply."""
    with running_mocks(streaming_model()) as (anthropic, slack), tempfile.TemporaryDirectory() as d:
        base = haven_env("sqlite://", slack, anthropic)
        with haven("slack-http", Path(d), base, profile) as (proc, _, env):
            return asyncio.run(_play(proc, int(env["PORT"]), slack, anthropic, threads, rounds))


async def _play(
    proc: subprocess.Popen[bytes], port: int, slack: Any, model: StreamingModel, threads: int, rounds: int
) -> Overhead:
    overheads: list[float] = []
    epoch = int(time.time()) - 50_000
    async with aiohttp.ClientSession() as http:
        # The first turn pays for what is loaded on first use (the detectors, the Anthropic SDK): counted
        # apart.
        [first] = await _turns(http, port, slack, model, [f"{epoch - 1}.000001"], "warm")
        cpu0 = cpu_seconds(proc.pid)
        for r in range(rounds):
            roots = [f"{epoch + r * threads + i}.000001" for i in range(threads)]
            overheads += await _turns(http, port, slack, model, roots, f"r{r}")
        cpu = cpu_seconds(proc.pid) - cpu0
    ordered = sorted(overheads)
    return Overhead(
        threads,
        len(overheads),
        statistics.median(overheads),
        ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        1000 * cpu / max(1, len(overheads)),
        first,
    )


async def _turns(
    http: aiohttp.ClientSession, port: int, slack: Any, model: StreamingModel, roots: list[str], tag: str
) -> list[float]:
    """Send one mention per root at once; each turn's overhead in ms once every reply is finished."""
    sent: dict[str, float] = {}

    async def send(i: int, root: str) -> None:
        text = f"<@{BOT}> Q:{tag}-{i} how should we plan the migration?"
        for kind in ("app_mention", "message"):
            event = SlackHarness.message(text, ts=root, kind=kind)
            body = json.dumps(SlackHarness.envelope(event, event_id=f"Ev{root.replace('.', '')}{kind}"))
            sent.setdefault(root, time.monotonic())
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=signed_headers(body)
            ) as resp:
                await resp.read()

    await asyncio.gather(*(send(i, root) for i, root in enumerate(roots)))
    done: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(done) < len(roots) and time.monotonic() < deadline:
        for root in roots:
            if root not in done and _finished(slack.thread(CHANNEL, root)):
                done[root] = time.monotonic()
        await asyncio.sleep(0.005)
    if len(done) < len(roots):
        raise RuntimeError(f"{len(roots) - len(done)} replies did not finish")
    return [1000 * (done[r] - sent[r] - model.seconds(f"{tag}-{i}")) for i, r in enumerate(roots)]


def _finished(messages: list[dict[str, Any]]) -> bool:
    """The bot's reply in the thread shows the whole answer and is no longer streaming."""
    return any(
        not m.get("streaming")
        and "A:" in (m.get("text") or "")
        and len(m.get("text") or "") >= REPLY_CHARS - 20
        for m in messages
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", type=Path, help="cProfile the 10-thread run's Haven process into this file")
    args = p.parse_args(argv)
    if args.profile:
        print(parallel_overhead(10, 5, args.profile.resolve()))
        return 0
    for mode in MODES:
        print(lightness(mode), flush=True)
    for threads, rounds in ((1, 10), (10, 5)):
        print(parallel_overhead(threads, rounds), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HAVEN_LOG_LEVEL", "WARNING")
    raise SystemExit(main())
