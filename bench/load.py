"""Bounded load on 127.0.0.1: Haven processes sharing one PostgreSQL, every Slack event sent to each.

    .venv/bin/python bench/load.py --messages 1000 --conversations 50 --latency 0.2
    .venv/bin/python bench/load.py --messages 1000 --conversations 50 --latency 0.2 --restart-db
    .venv/bin/python bench/load.py --threads 1500     # the burst scenario: bench/burst.py

It starts a throwaway PostgreSQL (``fakes/postgres.py``), the scripted Anthropic server (every
answer takes ``--latency`` seconds and names the message it answers), the mock Slack Web API, and
``python -m bot run`` ``--processes`` times (default 2) in HTTP mode on one database. Then it plays
``--messages`` user messages over ``--conversations`` threads: each thread starts with a mention
(``app_mention`` plus its ``message`` copy) and goes on with thread replies once Haven has answered (a
Slack thread exists only then); a thread's next message follows after a random pause (mean
``--gap``, default the model latency), so turns of one thread queue up and their order is tested.
Every event goes to *every* process in random order, and ``--retry-share`` of them come again later
with ``X-Slack-Retry-Num``, as Slack does. ``--restart-db`` restarts PostgreSQL once half the messages
are out. When nothing is left to happen it prints one table: deliveries, distinct messages, replies,
duplicates, lost, errors, throughput, end-to-end latency (first delivery → reply visible in Slack,
minus the model's latency) and whether each thread's replies came in the order of its messages.

Everything is bounded (``--timeout``) and the Haven processes are always stopped, also on Ctrl-C.
``run_load()`` is the same machinery for tests (``tests/slack/test_multiprocess.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.common import pct, table  # noqa: E402
from fakes.fake_anthropic import Delay, FakeAnthropic, Reply  # noqa: E402
from fakes.mock_slack import MockSlack  # noqa: E402
from fakes.ports import free_port  # noqa: E402 (bench.faults and others take it from here)
from fakes.postgres import PostgresServer, start_postgres, to_libpq_url  # noqa: E402
from fakes.slack_harness import BOT, BOT_TOKEN, CHANNEL, SIGNING_SECRET, SlackHarness, signed_headers  # noqa: E402

USERS = ("ULOADANA1", "ULOADBEN1", "ULOADCAT1")
QUESTION = re.compile(r"\bQ(\d+)-(\d+)\b")
Model = TypeVar("Model", bound=FakeAnthropic)


class RunResult(Protocol):
    """What ``print_result`` reads of a run's result (``LoadResult`` here, ``FaultResult`` in faults)."""

    @property
    def ok(self) -> bool: ...

    def table(self) -> str: ...

    def problems(self) -> str: ...


ANSWER = re.compile(r"\bA(\d+)-(\d+)\b")
START_SECONDS = 90.0  # a Haven process must answer /healthz within this


@dataclass(frozen=True)
class LoadConfig:
    messages: int = 1000
    conversations: int = 50
    latency: float = 0.2
    restart_db: bool = False
    seed: int = 1
    processes: int = 2
    retry_share: float = 0.1  # of events, delivered once more later with X-Slack-Retry-Num
    mention_share: float = 0.1  # of thread replies that also mention Haven (app_mention + message)
    gap: float | None = None  # mean pause between a thread's messages; None: the model latency
    reply_chars: int = 0  # pad answers to this many characters (≥ 200: they stream)
    timeout: float = 300.0  # for the whole run, start-up excluded
    settle: float = 2.0  # quiet time that counts as "done" once every message has an answer

    def per_conversation(self) -> list[int]:
        base, extra = divmod(self.messages, self.conversations)
        return [base + (1 if c < extra else 0) for c in range(self.conversations)]


@dataclass
class LoadResult:
    config: LoadConfig
    deliveries: int = 0
    failed_deliveries: int = 0
    distinct: int = 0
    replies: int = 0
    answered: int = 0
    duplicates: int = 0
    lost: int = 0
    error_replies: int = 0
    process_errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, model latency subtracted
    idle_latencies: list[float] = field(default_factory=list)  # of messages sent to an idle thread
    in_order: int = 0
    out_of_order: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    restart: str = "no"
    slack_calls: Counter[str] = field(default_factory=Counter)
    haven_cpu: list[float] = field(default_factory=list)
    bench_cpu: float = 0.0
    # Turns whose model request lacked the previous turn's answer although that answer was posted:
    # two turns of one thread ran at the same time.
    overlapping: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.answered / self.wall if self.wall else 0.0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.error_replies == 0
            and self.in_order == self.config.conversations
            and not self.overlapping
        )

    def rows(self) -> list[tuple[str, str]]:
        lat = [x * 1000 for x in self.latencies]
        idle = [x * 1000 for x in self.idle_latencies]
        cfg = self.config
        calls = ", ".join(f"{m} {n}" for m, n in sorted(self.slack_calls.items()))
        return [
            (
                "setting",
                f"{cfg.processes} processes, 1 PostgreSQL, model {cfg.latency:g} s, seed {cfg.seed}"
                + (", DB restarted mid-run" if cfg.restart_db else ""),
            ),
            ("events delivered (HTTP)", f"{self.deliveries} ({self.failed_deliveries} not answered 200)"),
            ("distinct user messages", f"{self.distinct} in {cfg.conversations} threads"),
            ("replies", str(self.replies)),
            ("answered exactly once", str(self.answered - len(self.duplicated))),
            ("duplicates", str(self.duplicates)),
            ("lost", str(self.lost)),
            ("errors", f"{self.error_replies} error replies, {len(self.process_errors)} process errors"),
            ("throughput", f"{self.throughput:.1f} answered messages/s over {self.wall:.1f} s"),
            (
                "end-to-end latency − model",
                f"p50 {pct(lat, 50):.0f} ms, p95 {pct(lat, 95):.0f} ms, p99 {pct(lat, 99):.0f} ms",
            ),
            (
                "  … sent to an idle thread",
                f"p50 {pct(idle, 50):.0f} ms, p95 {pct(idle, 95):.0f} ms, p99 {pct(idle, 99):.0f} ms "
                f"({len(idle)} messages; the rest queued behind their thread's earlier turns)",
            ),
            ("threads with replies in order", f"{self.in_order}/{cfg.conversations}"),
            ("turns that overlapped in a thread", str(len(self.overlapping))),
            ("PostgreSQL restart", self.restart),
            (
                "CPU",
                "Haven "
                + " + ".join(f"{x:.1f} s" for x in self.haven_cpu)
                + f" ({1000 * sum(self.haven_cpu) / max(1, self.answered):.0f} ms per answered message), "
                f"this bench with its mock servers {self.bench_cpu:.1f} s; {os.cpu_count()} CPUs",
            ),
            ("Slack calls", calls),
        ]

    def table(self) -> str:
        return table(["measure", "value"], self.rows())

    def problems(self) -> str:
        lines = []
        for name, items in (
            ("lost", self.missing),
            ("duplicated", self.duplicated),
            ("out of order", self.out_of_order),
            ("overlapping turns", self.overlapping),
            ("process errors", self.process_errors),
        ):
            if items:
                lines.append(
                    f"{name} ({len(items)}): " + "; ".join(items[:8]) + (" …" if len(items) > 8 else "")
                )
        return "\n".join(lines)


# -- the scripted model ----------------------------------------------------------------------------------


def answering_model(latency: float, reply_chars: int) -> FakeAnthropic:
    """Answers ``A<c>-<k>`` for the newest ``Q<c>-<k>`` in the request's last user message."""

    def respond(body: dict[str, Any]) -> Delay:
        last: dict[str, Any] = next(
            (m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {}
        )
        content = last.get("content")
        words = content if isinstance(content, str) else json.dumps(content)
        found = QUESTION.findall(words)
        c, k = found[-1] if found else ("?", "?")
        answer = f"A{c}-{k}: here is my answer."
        if len(answer) < reply_chars:
            answer += (
                " " + ("More detail follows. " * (reply_chars // 21 + 1))[: reply_chars - len(answer) - 1]
            )
        return Delay(latency, Reply([{"type": "text", "text": answer}]))

    return FakeAnthropic(default=respond)


# -- Haven processes ---------------------------------------------------------------------------------------


@dataclass
class Haven:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


class HavenProcesses:
    """``python -m bot run`` n times in HTTP mode; ``stop()`` always ends them (TERM, then KILL)."""

    def __init__(self, n: int, env: Mapping[str, str], workdir: Path, profile: Path | None = None) -> None:
        self._n, self._env, self._dir, self._profile = n, dict(env), workdir, profile
        self.procs: list[Haven] = []

    def migrate(self) -> None:
        """One ``haven db upgrade`` first, so the processes do not race to create the schema."""
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env=self._env,
            cwd=self._dir,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        for i in range(self._n):
            port = free_port()
            log_path = self._dir / f"haven-{i}.log"
            command = [sys.executable, "-m", "bot", "run"]
            if i == 0 and self._profile is not None:  # pyinstrument's report of process 0
                renderer = "html" if self._profile.suffix == ".html" else "text"
                command[1:1] = ["-m", "pyinstrument", "-r", renderer, "-o", str(self._profile)]
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    command,
                    env={**self._env, "PORT": str(port)},
                    cwd=self._dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the bench, which then stops them in order
                )
            self.procs.append(Haven(proc, port, log_path))

    async def wait_healthy(self, http: aiohttp.ClientSession, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        for h in self.procs:
            while True:
                if h.proc.poll() is not None:
                    raise RuntimeError(
                        f"haven on port {h.port} exited with {h.proc.returncode}:\n{tail(h.log)}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"http://127.0.0.1:{h.port}/healthz") as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"haven on port {h.port} did not start:\n{tail(h.log)}")
                await asyncio.sleep(0.1)

    def cpu_seconds(self) -> list[float]:
        """User + system CPU time of each process so far (Linux ``/proc``)."""
        tick = os.sysconf("SC_CLK_TCK")
        out = []
        for h in self.procs:
            try:
                fields = Path(f"/proc/{h.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                out.append((int(fields[11]) + int(fields[12])) / tick)
            except (OSError, IndexError, ValueError):
                out.append(float("nan"))
        return out

    def stop(self) -> None:
        for h in self.procs:
            if h.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    h.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for h in self.procs:
            try:
                h.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                h.proc.kill()
                h.proc.wait(10)

    def errors(self) -> list[str]:
        """ERROR lines of every process (JSON logs), as ``event: exception's last line``."""
        found = []
        for h in self.procs:
            for line in h.log.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    if "Traceback" in line:
                        found.append(f"port {h.port}: {line.strip()}")
                    continue
                if record.get("level") in ("ERROR", "CRITICAL"):
                    exc = (record.get("exc") or "").strip().splitlines()
                    where = (
                        f" ({record.get('error')} at {record.get('where')})" if record.get("where") else ""
                    )
                    found.append(f"{record.get('event')}{where}" + (f": {exc[-1]}" if exc else ""))
        return found


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def haven_env(database_url: str, slack: MockSlack, anthropic: FakeAnthropic) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ANTHROPIC_", "DISCORD_", "HAVEN_", "DATABASE_URL", "PORT"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        ANTHROPIC_API_KEY="test",
        ANTHROPIC_BASE_URL=anthropic.url,
        DATABASE_URL=to_libpq_url(database_url),
        HAVEN_LOG_LEVEL="WARNING",
        HAVEN_LOG_FORMAT="json",
        HAVEN_MODEL_TIMEOUT="30",
    )
    return env


# -- the traffic -----------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One thread's messages, decided up front from the seed."""

    c: int
    root: str
    messages: list[tuple[str, str, str, bool]]  # (ts, user, words, also app_mention)
    gaps: list[float]


def plan_traffic(cfg: LoadConfig) -> list[Plan]:
    rng = random.Random(cfg.seed)
    epoch = int(time.time()) - 100_000
    gap = cfg.latency if cfg.gap is None else cfg.gap
    plans = []
    for c, n in enumerate(cfg.per_conversation()):
        root = f"{epoch + c}.000001"
        msgs = []
        for k in range(n):
            ts = root if k == 0 else f"{epoch + c}.{k + 1:06d}"
            words = f"Q{c}-{k}: what should we do about item {rng.randint(1, 999)}?"
            msgs.append((ts, USERS[(c + k) % len(USERS)], words, k == 0 or rng.random() < cfg.mention_share))
        plans.append(Plan(c, root, msgs, [rng.uniform(0, 2 * gap) for _ in range(n)]))
    return plans


class Traffic:
    def __init__(
        self, cfg: LoadConfig, ports: Sequence[int], slack: MockSlack, http: aiohttp.ClientSession
    ) -> None:
        self.cfg, self.ports, self.slack, self.http = cfg, list(ports), slack, http
        self.rng = random.Random(cfg.seed + 1)
        self.sent_at: dict[tuple[int, int], float] = {}
        self.idle: set[tuple[int, int]] = set()  # sent when the thread had no turn waiting or running
        self.deliveries = 0
        self.failed = 0
        self.background: set[asyncio.Task[None]] = set()
        self.half_sent = asyncio.Event()
        self._event_no = 0

    async def _post(self, port: int, body: str, retry: int | None, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.deliveries += 1
        try:
            async with self.http.post(
                f"http://127.0.0.1:{port}/slack/events",
                data=body,
                headers=signed_headers(body, retry=retry),
                timeout=aiohttp.ClientTimeout(total=15),
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    self.failed += 1
        except (aiohttp.ClientError, TimeoutError):
            self.failed += 1

    async def deliver(self, event: dict[str, Any]) -> None:
        """To every process, in random order; sometimes once more later, as a Slack retry."""
        self._event_no += 1
        body = json.dumps(SlackHarness.envelope(event, event_id=f"EvLoad{self._event_no:07d}"))
        await asyncio.gather(
            *(self._post(port, body, None, self.rng.uniform(0, 0.01)) for port in self.ports)
        )
        if self.rng.random() < self.cfg.retry_share:
            port, attempt = self.rng.choice(self.ports), self.rng.randint(1, 3)
            task = asyncio.create_task(self._post(port, body, attempt, self.rng.uniform(0.1, 1.5)))
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def thread(self, plan: Plan, answers: Answers, deadline: float) -> None:
        for k, (ts, user, words, mention) in enumerate(plan.messages):
            thread_ts = None if k == 0 else plan.root
            text = f"<@{BOT}> {words}" if mention else words
            events = [SlackHarness.message(text, ts=ts, user=user, thread_ts=thread_ts)]
            if mention:
                app_mention = SlackHarness.message(
                    text, ts=ts, user=user, thread_ts=thread_ts, kind="app_mention"
                )
                events.insert(self.rng.randint(0, 1), app_mention)
            answers.scan()
            if k == 0 or (plan.c, k - 1) in answers.first_at:
                self.idle.add((plan.c, k))
            self.sent_at[(plan.c, k)] = time.monotonic()
            if len(self.sent_at) >= self.cfg.messages // 2:
                self.half_sent.set()
            for event in events:
                await self.deliver(event)
            if k == 0:
                # Replies go into Haven's thread, which exists once Haven answered the mention.
                while (plan.c, 0) not in answers.first_at and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                    answers.scan()
            await asyncio.sleep(plan.gaps[k])


class Answers:
    """Reads what the bot's messages show in the mock (a thread of its own) and who they answer."""

    def __init__(self, slack: MockSlack, roots: Mapping[str, int]) -> None:
        self.slack, self.roots = slack, roots
        self.first_at: dict[tuple[int, int], float] = {}
        self._seen = 0

    def scan(self) -> None:
        messages = list(self.slack.messages)
        for m in messages[self._seen :]:
            c = self.roots.get(str(m.get("thread_ts")))
            found = ANSWER.search(m.get("text") or "")
            if c is not None and found and int(found.group(1)) == c:
                self.first_at.setdefault((c, int(found.group(2))), m["at"])
        self._seen = len(messages)

    def by_thread(self) -> dict[int, list[tuple[int | None, dict[str, Any]]]]:
        out: dict[int, list[tuple[int | None, dict[str, Any]]]] = defaultdict(list)
        for m in list(self.slack.messages):
            c = self.roots.get(str(m.get("thread_ts")))
            if c is None or m.get("deleted") or m.get("channel") != CHANNEL:
                continue
            found = ANSWER.search(m.get("text") or "")
            k = int(found.group(2)) if found and int(found.group(1)) == c else None
            out[c].append((k, m))
        return out


# -- one run ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_mocks(model: Model) -> Iterator[tuple[Model, MockSlack]]:
    """``model`` and a mock Slack that knows ``USERS``, each on a thread of its own (the Haven processes
    under test reach them over HTTP)."""
    model.start_in_thread()
    try:
        slack = MockSlack().start_in_thread()
        try:
            for i, user in enumerate(USERS):
                slack.add_user(user, f"user{i}")
            yield model, slack
        finally:
            slack.stop_thread()
    finally:
        model.stop_thread()


def print_result(result: RunResult) -> int:
    """Print a run's table and its problems; the exit status (0 when every message was answered once,
    in order)."""
    print("\n\n" + result.table())
    if problems := result.problems():
        print("\n" + problems)
    print(
        "\nresult: "
        + ("every message answered exactly once, in order" if result.ok else "PROBLEMS (see above)")
    )
    return 0 if result.ok else 1


async def run_load(
    cfg: LoadConfig,
    *,
    database_url: str,
    workdir: Path,
    server: PostgresServer | None = None,
    progress: bool = False,
    profile: Path | None = None,
) -> LoadResult:
    """Start the servers and Haven processes, play the traffic, wait for quiet, stop everything, count."""
    if cfg.restart_db and server is None:
        raise ValueError("--restart-db needs the PostgresServer")
    result = LoadResult(cfg, distinct=cfg.messages)
    with running_mocks(answering_model(cfg.latency, cfg.reply_chars)) as (anthropic, slack):
        env = haven_env(database_url, slack, anthropic)
        havens = HavenProcesses(cfg.processes, env, workdir, profile)
        try:
            await asyncio.to_thread(havens.migrate)
            havens.start()
            connector = aiohttp.TCPConnector(limit=256)
            async with aiohttp.ClientSession(connector=connector) as http:
                await havens.wait_healthy(http)
                cpu0, bench0 = havens.cpu_seconds(), time.process_time()
                await _play(cfg, havens, slack, http, result, server, progress)
                result.overlapping = _overlaps(anthropic, result)
                cpu1, result.bench_cpu = havens.cpu_seconds(), time.process_time() - bench0
                result.haven_cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
        finally:
            await asyncio.to_thread(havens.stop)
        result.process_errors = havens.errors()
        result.slack_calls = Counter(c.method for c in slack.calls if c.method not in ("auth.test",))
    return result


async def _play(
    cfg: LoadConfig,
    havens: HavenProcesses,
    slack: MockSlack,
    http: aiohttp.ClientSession,
    result: LoadResult,
    server: PostgresServer | None,
    progress: bool,
) -> None:
    plans = plan_traffic(cfg)
    roots = {p.root: p.c for p in plans}
    answers = Answers(slack, roots)
    traffic = Traffic(cfg, [h.port for h in havens.procs], slack, http)
    started = time.monotonic()
    deadline = started + cfg.timeout
    restarter = asyncio.create_task(_restart_midway(cfg, traffic, server, result)) if cfg.restart_db else None
    threads = [asyncio.create_task(traffic.thread(p, answers, deadline)) for p in plans]
    try:
        done, pending = await asyncio.wait(threads, timeout=max(1.0, deadline - time.monotonic()))
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        if traffic.background:
            await asyncio.wait(set(traffic.background), timeout=5)
        if restarter is not None:
            await asyncio.wait_for(restarter, timeout=max(1.0, deadline - time.monotonic()))
        await _quiesce(cfg, slack, answers, deadline, progress)
    finally:
        for t in [*threads, *traffic.background, *([restarter] if restarter else [])]:
            t.cancel()
    _count(cfg, traffic, answers, result, started)


async def _restart_midway(
    cfg: LoadConfig, traffic: Traffic, server: PostgresServer | None, result: LoadResult
) -> None:
    assert server is not None
    await traffic.half_sent.wait()
    t0 = time.monotonic()
    await asyncio.to_thread(server.restart, "fast")
    result.restart = f"after {len(traffic.sent_at)} messages sent; down for {time.monotonic() - t0:.1f} s"


async def _quiesce(
    cfg: LoadConfig, slack: MockSlack, answers: Answers, deadline: float, progress: bool
) -> None:
    """Until every message has an answer and Slack saw no call for ``settle`` s — or nothing moves."""
    idle_limit = max(10.0, 5 * cfg.settle, 20 * cfg.latency)
    last_count, last_change, shown = -1, time.monotonic(), -1
    while (now := time.monotonic()) < deadline:
        answers.scan()
        count = len(slack.calls)
        if count != last_count:
            last_count, last_change = count, now
        idle = now - last_change
        if len(answers.first_at) >= cfg.messages and idle >= cfg.settle:
            return
        if idle >= idle_limit:
            return
        if progress and len(answers.first_at) != shown:
            shown = len(answers.first_at)
            print(f"\r  answered {shown}/{cfg.messages}", end="", flush=True)
        await asyncio.sleep(0.1)


def _count(cfg: LoadConfig, traffic: Traffic, answers: Answers, result: LoadResult, started: float) -> None:
    answers.scan()
    result.deliveries, result.failed_deliveries = traffic.deliveries, traffic.failed
    expected = {(c, k) for c, n in enumerate(cfg.per_conversation()) for k in range(n)}
    counts: Counter[tuple[int, int]] = Counter()
    for c, items in answers.by_thread().items():
        order = []
        for k, _ in items:
            if k is None:
                result.error_replies += 1
                continue
            counts[(c, k)] += 1
            if counts[(c, k)] == 1:
                order.append(k)
            else:
                result.duplicated.append(f"Q{c}-{k} ×{counts[(c, k)]}")
        if order == sorted(order):
            result.in_order += 1
        else:
            result.out_of_order.append(f"thread {c}: {order}")
    threads_without_answers = cfg.conversations - len(answers.by_thread())
    result.in_order += threads_without_answers  # nothing out of order in them (their loss counts below)
    result.replies = sum(counts.values())
    result.answered = len(set(counts) & expected)
    result.duplicates = sum(n - 1 for n in counts.values())
    result.lost = len(expected - set(counts))
    result.missing = [f"Q{c}-{k}" for c, k in sorted(expected - set(counts))]
    waits = {
        key: max(0.0, answers.first_at[key] - traffic.sent_at[key] - cfg.latency)
        for key in expected
        if key in answers.first_at and key in traffic.sent_at
    }
    result.latencies = list(waits.values())
    result.idle_latencies = [w for key, w in waits.items() if key in traffic.idle]
    last = max(answers.first_at.values(), default=started)
    result.wall = max(0.001, last - started)


def _overlaps(anthropic: FakeAnthropic, result: LoadResult) -> list[str]:
    """Model requests for Q<c>-<k> whose history lacks A<c>-<k-1>, though that answer was posted."""
    missing = set(result.missing)
    found = []
    for body in anthropic.model_requests():
        messages = body.get("messages") or []
        last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        asked = QUESTION.findall(json.dumps(last.get("content"))) if last else []
        if not asked:
            continue
        c, k = (int(x) for x in asked[-1])
        if k and f"Q{c}-{k - 1}" not in missing and f"A{c}-{k - 1}" not in json.dumps(messages):
            found.append(f"Q{c}-{k} ran before A{c}-{k - 1} was stored")
    return sorted(set(found))


# -- command line ----------------------------------------------------------------------------------------


async def _main(cfg: LoadConfig, profile: Path | None, logs: Path | None) -> int:
    print(f"starting PostgreSQL, the mocks and {cfg.processes} Haven processes …", flush=True)
    server = await asyncio.to_thread(start_postgres)
    try:
        url = await asyncio.to_thread(server.create_database, "haven_load")
        with tempfile.TemporaryDirectory(prefix="haven-load-") as tmp:
            workdir = logs or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            result = await run_load(
                cfg, database_url=url, workdir=workdir, server=server, progress=True, profile=profile
            )
    finally:
        await asyncio.to_thread(server.stop)
    return print_result(result)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a == "--threads" or a.startswith("--threads=") for a in args):
        # Many threads at once against one process: a scenario of its own, with its own options.
        from bench import burst

        return burst.main(args)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000, help="user messages in all (default 1000)")
    p.add_argument("--conversations", type=int, default=50, help="threads they are spread over (default 50)")
    p.add_argument(
        "--latency", type=float, default=0.2, help="the model's answer time in seconds (default 0.2)"
    )
    p.add_argument("--restart-db", action="store_true", help="restart PostgreSQL half-way through")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--retry-share", type=float, default=0.1, help="share of events Slack delivers again")
    p.add_argument("--gap", type=float, help="mean pause between a thread's messages (default: --latency)")
    p.add_argument("--reply-chars", type=int, default=0, help="answer length; ≥ 200 makes answers stream")
    p.add_argument("--timeout", type=float, default=300.0, help="bound for the run itself, in seconds")
    p.add_argument("--logs", type=Path, help="keep the Haven processes' logs in this directory")
    p.add_argument(
        "--profile", type=Path, help="write a pyinstrument profile of process 0 here (.html or text)"
    )
    a = p.parse_args(argv)
    if a.messages < a.conversations or a.conversations < 1 or a.processes < 1:
        p.error("need --messages ≥ --conversations ≥ 1 and --processes ≥ 1")
    cfg = LoadConfig(
        messages=a.messages,
        conversations=a.conversations,
        latency=a.latency,
        restart_db=a.restart_db,
        seed=a.seed,
        processes=a.processes,
        retry_share=a.retry_share,
        gap=a.gap,
        reply_chars=a.reply_chars,
        timeout=a.timeout,
    )
    try:
        profile = a.profile.resolve() if a.profile else None
        return asyncio.run(_main(cfg, profile, a.logs.resolve() if a.logs else None))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
