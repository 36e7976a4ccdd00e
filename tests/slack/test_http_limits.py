"""Slack HTTP mode under slow and half-open clients: real TCP against the in-process SlackConnector."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.slack import SlackConnector
from adapters.slack import connector as slack_connector
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import MockSlack
from fakes.ports import free_port
from fakes.slack_harness import BOT_TOKEN, SIGNING_SECRET, post_words, signed_headers
from tests.slack.test_connector import eventually, mention_envelope

CAP = 50
HALF_HEAD = b"POST /slack/events HTTP/1.1\r\nHost: haven\r\nContent-Type: appl"


@pytest.fixture
async def server(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[SlackConnector, int]]:
    monkeypatch.setattr(slack_connector, "IDLE_SECONDS", 1.0)
    monkeypatch.setattr(slack_connector, "BODY_SECONDS", 0.5)
    port = free_port()
    settings = make_settings(
        f"sqlite:///{tmp_path}/haven.db",
        anthropic.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_mock.api_url,
        PORT=port,
        HAVEN_HTTP_MAX_CONNECTIONS=CAP,
        HAVEN_SHUTDOWN_SECONDS=1,
    )
    async with services_for(settings) as services:
        connector = SlackConnector(services, host="127.0.0.1")
        await connector.connect()
        try:
            yield connector, port
        finally:
            await connector.disconnect()


def open_connections(connector: SlackConnector) -> int:
    runner = connector._runner
    assert runner is not None and runner.server is not None
    return len(runner.server.connections)


async def stall(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` clients that send half a request head and then nothing."""
    clients = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HALF_HEAD)
        await writer.drain()
        clients.append((reader, writer))
    return clients


async def test_half_open_clients_cannot_keep_out_signed_events_or_the_health_check(
    server: tuple[SlackConnector, int], slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    connector, port = server
    anthropic.enqueue(text("Still answering."))
    stalled = await stall(port, 200)
    await asyncio.sleep(0.1)
    assert open_connections(connector) <= CAP  # the cap holds: the oldest stalled ones made room
    try:
        async with aiohttp.ClientSession() as http:
            body = json.dumps(mention_envelope("1700000400.000001"))
            started = time.monotonic()
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=signed_headers(body)
            ) as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            assert time.monotonic() - started < 1.0
        post = await eventually(lambda: slack_mock.calls_to("chat.postMessage"))
        assert post_words(post[0]) == "Still answering."
        # The stalled clients that were not evicted are dropped after IDLE_SECONDS (a header time-out).
        closed = 0
        for reader, _ in stalled[-10:]:
            async with asyncio.timeout(3):
                closed += (await reader.read()) == b""
        assert closed == 10
        await eventually(lambda: open_connections(connector) == 0, 3)
    finally:
        for _, writer in stalled:
            writer.close()


async def test_a_stalled_body_times_out_and_an_oversized_body_is_refused(
    server: tuple[SlackConnector, int],
) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /slack/events HTTP/1.1\r\nHost: haven\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"type": '
    )
    await writer.drain()
    started = time.monotonic()
    async with asyncio.timeout(3):
        status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 2.0
    writer.close()

    async with aiohttp.ClientSession() as http:
        body = json.dumps({"padding": "x" * (slack_connector.MAX_BODY_BYTES + 10)})
        async with http.post(
            f"http://127.0.0.1:{port}/slack/events", data=body, headers=signed_headers(body)
        ) as resp:
            assert resp.status == 413


async def test_every_connection_busy_refuses_the_newest() -> None:
    """The cap's other branch, on its own: when no connection is idle, the new one is closed."""

    class Handler:
        _request_in_progress = True

    class Transport:
        closed = False

        def close(self) -> None:
            self.closed = True

    class Server:
        def connection_made(self, handler: object, transport: object) -> None: ...
        def connection_lost(self, handler: object, exc: BaseException | None = None) -> None: ...

    cap = slack_connector.ConnectionCap(2)
    fake = Server()
    cap.install(fake)  # type: ignore[arg-type]
    transports = [Transport() for _ in range(3)]
    for t in transports:
        fake.connection_made(Handler(), t)
    assert [t.closed for t in transports] == [False, False, True] and cap.refused == 1
