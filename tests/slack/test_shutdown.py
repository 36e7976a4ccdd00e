"""SIGTERM on a real ``haven run`` (Slack HTTP mode, SQLite) while turns are answering.

The process, the mock Slack and the scripted model are bench/load.py's; every message here is a real
signed HTTP request. Durations are short: a 3 s model, a shutdown window of a few seconds.
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
from bot.admission import RESTARTING_NOTE
from fakes.fake_anthropic import FakeAnthropic, delay, text
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
    shutdown_seconds: float,
) -> tuple[float, list[str], int]:
    """Start haven, send a mention and a reply queued behind it in the same thread, SIGTERM while the
    first is with the model; returns (seconds from SIGTERM to exit, the thread as shown, status of an
    event sent during the shutdown)."""
    env = haven_env(f"sqlite:///{tmp_path}/haven.db", slack, anthropic)
    env.update(
        HAVEN_SHUTDOWN_SECONDS=str(shutdown_seconds),
        HAVEN_LOG_LEVEL="INFO",
        HAVEN_STREAM="false",
    )
    havens = HavenProcesses(1, env, tmp_path)
    try:
        await asyncio.to_thread(havens.migrate)
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


async def test_sigterm_lets_the_running_turn_and_the_one_queued_behind_it_finish(
    tmp_path: Path, servers: tuple[FakeAnthropic, MockSlack]
) -> None:
    anthropic, slack = servers
    anthropic.enqueue(delay(3.0, text("First answer.")), delay(3.0, text("Second answer.")))
    took, shown, refused = await run_and_terminate(tmp_path, anthropic, slack, shutdown_seconds=8)
    assert shown == ["First answer.", "Second answer."]
    assert refused == 503  # new work during the shutdown goes back to Slack, which delivers it again
    assert len(anthropic.model_requests()) == 2  # the refused event never reached the model
    assert 5.0 < took < 8.0


async def test_a_turn_slower_than_the_shutdown_window_gets_the_restart_note_not_silence(
    tmp_path: Path, servers: tuple[FakeAnthropic, MockSlack]
) -> None:
    anthropic, slack = servers
    anthropic.enqueue(delay(30.0, text("Never finished.")), delay(30.0, text("Never started.")))
    took, shown, refused = await run_and_terminate(tmp_path, anthropic, slack, shutdown_seconds=2)
    # Both the running turn and the one queued behind it are told, in the thread, to send again.
    assert shown == [RESTARTING_NOTE, RESTARTING_NOTE]
    assert refused == 503
    assert 1.5 < took < 6.0
