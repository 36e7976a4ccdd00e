"""Black box: `python -m bot run` in HTTP mode as a subprocess, driven over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from fakes.fake_anthropic import FakeAnthropic, text
from fakes.mock_slack import MockSlack
from fakes.ports import free_port
from fakes.slack_harness import (
    ALICE,
    BOT,
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    SlackHarness,
    post_words,
    signed_headers,
)

SECRET_WORDS = "my very private question about the quarterly plan"


@pytest.fixture
def servers() -> Iterator[tuple[FakeAnthropic, MockSlack]]:
    anthropic = FakeAnthropic(default=text("Hello from the black box.")).start_in_thread()
    slack = MockSlack().start_in_thread()
    slack.add_user(ALICE, "alice")
    try:
        yield anthropic, slack
    finally:
        slack.stop_thread()
        anthropic.stop_thread()


async def _wait_until_up(proc: subprocess.Popen[bytes], port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"haven run exited early with {proc.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("haven run did not start listening in time")


async def _eventually_posts(slack: MockSlack, n: int, seconds: float = 20.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        posts = slack.calls_to("chat.postMessage")
        if len(posts) >= n:
            return posts
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {n} chat.postMessage calls, got {slack.calls_to('chat.postMessage')}")


@dataclass
class Haven:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


@pytest.fixture
def haven(tmp_path: Path, servers: tuple[FakeAnthropic, MockSlack]) -> Iterator[Haven]:
    """`python -m bot run` in HTTP mode; always terminated, whatever the test did."""
    anthropic, slack = servers
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ANTHROPIC_", "DISCORD_", "HAVEN_", "DATABASE_URL", "PORT"))
    }
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=str(port),
        ANTHROPIC_BASE_URL=anthropic.url,
        ANTHROPIC_API_KEY="sk-ant-test-key",
        DATABASE_URL=f"sqlite:///{tmp_path}/haven.db",
        HAVEN_RETRY_BASE_SECONDS="0",
        HAVEN_LOG_LEVEL="INFO",
    )
    log_path = tmp_path / "haven.log"
    with log_path.open("wb") as log:
        # cwd=tmp_path keeps a developer's .env out of the run.
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield Haven(proc, port, log_path)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


async def test_haven_run_serves_slack_over_http(
    haven: Haven, servers: tuple[FakeAnthropic, MockSlack]
) -> None:
    anthropic, slack = servers
    proc, port = haven.proc, haven.port
    await _wait_until_up(proc, port)
    url = f"http://127.0.0.1:{port}/slack/events"
    root = "1700000400.000001"
    envelope = SlackHarness.envelope(
        SlackHarness.message(f"<@{BOT}> {SECRET_WORDS}", ts=root, kind="app_mention")
    )
    copy = SlackHarness.envelope(SlackHarness.message(f"<@{BOT}> {SECRET_WORDS}", ts=root))
    async with aiohttp.ClientSession() as http:
        for payload, retry in ((envelope, None), (copy, None), (envelope, 1), (envelope, 2)):
            body = json.dumps(payload)
            async with http.post(url, data=body, headers=signed_headers(body, retry=retry)) as resp:
                assert resp.status == 200
        body = json.dumps(envelope)
        forged = signed_headers(body, secret="not-the-secret")
        async with http.post(url, data=body, headers=forged) as resp:
            assert resp.status == 401
        unknown = json.dumps(SlackHarness.envelope({"type": "reaction_added", "text": SECRET_WORDS}))
        async with http.post(url, data=unknown, headers=signed_headers(unknown)) as resp:
            assert resp.status == 404

        [post] = await _eventually_posts(slack, 1)
        assert post["channel"] == CHANNEL
        assert post["thread_ts"] == root
        assert post_words(post) == "Hello from the black box."

        # A reply in the thread, without a mention, continues the conversation.
        anthropic.default = text("Second answer.")
        reply = SlackHarness.envelope(
            SlackHarness.message("and one more thing", ts="1700000400.000002", thread_ts=root)
        )
        body = json.dumps(reply)
        async with http.post(url, data=body, headers=signed_headers(body)) as resp:
            assert resp.status == 200
        posts = await _eventually_posts(slack, 2)
        assert posts[1]["thread_ts"] == root and post_words(posts[1]) == "Second answer."

    await asyncio.sleep(0.3)  # no late duplicate
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert len([r for r in anthropic.model_requests() if not r.get("tool_choice")]) == 2
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0
    output = haven.log.read_text(errors="replace")
    assert "slack connected" in output
    assert SECRET_WORDS not in output  # no message text in the logs
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output
