"""Faults under load: two ``haven run`` processes on one PostgreSQL while the database stops, a process
is killed with ``kill -9`` and another gets SIGTERM — is every message still answered exactly once?

    .venv/bin/python bench/faults.py                      # 1,000 messages over 50 threads
    .venv/bin/python bench/faults.py --messages 100 --conversations 10 --db-stop 5

It starts a throwaway PostgreSQL (``fakes/postgres.py``), the scripted model (answers ``A<c>-<k>`` to
``Q<c>-<k>`` after ``--latency`` s), the mock Slack Web API and ``--processes`` ``haven run`` processes
in Slack HTTP mode. Each thread starts with a mention (``app_mention`` plus its ``message`` copy) and
goes on with thread replies once Haven answered it. Events are delivered the way Slack does it: one
signed POST to one process (Slack's URL is a load balancer), and a delivery that is not answered 200
within 3 s (a 503 while the database is away, a refused connection to a dead process, a time-out) is
delivered again, with ``X-Slack-Retry-Num``, until it is acknowledged (``SlackSender``). Slack's own
schedule is compressed to one redelivery a second, and a thread's next message goes out only once the
previous one was acknowledged: Slack keeps no order between the events it retries, and Haven can only
keep the order it received, so this is what makes "in order" well defined.

At seeded random points after the first answers the run stops PostgreSQL for ``--db-stop`` s, kills one
process with SIGKILL and sends another SIGTERM (each is started again a few seconds later, as an
orchestrator would). When every message has an answer (or nothing moves any more) it prints one table:
sent, answered exactly once, lost, duplicates, threads out of order, answer latency (first delivery →
reply visible in Slack, the model's latency included) and what happened when.

``Cluster``, ``SlackSender`` and ``FaultModel`` are the machinery of ``tests/slack/test_faults.py`` too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.common import pct, table  # noqa: E402
from bench.load import QUESTION, USERS, Answers, free_port, haven_env, print_result, running_mocks, tail  # noqa: E402
from fakes.fake_anthropic import CutStream, Delay, FakeAnthropic, Reply, Step  # noqa: E402
from fakes.mock_slack import MockSlack  # noqa: E402
from fakes.postgres import PostgresServer, start_postgres  # noqa: E402
from fakes.slack_harness import BOT, SlackHarness, signed_headers  # noqa: E402

START_SECONDS = 90.0  # a Haven process must answer /healthz within this
SLACK_TIMEOUT = 3.0  # Slack gives up on a delivery after 3 s and sends it again


# -- the scripted model ----------------------------------------------------------------------------------


@dataclass
class StallStream(CutStream):
    """Streaming: send ``after_events`` SSE events of ``reply``, wait ``stall`` seconds, send the rest."""

    stall: float = 30.0


@dataclass
class Plan:
    """What the *first* model request for one question does (later ones, e.g. a recovery, answer plainly)."""

    delay: float = 0.0
    stall: float = 0.0  # > 0: stream the reply's first third, then wait this long


class FaultModel(FakeAnthropic):
    """Answers ``A<c>-<k>: …`` for the newest ``Q<c>-<k>`` of the request after ``latency`` s, padded to
    ``reply_chars``; ``plan(c, k, …)`` makes the first request for one question slow or stall mid-stream."""

    def __init__(self, latency: float = 0.1, reply_chars: int = 0) -> None:
        super().__init__()
        self.latency, self.reply_chars = latency, reply_chars
        self.plans: dict[tuple[int, int], Plan] = {}
        self.asked: Counter[tuple[int, int]] = Counter()  # model requests per question
        self.default = self._respond

    def plan(self, c: int, k: int, *, delay: float = 0.0, stall: float = 0.0) -> None:
        self.plans[(c, k)] = Plan(delay, stall)

    @staticmethod
    def question(body: Mapping[str, Any]) -> tuple[int, int] | None:
        last: Mapping[str, Any] = next(
            (m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {}
        )
        content = last.get("content")
        found = QUESTION.findall(content if isinstance(content, str) else json.dumps(content))
        return (int(found[-1][0]), int(found[-1][1])) if found else None

    def answer(self, c: int, k: int, chars: int | None = None) -> str:
        chars = self.reply_chars if chars is None else chars
        text = f"A{c}-{k}: here is my answer."
        if len(text) < chars:
            text += " " + ("More detail follows. " * (chars // 21 + 1))[: chars - len(text) - 1]
        return text

    def _respond(self, body: dict[str, Any]) -> Step:
        q = self.question(body)
        if q is None:
            return Delay(self.latency, Reply([{"type": "text", "text": "A?-?: no question found."}]))
        self.asked[q] += 1
        plan = self.plans.get(q) if self.asked[q] == 1 else None
        if plan is not None and plan.stall:
            # At least 3 × 200 characters: the first third alone makes Haven open a Slack stream.
            reply = Reply([{"type": "text", "text": self.answer(*q, max(self.reply_chars, 900))}])
            return StallStream(after_events=4, reply=reply, stall=plan.stall)
        reply = Reply([{"type": "text", "text": self.answer(*q)}])
        return Delay(self.latency + (plan.delay if plan else 0.0), reply)

    def requested(self, c: int, k: int) -> bool:
        return self.asked[(c, k)] > 0

    async def _stream(
        self, request: web.Request, message: dict[str, Any], cut: CutStream | None, reply: Reply
    ) -> web.StreamResponse:
        if not isinstance(cut, StallStream):
            return await super()._stream(request, message, cut, reply)
        resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        events = self._events(message)
        for i, (name, data) in enumerate(events):
            if i == cut.after_events:
                await asyncio.sleep(cut.stall)
            await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        await resp.write_eof()
        return resp


# -- Haven processes -------------------------------------------------------------------------------------


@dataclass
class Proc:
    slot: int
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class Cluster:
    """``haven run`` in Slack HTTP mode in ``n`` slots on one database; a slot's process can be killed,
    terminated and started again (a new log each time). ``stop()`` always ends them (TERM, then KILL)."""

    def __init__(self, n: int, env: Mapping[str, str], workdir: Path) -> None:
        self.n, self.env, self.dir = n, dict(env), workdir
        self.slots: list[Proc | None] = [None] * n
        self.every: list[Proc] = []  # every process ever started, for the logs

    def migrate(self) -> None:
        """One ``haven db upgrade`` first, so the processes do not race to create the schema."""
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env=self.env,
            cwd=self.dir,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, slot: int | None = None) -> None:
        """Start every slot (or one): a fresh port each time, as a new container would get."""
        for i in range(self.n) if slot is None else [slot]:
            port = free_port()
            log_path = self.dir / f"haven-{i}-{len([p for p in self.every if p.slot == i])}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bot", "run"],
                    env={**self.env, "PORT": str(port), "HAVEN_OPS_PORT": str(free_port())},
                    cwd=self.dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the bench, which then stops them in order
                )
            p = Proc(i, proc, port, log_path)
            self.slots[i] = p
            self.every.append(p)

    async def wait_healthy(
        self, http: aiohttp.ClientSession, seconds: float = START_SECONDS, slot: int | None = None
    ) -> None:
        """Until every slot's process (or one slot's) answers ``/healthz``."""
        deadline = time.monotonic() + seconds
        for p in [s for i, s in enumerate(self.slots) if s is not None and slot in (None, i)]:
            while True:
                if not p.alive:
                    raise RuntimeError(f"haven {p.slot} exited with {p.proc.returncode}:\n{tail(p.log)}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"http://127.0.0.1:{p.port}/healthz") as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"haven {p.slot} did not start:\n{tail(p.log)}")
                await asyncio.sleep(0.1)

    def port(self, slot: int) -> int:
        p = self.slots[slot]
        assert p is not None
        return p.port

    def live_ports(self) -> list[int]:
        return [p.port for p in self.slots if p is not None and p.alive]

    def signal(self, slot: int, sig: signal.Signals) -> None:
        p = self.slots[slot]
        if p is not None and p.alive:
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(sig)

    def kill(self, slot: int) -> None:
        """``kill -9``: no shutdown, no release; its inbox entries wait for their leases to run out."""
        self.signal(slot, signal.SIGKILL)
        p = self.slots[slot]
        if p is not None:
            p.proc.wait(10)

    async def wait_exit(self, slot: int, seconds: float) -> int | None:
        p = self.slots[slot]
        assert p is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(p.proc.wait, seconds)
        return p.proc.poll()

    def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM (``graceful=False``: SIGKILL) to every process still running, and wait for them."""
        for p in self.every:
            if p.alive:
                with contextlib.suppress(ProcessLookupError):
                    p.proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + 15
        for p in self.every:
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- haven {p.slot} (port {p.port}) ---\n{tail(p.log, 40)}" for p in self.every)

    def errors(self) -> list[str]:
        """ERROR lines of every process (JSON logs), as ``event: exception's last line``."""
        found = []
        for p in self.every:
            for line in p.log.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    if "Traceback" in line:
                        found.append(f"haven {p.slot}: {line.strip()}")
                    continue
                if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
                    exc = (record.get("exc") or "").strip().splitlines()
                    where = (
                        f" ({record.get('error')} at {record.get('where')})" if record.get("where") else ""
                    )
                    found.append(
                        f"haven {p.slot}: {record.get('event')}{where}" + (f": {exc[-1]}" if exc else "")
                    )
        return found


def fault_env(
    database_url: str, slack: MockSlack, model: FakeAnthropic, **settings: float | str
) -> dict[str, str]:
    """``bench.load.haven_env`` plus Haven settings by their environment names, e.g.
    ``HAVEN_INBOX_LEASE_SECONDS=3``."""
    env = haven_env(database_url, slack, model)
    env.update(HAVEN_LOG_LEVEL="INFO")
    env.update({k: str(v) for k, v in settings.items()})
    return env


@contextlib.contextmanager
def mocks(latency: float = 0.1, reply_chars: int = 0) -> Iterator[tuple[FaultModel, MockSlack]]:
    """The scripted model and the mock Slack, each on a thread of its own."""
    with running_mocks(FaultModel(latency, reply_chars)) as pair:
        yield pair


# -- Slack's deliveries ----------------------------------------------------------------------------------


@dataclass
class Delivery:
    event_id: str
    first_at: float
    attempts: int = 0
    statuses: list[str] = field(default_factory=list)  # "200", "503", "refused", "timeout", …
    acked_at: float | None = None


class SlackSender:
    """Delivers signed events as Slack does: one process per attempt, and again until one says 200."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        cluster: Cluster,
        *,
        seed: int = 1,
        every: float = 1.0,
        give_up: float = 120.0,
    ) -> None:
        self.http, self.cluster, self.every, self.give_up = http, cluster, every, give_up
        self.rng = random.Random(seed)
        self.deliveries: list[Delivery] = []
        self._n = 0

    @property
    def posts(self) -> int:
        return sum(d.attempts for d in self.deliveries)

    def not_acked(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.acked_at is None]

    async def _post(self, port: int, body: str, retry: int) -> str:
        try:
            async with self.http.post(
                f"http://127.0.0.1:{port}/slack/events",
                data=body,
                headers=signed_headers(body, retry=retry or None),
                timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT),
            ) as resp:
                await resp.read()
                return str(resp.status)
        except aiohttp.ClientConnectorError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return type(exc).__name__

    async def event(self, event: dict[str, Any], *, to: int | None = None) -> Delivery:
        """Deliver one event (first to process slot ``to`` if given), again and again until acknowledged."""
        self._n += 1
        event_id = f"EvFault{self._n:07d}"
        body = json.dumps(SlackHarness.envelope(event, event_id=event_id))
        d = Delivery(event_id, time.monotonic())
        self.deliveries.append(d)
        while time.monotonic() - d.first_at < self.give_up:
            ports = self.cluster.live_ports()
            if d.attempts == 0 and to is not None:
                port = self.cluster.port(to)
            elif ports:
                port = self.rng.choice(ports)
            else:
                port = 0
            status = await self._post(port, body, min(d.attempts, 3)) if port else "no process"
            d.attempts += 1
            d.statuses.append(status)
            if status == "200":
                d.acked_at = time.monotonic()
                return d
            await asyncio.sleep(self.every)
        return d

    async def mention(
        self, words: str, *, ts: str, user: str, thread_ts: str | None = None, to: int | None = None
    ) -> None:
        """What Slack sends for a message that mentions Haven: ``app_mention`` and the ``message`` copy,
        delivered independently (perhaps to different processes)."""
        text = f"<@{BOT}> {words}"
        await asyncio.gather(
            self.event(
                SlackHarness.message(text, ts=ts, user=user, thread_ts=thread_ts, kind="app_mention"), to=to
            ),
            self.event(SlackHarness.message(text, ts=ts, user=user, thread_ts=thread_ts), to=to),
        )

    async def reply(self, words: str, *, ts: str, user: str, thread_ts: str, to: int | None = None) -> None:
        await self.event(SlackHarness.message(words, ts=ts, user=user, thread_ts=thread_ts), to=to)


# -- counting what Slack shows ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What the threads show: per question, how many of the bot's messages answer it, and in what order."""

    expected: set[tuple[int, int]]
    counts: Counter[tuple[int, int]] = field(default_factory=Counter)
    out_of_order: list[str] = field(default_factory=list)
    other_replies: list[str] = field(default_factory=list)  # bot messages answering no question (notes)
    first_at: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return len(set(self.counts) & self.expected)

    @property
    def lost(self) -> list[str]:
        return [f"Q{c}-{k}" for c, k in sorted(self.expected - set(self.counts))]

    @property
    def duplicated(self) -> list[str]:
        return [f"Q{c}-{k} ×{n}" for (c, k), n in sorted(self.counts.items()) if n > 1]

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.counts.values())

    def problems(self) -> str:
        parts = []
        for name, items in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("out of order", self.out_of_order),
            ("other bot messages", self.other_replies),
        ):
            if items:
                parts.append(
                    f"{name} ({len(items)}): " + "; ".join(items[:10]) + (" …" if len(items) > 10 else "")
                )
        return "\n".join(parts)


def tally(slack: MockSlack, roots: Mapping[str, int], expected: set[tuple[int, int]]) -> Tally:
    answers = Answers(slack, roots)
    answers.scan()
    t = Tally(expected, first_at=dict(answers.first_at))
    for c, items in sorted(answers.by_thread().items()):
        order = []
        for k, m in items:
            if k is None:
                t.other_replies.append(f"thread {c}: {(m.get('text') or '')[:60]!r}")
                continue
            t.counts[(c, k)] += 1
            if t.counts[(c, k)] == 1:
                order.append(k)
        if order != sorted(order):
            t.out_of_order.append(f"thread {c}: {order}")
    return t


async def wait_until(check: Any, seconds: float, every: float = 0.05) -> bool:
    """Until ``check()`` is true (then True) or ``seconds`` passed (then False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(every)
    return bool(check())


def root_ts(epoch: int, c: int) -> str:
    return f"{epoch + c}.000001"


def message_ts(epoch: int, c: int, k: int) -> str:
    return root_ts(epoch, c) if k == 0 else f"{epoch + c}.{k + 1:06d}"


# -- the soak --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultConfig:
    messages: int = 1000
    conversations: int = 50
    processes: int = 2
    latency: float = 0.2  # the model's answer time
    gap: float = 0.3  # mean pause between a thread's messages (after the previous one was acknowledged)
    db_stop: float = 10.0  # seconds PostgreSQL is down (0: no outage)
    # The stop comes while a reply is being posted to Slack (chat.postMessage held for 2 s): the reply
    # is drawn, but the database is gone before the turn can say so.
    stop_during_post: bool = False
    kill: bool = True  # one kill -9 …
    term: bool = True  # … and one SIGTERM, at random points
    restart_after: float = 3.0  # a killed or terminated process is started again this much later
    seed: int = 1
    lease: float = 5.0  # HAVEN_INBOX_LEASE_SECONDS
    shutdown: float = 2.0  # HAVEN_SHUTDOWN_SECONDS
    recovery: float = 5.0  # HAVEN_RECOVERY_SECONDS
    timeout: float = 600.0  # for the whole run, start-up excluded
    settle: float = 2.0  # quiet time that counts as "done" once every message has an answer
    log_level: str = "WARNING"  # the Haven processes' HAVEN_LOG_LEVEL

    def per_conversation(self) -> list[int]:
        base, extra = divmod(self.messages, self.conversations)
        return [base + (1 if c < extra else 0) for c in range(self.conversations)]


@dataclass
class FaultResult:
    config: FaultConfig
    tally: Tally | None = None
    sent: int = 0
    posts: int = 0
    not_acked: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # what happened when
    wall: float = 0.0
    process_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        t = self.tally
        return t is not None and not t.lost and not t.duplicates and not t.out_of_order and not self.not_acked

    def rows(self) -> list[tuple[str, str]]:
        cfg, t = self.config, self.tally
        assert t is not None
        lat = sorted(self.latencies)
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items()))
        return [
            (
                "setting",
                f"{cfg.processes} processes, 1 PostgreSQL, model {cfg.latency:g} s, lease {cfg.lease:g} s, "
                f"shutdown {cfg.shutdown:g} s, recovery every {cfg.recovery:g} s, seed {cfg.seed}",
            ),
            ("faults", "; ".join(self.events) or "none"),
            ("messages sent", f"{self.sent} in {cfg.conversations} threads"),
            (
                "event deliveries (HTTP POSTs)",
                f"{self.posts} ({statuses}); never acknowledged {self.not_acked}",
            ),
            ("answered exactly once", str(t.answered - len(t.duplicated))),
            ("lost", str(len(t.lost))),
            ("duplicates", str(t.duplicates)),
            ("threads out of order", f"{len(t.out_of_order)}/{cfg.conversations}"),
            ("other bot messages (notes)", str(len(t.other_replies))),
            (
                "answer latency (first delivery → visible)",
                f"p50 {pct(lat, 50):.2f} s, p99 {pct(lat, 99):.2f} s, max {max(lat, default=0):.2f} s",
            ),
            ("wall time", f"{self.wall:.1f} s"),
            ("process errors (ERROR log lines)", str(len(self.process_errors))),
        ]

    def table(self) -> str:
        return table(["measure", "value"], self.rows())

    def problems(self) -> str:
        out = self.tally.problems() if self.tally else ""
        if self.process_errors:
            out += "\nprocess errors: " + "; ".join(self.process_errors[:8])
        return out.strip()


async def run_faults(
    cfg: FaultConfig, *, server: PostgresServer, database_url: str, workdir: Path, progress: bool = False
) -> FaultResult:
    """Start the mocks and the processes, play the traffic with the faults, wait for quiet, count."""
    result = FaultResult(cfg)
    with mocks(cfg.latency) as (model, slack):
        env = fault_env(
            database_url,
            slack,
            model,
            HAVEN_INBOX_LEASE_SECONDS=cfg.lease,
            HAVEN_SHUTDOWN_SECONDS=cfg.shutdown,
            HAVEN_RECOVERY_SECONDS=cfg.recovery,
            HAVEN_LOG_LEVEL=cfg.log_level,
        )
        cluster = Cluster(cfg.processes, env, workdir)
        try:
            await asyncio.to_thread(cluster.migrate)
            cluster.start()
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:
                await cluster.wait_healthy(http)
                sender = SlackSender(http, cluster, seed=cfg.seed + 1)
                await _play(cfg, cluster, sender, slack, server, http, result, progress)
        finally:
            if not server.is_running:
                await asyncio.to_thread(server.start)
            await asyncio.to_thread(cluster.stop)
        result.process_errors = cluster.errors()
    return result


async def _play(
    cfg: FaultConfig,
    cluster: Cluster,
    sender: SlackSender,
    slack: MockSlack,
    server: PostgresServer,
    http: aiohttp.ClientSession,
    result: FaultResult,
    progress: bool,
) -> None:
    rng = random.Random(cfg.seed)
    epoch = int(time.time()) - 100_000
    counts = cfg.per_conversation()
    roots = {root_ts(epoch, c): c for c in range(cfg.conversations)}
    expected = {(c, k) for c, n in enumerate(counts) for k in range(n)}
    answers = Answers(slack, roots)
    sent_at: dict[tuple[int, int], float] = {}
    started = time.monotonic()
    deadline = started + cfg.timeout

    async def thread(c: int, n: int) -> None:
        await asyncio.sleep(rng.uniform(0, cfg.gap * 2))
        for k in range(n):
            user, words = USERS[(c + k) % len(USERS)], f"Q{c}-{k}: what about item {rng.randint(1, 999)}?"
            sent_at[(c, k)] = time.monotonic()
            if k == 0:
                await sender.mention(words, ts=root_ts(epoch, c), user=user)
                # Replies go into Haven's thread, which exists once Haven answered the mention.
                while (c, 0) not in answers.first_at and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    answers.scan()
            else:
                await sender.reply(words, ts=message_ts(epoch, c, k), user=user, thread_ts=root_ts(epoch, c))
            await asyncio.sleep(rng.uniform(0, 2 * cfg.gap))

    # The faults, at random points of the run's middle (by messages sent), none before the first answers.
    total = cfg.messages
    points = sorted(rng.uniform(0.2, 0.7) * total for _ in range(3))
    rng.shuffle(points)
    db_at, kill_at, term_at = points
    kill_slot = rng.randrange(cfg.processes)
    term_slot = (kill_slot + 1) % cfg.processes

    async def after(sent: float) -> float:
        await wait_until(lambda: len(sent_at) >= sent, cfg.timeout)
        return time.monotonic() - started

    async def outage() -> None:
        at = await after(db_at)
        if cfg.stop_during_post:
            posts = slack.count("chat.postMessage")
            slack.delays["chat.postMessage"] = 2.0
            await wait_until(lambda: slack.count("chat.postMessage") > posts, cfg.timeout)
            at = time.monotonic() - started
        await asyncio.to_thread(server.shutdown, "fast")
        slack.delays.pop("chat.postMessage", None)
        await asyncio.sleep(cfg.db_stop)
        await asyncio.to_thread(server.start)
        during = " while a reply was being posted" if cfg.stop_during_post else ""
        result.events.append(f"PostgreSQL stopped at {at:.1f} s for {cfg.db_stop:g} s{during}")

    async def crash(slot: int, sent: float, sig: signal.Signals) -> None:
        at = await after(sent)
        if sig is signal.SIGKILL:
            await asyncio.to_thread(cluster.kill, slot)
        else:
            cluster.signal(slot, sig)
            await cluster.wait_exit(slot, cfg.shutdown + 20)
        await asyncio.sleep(cfg.restart_after)
        # As an orchestrator does: start it again, and again while it stops at start-up (it does when
        # the database cannot be reached), once a second.
        tries = 0
        while True:
            tries += 1
            cluster.start(slot)
            try:
                await cluster.wait_healthy(http, slot=slot)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)
        result.events.append(
            f"{sig.name} to process {slot} at {at:.1f} s, started again {cfg.restart_after:g} s later"
            + (f" ({tries} starts: the database was down)" if tries > 1 else "")
        )

    faults = []
    if cfg.db_stop:
        faults.append(asyncio.create_task(outage()))
    if cfg.kill:
        faults.append(asyncio.create_task(crash(kill_slot, kill_at, signal.SIGKILL)))
    if cfg.term:
        faults.append(asyncio.create_task(crash(term_slot, term_at, signal.SIGTERM)))
    threads = [asyncio.create_task(thread(c, n)) for c, n in enumerate(counts)]
    try:
        done, _pending = await asyncio.wait(threads, timeout=max(1.0, deadline - time.monotonic()))
        for t in done:
            if t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        for t in faults:
            await asyncio.wait_for(t, timeout=max(1.0, deadline - time.monotonic()))
        # Quiet: every message answered and Slack saw no call for `settle` s, or nothing moves for long.
        idle_limit = max(30.0, 3 * cfg.lease + 10)
        last, changed, shown = -1, time.monotonic(), -1
        while (now := time.monotonic()) < deadline:
            answers.scan()
            if len(slack.calls) != last:
                last, changed = len(slack.calls), now
            if len(answers.first_at) >= total and now - changed >= cfg.settle:
                break
            if now - changed >= idle_limit:
                break
            if progress and len(answers.first_at) != shown:
                shown = len(answers.first_at)
                print(f"\r  answered {shown}/{total}", end="", flush=True)
            await asyncio.sleep(0.1)
    finally:
        for t in [*threads, *faults]:
            t.cancel()
    score = tally(slack, roots, expected)
    result.tally = score
    result.sent = len(sent_at)
    result.posts = sender.posts
    result.not_acked = len(sender.not_acked())
    result.statuses = Counter(s for d in sender.deliveries for s in d.statuses)
    result.latencies = [
        score.first_at[q] - sent_at[q] for q in expected if q in score.first_at and q in sent_at
    ]
    result.wall = max(score.first_at.values(), default=started) - started


# -- command line ----------------------------------------------------------------------------------------


async def _main(cfg: FaultConfig, logs: Path | None) -> int:
    # A killed process leaves the model server writing into a closed connection: expected here, not news.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    print(f"starting PostgreSQL, the mocks and {cfg.processes} Haven processes …", flush=True)
    server = await asyncio.to_thread(start_postgres)
    try:
        url = await asyncio.to_thread(server.create_database, "haven_faults")
        with tempfile.TemporaryDirectory(prefix="haven-faults-") as tmp:
            workdir = logs or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            result = await run_faults(cfg, server=server, database_url=url, workdir=workdir, progress=True)
    finally:
        await asyncio.to_thread(server.stop)
    return print_result(result)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--conversations", type=int, default=50)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--latency", type=float, default=0.2, help="the model's answer time in seconds")
    p.add_argument("--gap", type=float, default=0.3, help="mean pause between a thread's messages")
    p.add_argument("--db-stop", type=float, default=10.0, help="seconds PostgreSQL is down (0: none)")
    p.add_argument("--no-kill", action="store_true", help="no kill -9")
    p.add_argument("--no-term", action="store_true", help="no SIGTERM")
    p.add_argument("--lease", type=float, default=5.0, help="HAVEN_INBOX_LEASE_SECONDS")
    p.add_argument("--shutdown", type=float, default=2.0, help="HAVEN_SHUTDOWN_SECONDS")
    p.add_argument("--recovery", type=float, default=5.0, help="HAVEN_RECOVERY_SECONDS")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--logs", type=Path, help="keep the Haven processes' logs in this directory")
    a = p.parse_args(argv)
    if a.messages < a.conversations or a.conversations < 1 or a.processes < 1:
        p.error("need --messages ≥ --conversations ≥ 1 and --processes ≥ 1")
    cfg = FaultConfig(
        messages=a.messages,
        conversations=a.conversations,
        processes=a.processes,
        latency=a.latency,
        gap=a.gap,
        db_stop=a.db_stop,
        kill=not a.no_kill,
        term=not a.no_term,
        lease=a.lease,
        shutdown=a.shutdown,
        recovery=a.recovery,
        seed=a.seed,
        timeout=a.timeout,
    )
    try:
        return asyncio.run(_main(cfg, a.logs.resolve() if a.logs else None))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
