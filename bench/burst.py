"""Many threads at once against one process: is every event acknowledged within Slack's 3 s, every
thread answered exactly once, and do the process's file descriptors stay bounded?

    .venv/bin/python bench/load.py --threads 1500              # the same as: python bench/burst.py
    .venv/bin/python bench/burst.py --threads 1500 --latency 1.0 --connections 256

One ``haven run`` in Slack HTTP mode on a throwaway PostgreSQL (the production set-up; SQLite is
single-process by design and would measure its one writer rather than Haven), the mock Slack Web API
and the scripted model (each answer takes ``--latency`` s) on this process's threads. ``--threads``
people each start a thread at the same moment: an @mention, which Slack delivers as two events
(``app_mention`` and its ``message`` copy), so 2 × ``--threads`` signed POSTs.

The sender is meant to cost next to nothing, so that what is measured is Haven: every request is
signed and encoded before the burst, ``--connections`` keep-alive connections are open before it (a
load balancer's pool in front of Haven; below Haven's ``HAVEN_HTTP_MAX_CONNECTIONS``), and at the burst
each connection writes its requests one after the other with plain socket writes. An event's
acknowledgement time runs from the burst's start to its response, so time spent queued behind the
events before it on the same connection counts against it, as it would against Slack's 3 s. A request
whose connection was dropped is sent again on a new one (as Slack would retry), its clock still
running; the table says how often.

While it runs, a thread samples the Haven process's open file descriptors (``/proc/<pid>/fd``) and RSS
every 20 ms; the table also gives the kernel's peak RSS (``VmHWM``) and the fd limit on both sides.
``run_burst()`` is the same machinery for ``tests/slack/test_many_threads.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import machine, pct, table  # noqa: E402
from bench.load import ANSWER, HavenProcesses, answering_model, free_port, haven_env, running_mocks  # noqa: E402
from fakes.mock_slack import MockSlack  # noqa: E402
from fakes.postgres import start_postgres  # noqa: E402
from fakes.slack_harness import BOT, CHANNEL, SlackHarness, signed_headers  # noqa: E402

SLACK_ACK_SECONDS = 3.0  # Slack counts an event not answered within this as failed and sends it again


@dataclass(frozen=True)
class BurstConfig:
    threads: int = 1500
    latency: float = 1.0  # the scripted model's time per answer
    connections: int = 256  # keep-alive connections the events arrive on
    people: int = 0  # distinct authors (Haven looks each up once); 0: one per thread
    max_turns: int | None = None  # HAVEN_MAX_CONCURRENT_TURNS for the process; None: Haven's default
    timeout: float = 300.0  # for the burst and its answers, start-up excluded
    settle: float = 1.0  # quiet time after the last answer, to catch a second answer to any thread


@dataclass
class BurstResult:
    config: BurstConfig
    acks: list[float] = field(default_factory=list)  # seconds from the burst to each 200
    statuses: Counter[int] = field(default_factory=Counter)  # of every response, first tries and resends
    resent: int = 0  # requests sent again because their connection was dropped
    unacked: int = 0  # events never answered 200 before the time-out
    answered: int = 0  # threads with at least one answer
    twice: list[int] = field(default_factory=list)  # threads answered more than once
    error_replies: int = 0  # bot messages in the threads that answer no question (failure notes)
    wall: float = 0.0  # burst → last answer
    fd_before: int = 0
    fd_peak: int = 0
    fd_at_peak: Counter[str] = field(default_factory=Counter)
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0  # the kernel's high-water mark (VmHWM)
    fd_limit: int = 0  # the Haven process's soft RLIMIT_NOFILE
    bench_fd_limit: int = 0
    haven_cpu: float = 0.0
    ack_cpu: float = 0.0  # Haven's CPU from the burst to its last acknowledgement
    bench_cpu: float = 0.0
    process_errors: list[str] = field(default_factory=list)
    slack_calls: Counter[str] = field(default_factory=Counter)

    @property
    def events(self) -> int:
        return 2 * self.config.threads

    @property
    def late(self) -> int:
        return sum(1 for a in self.acks if a > SLACK_ACK_SECONDS) + self.unacked

    @property
    def ok(self) -> bool:
        return (
            self.late == 0
            and self.answered == self.config.threads
            and not self.twice
            and self.error_replies == 0
            and not self.process_errors
        )

    def rows(self) -> list[tuple[str, str]]:
        cfg = self.config
        acks = [1000 * a for a in self.acks]
        others = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()) if s != 200) or "none"
        return [
            (
                "setting",
                f"{cfg.threads} threads at once ({self.events} events), 1 process, PostgreSQL, "
                f"model {cfg.latency:g} s, {cfg.connections} keep-alive connections, "
                f"HAVEN_MAX_CONCURRENT_TURNS {cfg.max_turns or 'default'}",
            ),
            (
                "acknowledgement",
                f"p50 {pct(acks, 50):.0f} ms, p95 {pct(acks, 95):.0f} ms, max {max(acks, default=0):.0f} ms",
            ),
            (f"events not acknowledged within {SLACK_ACK_SECONDS:g} s", f"{self.late} of {self.events}"),
            ("other responses, resends", f"{others}; {self.resent} resent on a new connection"),
            ("threads answered", f"{self.answered} of {cfg.threads}"),
            ("threads answered twice", str(len(self.twice))),
            ("failure notes", str(self.error_replies)),
            ("wall time (burst → last answer)", f"{self.wall:.1f} s"),
            ("open file descriptors of Haven", f"{self.fd_before} before, peak {self.fd_peak}"),
            ("  … near the peak", ", ".join(f"{k} {n}" for k, n in self.fd_at_peak.most_common())),
            ("RSS of Haven", f"{self.rss_before_mb:.0f} MB before, peak {self.rss_peak_mb:.0f} MB"),
            ("fd limit (ulimit -n)", f"Haven {self.fd_limit}, this bench {self.bench_fd_limit}"),
            (
                "Haven's CPU until the last acknowledgement",
                f"{self.ack_cpu:.2f} s, {1000 * self.ack_cpu / max(1, self.events):.2f} ms an event "
                "(with any turn that started meanwhile)",
            ),
            (
                "CPU",
                f"Haven {self.haven_cpu:.1f} s, this bench with its mock servers {self.bench_cpu:.1f} s; "
                f"{os.cpu_count()} CPUs",
            ),
            ("process errors", str(len(self.process_errors))),
            ("Slack Web API calls", ", ".join(f"{m} {n}" for m, n in sorted(self.slack_calls.items()))),
        ]

    def table(self) -> str:
        return table(["measure", "value"], self.rows())

    def problems(self) -> str:
        lines = []
        if self.twice:
            lines.append(f"answered twice: threads {self.twice[:10]}")
        if self.process_errors:
            lines.append("process errors: " + "; ".join(self.process_errors[:8]))
        return "\n".join(lines)


# -- the Haven process, seen from /proc ------------------------------------------------------------------


class ProcWatch:
    """Samples a process's open fds and RSS on a thread of its own, so a busy event loop cannot skip
    the moments that matter."""

    def __init__(self, pid: int, ports: Mapping[int, str], every: float = 0.02) -> None:
        self.pid, self.ports, self.every = pid, dict(ports), every
        self.fd_peak = 0
        self.at_peak: Counter[str] = Counter()  # what the descriptors were at the peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc watch", daemon=True)

    def fds(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

    def status_kb(self, key: str) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def fd_limit(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            n = self.fds()
            if n > self.fd_peak:
                self.fd_peak = n
                if n > 1.1 * sum(self.at_peak.values()):  # a new peak worth describing
                    self.at_peak = self.kinds()

    def kinds(self) -> Counter[str]:
        """Open descriptors by what they are: TCP sockets by the port at the other end (named by
        ``ports``, whichever end listens), the rest by kind."""
        links: list[str] = []
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                with contextlib.suppress(OSError):
                    links.append(os.readlink(f"/proc/{self.pid}/fd/{fd}"))
        where: dict[str, str] = {}
        for proto in ("tcp", "tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{self.pid}/net/{proto}").read_text().splitlines()[1:]:
                    cols = line.split()
                    local, remote = (int(cols[i].rsplit(":", 1)[1], 16) for i in (1, 2))
                    name = self.ports.get(local) or self.ports.get(remote) or "other TCP"
                    where[f"socket:[{cols[9]}]"] = name
        out: Counter[str] = Counter()
        for link in links:
            out[where.get(link, "other socket" if link.startswith("socket:") else "files, pipes, other")] += 1
        return out

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# -- the sender ------------------------------------------------------------------------------------------


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def request_bytes(port: int, body: str) -> bytes:
    head = ["POST /slack/events HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body.encode())}"]
    head += [f"{k}: {v}" for k, v in signed_headers(body).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body.encode()


async def read_response(reader: asyncio.StreamReader) -> int:
    """One HTTP/1.1 response's status; its body is read and dropped (Haven's are Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(x.split(":", 1)[1]) for x in lines[1:] if x.lower().startswith("content-length:")), 0)
    if length:
        await reader.readexactly(length)
    return status


class Sender:
    """``connections`` keep-alive connections, each sending its share of the requests in turn."""

    def __init__(self, port: int, connections: int) -> None:
        self.port, self.connections = port, connections
        self.acks: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.resent = 0
        self._pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self) -> None:
        """Open the connections, each with one health check, so that the server has accepted them all
        (and counts them among its descriptors) before the burst."""
        check = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode()
        for _ in range(self.connections):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(check)
            if await read_response(reader) != 200:
                raise RuntimeError("the health check before the burst failed")
            self._pool.append((reader, writer))

    async def close(self) -> None:
        for _, writer in self._pool:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def burst(self, requests: list[bytes], deadline: float) -> float:
        """Send every request now; the burst's start (monotonic)."""
        shares = [requests[i :: self.connections] for i in range(self.connections)]
        started = time.monotonic()
        await asyncio.gather(*(self._lane(i, share, started, deadline) for i, share in enumerate(shares)))
        return started

    async def _lane(self, i: int, share: list[bytes], started: float, deadline: float) -> None:
        reader, writer = self._pool[i]
        for request in share:
            while time.monotonic() < deadline:
                try:
                    writer.write(request)
                    status = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    # Dropped by the server (an idle time-out, the connection cap): a new connection,
                    # and the event again, as Slack would send it again.
                    writer.close()
                    self.resent += 1
                    await asyncio.sleep(0.05)
                    with contextlib.suppress(OSError):
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                        self._pool[i] = reader, writer
                    continue
                self.statuses[status] += 1
                if status == 200:
                    self.acks.append(time.monotonic() - started)
                    break
                await asyncio.sleep(0.5)  # a 503 or 5xx: Slack delivers it again a little later


# -- one run ---------------------------------------------------------------------------------------------


def thread_events(threads: int, people: int, epoch: int) -> tuple[dict[str, int], list[str]]:
    """Each thread's root ts → its number, and the signed bodies of its mention's two events,
    interleaved so that each thread's pair arrives close together (as Slack sends them)."""
    roots: dict[str, int] = {}
    bodies: list[str] = []
    for c in range(threads):
        ts = f"{epoch + c // 1000}.{c % 1000 + 1:06d}"
        roots[ts] = c
        user = f"UBURST{c % people:05d}"
        text = f"<@{BOT}> Q{c}-0: what should we do about item {c}?"
        for n, kind in enumerate(("app_mention", "message")):
            event = SlackHarness.message(text, ts=ts, user=user, kind=kind)
            bodies.append(json.dumps(SlackHarness.envelope(event, event_id=f"EvBurst{c:05d}{n}")))
    return roots, bodies


def count_answers(slack: MockSlack, roots: dict[str, int], result: BurstResult) -> float:
    """Fill in answered, twice and error replies; the time of the last answer (monotonic)."""
    per_thread: Counter[int] = Counter()
    last = 0.0
    for m in list(slack.messages):
        c = roots.get(str(m.get("thread_ts")))
        if c is None or m.get("channel") != CHANNEL or m.get("deleted"):
            continue
        found = ANSWER.search(m.get("text") or "")
        if found and int(found.group(1)) == c:
            per_thread[c] += 1
            last = max(last, float(m["at"]))
        else:
            result.error_replies += 1
    result.answered = len(per_thread)
    result.twice = sorted(c for c, n in per_thread.items() if n > 1)
    return last


async def run_burst(
    cfg: BurstConfig,
    *,
    database_url: str,
    workdir: Path,
    profile: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> BurstResult:
    """Start the mocks and one Haven process, send the burst, wait for the answers, stop, count."""
    result = BurstResult(cfg, bench_fd_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    with running_mocks(answering_model(cfg.latency, 0)) as (anthropic, slack):
        for u in range(cfg.people or cfg.threads):
            slack.add_user(f"UBURST{u:05d}", f"burst{u}")
        haven = {**haven_env(database_url, slack, anthropic), "HAVEN_OPS_PORT": str(free_port())}
        if cfg.max_turns is not None:
            haven["HAVEN_MAX_CONCURRENT_TURNS"] = str(cfg.max_turns)
        havens = HavenProcesses(1, {**haven, **(env or {})}, workdir, profile)
        try:
            await asyncio.to_thread(havens.migrate)
            havens.start()
            async with aiohttp.ClientSession() as http:
                await havens.wait_healthy(http)
            proc = havens.procs[0]
            await _settled(havens)
            roots, bodies = thread_events(cfg.threads, cfg.people or cfg.threads, int(time.time()) - 100_000)
            requests = [request_bytes(proc.port, body) for body in bodies]
            sender = Sender(proc.port, cfg.connections)
            await sender.open()
            ports = {
                proc.port: "Slack events (clients)",
                port_of(slack.url): "Slack Web API",
                port_of(anthropic.url): "model API",
                make_url(database_url).port or 5432: "PostgreSQL",
            }
            watch = ProcWatch(proc.proc.pid, ports)
            result.fd_before, result.fd_limit = watch.fds(), watch.fd_limit()
            result.rss_before_mb = watch.status_kb("VmRSS") / 1024
            cpu0, bench0 = havens.cpu_seconds()[0], time.process_time()
            with watch:
                deadline = time.monotonic() + cfg.timeout
                started = await sender.burst(requests, deadline)
                result.ack_cpu = havens.cpu_seconds()[0] - cpu0
                await sender.close()
                await _answers(cfg, slack, roots, deadline)
            result.haven_cpu = havens.cpu_seconds()[0] - cpu0
            result.bench_cpu = time.process_time() - bench0
            result.rss_peak_mb = watch.status_kb("VmHWM") / 1024
            result.fd_peak, result.fd_at_peak = watch.fd_peak, watch.at_peak
            result.acks, result.statuses, result.resent = sender.acks, sender.statuses, sender.resent
            result.unacked = result.events - len(sender.acks)
            last = count_answers(slack, roots, result)
            result.wall = max(0.0, last - started)
        finally:
            await asyncio.to_thread(havens.stop)
        result.process_errors = havens.errors()
        result.slack_calls = Counter(c.method for c in slack.calls)
    return result


async def _settled(havens: HavenProcesses, limit: float = 30.0) -> None:
    """Until the process's start-up work is done (it builds the risk detector on a thread after it
    listens): less than 5 % of a CPU over half a second, or ``limit`` s. The burst is meant to meet a
    running process; a burst during start-up would measure the start-up too."""
    deadline = time.monotonic() + limit
    before = havens.cpu_seconds()[0]
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = havens.cpu_seconds()[0]
        if now - before < 0.025:
            return
        before = now


async def _answers(cfg: BurstConfig, slack: MockSlack, roots: dict[str, int], deadline: float) -> None:
    """Until every thread has an answer and Slack saw no call for ``settle`` s, or the deadline."""
    seen, quiet_since, count = -1, time.monotonic(), 0
    while time.monotonic() < deadline:
        calls = len(slack.calls)
        if calls != seen:
            seen, quiet_since = calls, time.monotonic()
        answered = {roots.get(str(m.get("thread_ts"))) for m in list(slack.messages)} - {None}
        count = len(answered)
        if count >= cfg.threads and time.monotonic() - quiet_since >= cfg.settle:
            return
        await asyncio.sleep(0.1)


# -- command line ----------------------------------------------------------------------------------------


async def _main(cfg: BurstConfig, logs: Path | None, profile: Path | None) -> int:
    print(f"machine: {machine()}")
    print(f"starting PostgreSQL, the mocks and one Haven process for {cfg.threads} threads …", flush=True)
    server = await asyncio.to_thread(start_postgres)
    try:
        url = await asyncio.to_thread(server.create_database, "haven_burst")
        with tempfile.TemporaryDirectory(prefix="haven-burst-") as tmp:
            workdir = logs or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            result = await run_burst(cfg, database_url=url, workdir=workdir, profile=profile)
    finally:
        await asyncio.to_thread(server.stop)
    print("\n" + result.table())
    if problems := result.problems():
        print("\n" + problems)
    print(
        "\nresult: "
        + (
            f"every event acknowledged within {SLACK_ACK_SECONDS:g} s, every thread answered once"
            if result.ok
            else "PROBLEMS (see above)"
        )
    )
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1500, help="threads started at once (default 1500)")
    p.add_argument("--latency", type=float, default=1.0, help="the model's answer time in s (default 1.0)")
    p.add_argument("--connections", type=int, default=256, help="keep-alive connections (default 256)")
    p.add_argument("--people", type=int, default=0, help="distinct authors (default: one per thread)")
    p.add_argument("--max-turns", type=int, help="HAVEN_MAX_CONCURRENT_TURNS (default: Haven's)")
    p.add_argument("--timeout", type=float, default=300.0, help="bound for the run itself, in seconds")
    p.add_argument("--logs", type=Path, help="keep the Haven process's log in this directory")
    p.add_argument("--profile", type=Path, help="write a pyinstrument profile of Haven here (.html or text)")
    a = p.parse_args(argv)
    if a.threads < 1 or a.connections < 1:
        p.error("need --threads ≥ 1 and --connections ≥ 1")
    cfg = BurstConfig(
        threads=a.threads,
        latency=a.latency,
        connections=min(a.connections, 2 * a.threads),
        people=a.people,
        max_turns=a.max_turns,
        timeout=a.timeout,
    )
    try:
        logs, profile = (x.resolve() if x else None for x in (a.logs, a.profile))
        return asyncio.run(_main(cfg, logs, profile))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
