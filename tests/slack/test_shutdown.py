"""SIGTERM on a real ``haven run`` (Slack HTTP mode, SQLite) while turns are answering.

The process, the mock Slack and the scripted model are bench/load.py's; every message here is a real
signed HTTP request. Durations are short: a 1.5 s model, a shutdown window of a few seconds. Turns that
do not finish within the window are left in the durable inbox (released, not noted), and the next
``haven run`` on the same database answers them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.load import HavenProcesses, haven_env
from fakes.fake_anthropic import FakeAnthropic, delay, text
from fakes.harness import sqlite_copy
from fakes.mock_slack import MockSlack
from fakes.slack_harness import BOT, CHANNEL, SlackHarness, signed_headers

ROOT_TS = "1700000500.000001"
REPLY_TS = "1700000500.000002"


@pytest.fixture
def servers() -> Iterator[tuple[FakeAnthropic, MockSlack]]:
    anthropic = FakeAnthropic().start_in_thread()
    slack = MockSlack().start_in_thread()
    slack.add_user("UALICE001", "alice")
    try:
        yield anthropic, slack
    finally:
        slack.stop_thread()
        anthropic.stop_thread()


async def post(http: aiohttp.ClientSession, port: int, event: dict[str, Any]) -> int:
    body = json.dumps(SlackHarness.envelope(event))
    async with http.post(
        f"http://127.0.0.1:{port}/slack/events", data=body, headers=signed_headers(body)
    ) as resp:
        return resp.status


async def until(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def run_and_terminate(
    tmp_path: Path,
    anthropic: FakeAnthropic,
    slack: MockSlack,
    *,
    env: dict[str, str],
) -> tuple[float, list[str], int]:
    """Start haven, send a mention and a reply queued behind it in the same thread, SIGTERM while the
    first is with the model; returns (seconds from SIGTERM to exit, the thread as shown, status of an
    event sent during the shutdown)."""
    havens = HavenProcesses(1, env, tmp_path)
    try:
        havens.start()
        haven = havens.procs[0]
        async with aiohttp.ClientSession() as http:
            await havens.wait_healthy(http)
            mention = SlackHarness.message(f"<@{BOT}> first", ts=ROOT_TS, kind="app_mention")
            assert await post(http, haven.port, mention) == 200
            await until(lambda: len(anthropic.model_requests()) == 1, 10)
            reply = SlackHarness.message("second", ts=REPLY_TS, thread_ts=ROOT_TS)
            assert await post(http, haven.port, reply) == 200
            await asyncio.sleep(0.3)  # the reply is now waiting for the thread
            assert len(anthropic.model_requests()) == 1

            haven.proc.send_signal(signal.SIGTERM)
            terminated = time.monotonic()
            await until(lambda: "shutdown: turns get a deadline" in haven.log.read_text(), 5)
            late = SlackHarness.message(f"<@{BOT}> too late", ts="1700000600.000001", kind="app_mention")
            refused = await post(http, haven.port, late)
            await asyncio.to_thread(haven.proc.wait, 30)
            took = time.monotonic() - terminated
        assert haven.proc.returncode == 0, haven.log.read_text()[-3000:]
        return took, [m["text"] for m in slack.thread(CHANNEL, ROOT_TS)], refused
    finally:
        await asyncio.to_thread(havens.stop)


def shutdown_env(
    migrated: Path, tmp_path: Path, anthropic: FakeAnthropic, slack: MockSlack, seconds: float
) -> dict[str, str]:
    """Haven's environment on a copy of the ``migrated`` database (one process: no race to migrate)."""
    env = haven_env(sqlite_copy(migrated, tmp_path), slack, anthropic)
    env.update(HAVEN_SHUTDOWN_SECONDS=str(seconds), HAVEN_LOG_LEVEL="INFO", HAVEN_STREAM="false")
    return env


async def test_sigterm_lets_the_running_turn_and_the_one_queued_behind_it_finish(
    migrated_sqlite: Path, tmp_path: Path, servers: tuple[FakeAnthropic, MockSlack]
) -> None:
    anthropic, slack = servers
    anthropic.enqueue(delay(1.5, text("First answer.")), delay(1.5, text("Second answer.")))
    env = shutdown_env(migrated_sqlite, tmp_path, anthropic, slack, 5)
    took, shown, refused = await run_and_terminate(tmp_path, anthropic, slack, env=env)
    assert shown == ["First answer.", "Second answer."]
    assert refused == 503  # new work during the shutdown goes back to Slack, which delivers it again
    assert len(anthropic.model_requests()) == 2  # the refused event never reached the model
    # Both turns finished (the rest of the first's 1.5 s and the second's, about 2.7 s) and the process
    # exited then: the 5 s window is not waited out.
    assert 2.0 < took < 7.0


def last_user_words(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return json.dumps(users[-1]) if users else ""


async def test_turns_slower_than_the_shutdown_window_are_answered_by_the_next_process_once_in_order(
    migrated_sqlite: Path, tmp_path: Path, servers: tuple[FakeAnthropic, MockSlack]
) -> None:
    anthropic, slack = servers
    slow = True

    def answer(body: dict[str, Any]) -> Any:
        words = "First answer." if "first" in last_user_words(body) else "Second answer."
        return delay(30.0, text(words)) if slow else text(words)

    anthropic.responder = answer
    env = shutdown_env(migrated_sqlite, tmp_path, anthropic, slack, 2)
    took, shown, refused = await run_and_terminate(tmp_path, anthropic, slack, env=env)
    # Neither the running turn nor the one queued behind it is answered or noted: both stay in the inbox.
    assert shown == []
    assert refused == 503
    assert 1.5 < took < 7.0

    slow = False
    restart = tmp_path / "restart"
    restart.mkdir()
    havens = HavenProcesses(1, env, restart)  # a second haven run on the same database
    try:
        havens.start()
        async with aiohttp.ClientSession() as http:
            await havens.wait_healthy(http)

        def thread() -> list[str]:
            return [m["text"] for m in slack.thread(CHANNEL, ROOT_TS)]

        await until(lambda: len(thread()) >= 2, 20)
        await asyncio.sleep(1.0)  # a second answer to either would show by now
        assert thread() == ["First answer.", "Second answer."]
        assert "inbox entry recovered" in havens.procs[0].log.read_text()
    finally:
        await asyncio.to_thread(havens.stop)
