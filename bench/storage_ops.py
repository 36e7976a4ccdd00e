"""Per-operation storage latency and the full engine turn, on SQLite and on PostgreSQL.

Run from the repository root::

    .venv/bin/python -m bench.storage_ops            # both databases
    .venv/bin/python -m bench.storage_ops --only sqlite --iterations 500

Every figure is wall time of one awaited call on an otherwise idle event loop, in microseconds. The
engine turn uses ``bench.common.InstantModel`` (no network, no model latency), so it measures everything
Haven does per turn except the model: dedupe, locks, storage, context building. "turn @ L" is measured
on the turns around number L of one conversation (L - k/2 .. L + k/2 - 1); "turn @ 1" is the first turn
of a fresh conversation each time. "of which storage" adds up the time the turn spent awaiting the
repository (its calls and the conversation lock); the rest is the engine's own work (risk detection,
building the request, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import InstantModel, machine, pct, table
from bot.app import initialize
from bot.types import (
    Author,
    IncomingMessage,
    NewMessage,
    Origin,
    StateChange,
    ThreadRef,
    TurnStatus,
    UsageRecord,
    WorkspaceSettings,
)
from fakes.harness import make_settings
from storage.db import open_database, upgrade
from storage.repository import Repository

USER_TEXT = "I have been thinking about how to structure my week so that I get more done. " * 3
ASSISTANT_TEXT = "Here are a few ideas that might help you plan the week ahead. " * 10
ALICE = Author("U1", "Alice")
HISTORY_SIZES = (10, 100, 400)
TURN_LENGTHS = (1, 50, 200)

Row = tuple[str, int, float, float]


def user_message(n: int) -> NewMessage:
    text = f"{USER_TEXT} ({n})"
    return NewMessage(
        "user", "text", ({"type": "text", "text": f"[Ann] {text}"},), "U1", "Ann", f"m{n}", text
    )


def assistant_message() -> NewMessage:
    return NewMessage("assistant", "text", ({"type": "text", "text": ASSISTANT_TEXT},))


async def timed(samples: list[float], call: Callable[[], Awaitable[Any]]) -> Any:
    t0 = time.perf_counter_ns()
    result = await call()
    samples.append((time.perf_counter_ns() - t0) / 1000)
    return result


def row(name: str, samples: list[float]) -> Row:
    return (name, len(samples), pct(samples, 50), pct(samples, 99))


async def repository_ops(url: str, iterations: int) -> list[Row]:
    await upgrade(url)
    repo = Repository(open_database(url))
    try:
        await repo.save_settings(WorkspaceSettings("slack", "T1", alert_channel="C9", admin_users=("U7",)))
        usage = [UsageRecord("instant", 10, 0, 0, 4)]
        # Conversations with a given number of stored messages (one user + one assistant per turn).
        sized: dict[int, str] = {}
        for size in HISTORY_SIZES:
            thread = ThreadRef("slack", "T1", "C1", f"h{size}")
            for i in range(size // 2):
                began = await repo.begin_turn(thread, f"h{size}-{i}", user_message(i), create=True)
                assert began.conversation is not None
                await repo.finish_turn(
                    began.conversation.id, "T1", [assistant_message()], StateChange(), (), usage
                )
                sized[size] = began.conversation.id

        find: list[float] = []
        settings: list[float] = []
        begin: list[float] = []
        finish: list[float] = []
        history: dict[int, list[float]] = {size: [] for size in HISTORY_SIZES}
        known = ThreadRef("slack", "T1", "C1", "h10")
        turns = ThreadRef("slack", "T1", "C1", "turns")
        warmup = 10
        for i in range(iterations + warmup):
            keep = i >= warmup
            f: list[float] = []
            # Samples go to a scratch list during warm-up.
            await timed(find if keep else f, lambda: repo.find_conversation(known))
            await timed(settings if keep else f, lambda: repo.get_settings("slack", "T1"))
            for size, cid in sized.items():
                await timed(history[size] if keep else f, functools.partial(repo.history, cid, "T1"))
            began = await timed(
                begin if keep else f,
                functools.partial(repo.begin_turn, turns, f"t{i}", user_message(i), create=True),
            )
            assert began.conversation is not None
            await timed(
                finish if keep else f,
                functools.partial(
                    repo.finish_turn,
                    began.conversation.id,
                    "T1",
                    [assistant_message()],
                    StateChange(warnings=0),
                    (),
                    usage,
                ),
            )
        return [
            row("find_conversation", find),
            row("get_settings", settings),
            *(row(f"history ({size} messages)", history[size]) for size in HISTORY_SIZES),
            row("begin_turn", begin),
            row("finish_turn", finish),
        ]
    finally:
        await repo.close()


def message(thread: ThreadRef, n: int, *, start: bool) -> IncomingMessage:
    return IncomingMessage(
        thread,
        ALICE,
        f"{USER_TEXT} ({n})",
        message_id=f"{thread.thread}.{n}",
        origin=Origin.MENTION if start else Origin.THREAD_REPLY,
    )


class StorageClock:
    """Wraps a repository's per-turn methods (and its conversation lock) to add up the time in them."""

    METHODS = ("find_conversation", "begin_turn", "get_settings", "history", "finish_turn")

    def __init__(self, repo: Repository) -> None:
        self.ns = 0
        for name in self.METHODS:
            setattr(repo, name, self._timed(getattr(repo, name)))
        lock = repo.conversation_lock

        @contextlib.asynccontextmanager
        async def conversation_lock(key: str) -> AsyncIterator[None]:
            cm = lock(key)
            t0 = time.perf_counter_ns()
            await cm.__aenter__()
            self.ns += time.perf_counter_ns() - t0
            try:
                yield
            finally:
                t0 = time.perf_counter_ns()
                await cm.__aexit__(None, None, None)
                self.ns += time.perf_counter_ns() - t0

        repo.conversation_lock = conversation_lock  # type: ignore[method-assign]

    def _timed(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed_method(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return await method(*args, **kwargs)
            finally:
                self.ns += time.perf_counter_ns() - t0

        return timed_method

    def take_us(self) -> float:
        ns, self.ns = self.ns, 0
        return ns / 1000


async def engine_turns(url: str, iterations: int, window: int) -> list[Row]:
    services = await initialize(make_settings(url), model=InstantModel())
    engine = services.engine
    clock = StorageClock(services.repo)
    rows: list[Row] = []
    try:

        async def turn(
            thread: ThreadRef, n: int, samples: list[float] | None, storage: list[float] | None
        ) -> None:
            msg = message(thread, n, start=n == 1)
            clock.take_us()
            t0 = time.perf_counter_ns()
            result = await engine.handle_message(msg)
            if samples is not None and storage is not None:
                samples.append((time.perf_counter_ns() - t0) / 1000)
                storage.append(clock.take_us())
            assert result.status is TurnStatus.REPLIED, result

        for w in range(5):  # warm up caches, compiled statements, pool
            await turn(ThreadRef("slack", "T1", "C1", f"warm{w}"), 1, None, None)
        for length in TURN_LENGTHS:
            samples: list[float] = []
            storage: list[float] = []
            if length == 1:
                for i in range(iterations):
                    await turn(ThreadRef("slack", "T1", "C2", f"fresh{i}"), 1, samples, storage)
            else:
                thread = ThreadRef("slack", "T1", "C3", f"len{length}")
                first = max(1, length - window // 2)
                for n in range(1, first):
                    await turn(thread, n, None, None)
                for n in range(first, first + window):
                    await turn(thread, n, samples, storage)
            rows.append(row(f"engine turn @ {length}", samples))
            rows.append(row(f"  of which storage @ {length}", storage))
    finally:
        await services.aclose()
    return rows


async def run_backend(name: str, urls: Callable[[str], str], iterations: int, window: int) -> list[Row]:
    t0 = time.perf_counter()
    rows = await repository_ops(urls("ops"), iterations)
    rows += await engine_turns(urls("engine"), iterations, window)
    print(f"{name}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--iterations", type=int, default=200, help="samples per repository op")
    parser.add_argument("--window", type=int, default=40, help="engine turns measured per length")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    results: dict[str, list[Row]] = {}
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="haven-bench-") as tmp:
            results["sqlite"] = asyncio.run(
                run_backend("sqlite", lambda db: f"sqlite:///{tmp}/{db}.db", args.iterations, args.window)
            )
    if args.only in (None, "postgresql"):
        from fakes.postgres import start_postgres

        server = start_postgres()
        try:
            results["postgresql"] = asyncio.run(
                run_backend(
                    "postgresql",
                    lambda db: server.create_database(f"bench_{db}"),
                    args.iterations,
                    args.window,
                )
            )
        finally:
            server.stop()
    for backend, rows in results.items():
        print(f"\n{backend}")
        print(table(("operation", "n", "p50 µs", "p99 µs"), rows))


if __name__ == "__main__":
    main()
