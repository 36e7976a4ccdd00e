"""The ops endpoint (``bot.ops``), in-process, wired the way ``haven run`` wires it (``bot.cli``): real
services and connectors against the mock Slack (HTTP and Socket Mode) and the fake Discord gateway, the
fake Anthropic API, and a real PostgreSQL that is stopped and started again under ``/readyz``.

Also: ``/metrics`` parses with prometheus_client's own parser and counts a turn; DEBUG reaches library
loggers; JSON log timestamps are UTC with milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import Route
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Services, build_model, initialize
from bot.config import Settings, configure_logging
from bot.connectors import build_connectors
from bot.logs import JsonFormatter
from bot.metrics import MeteredModel, Metrics, ModelHealth
from bot.model import ModelError, ModelReply, ModelRequest
from bot.ops import OpsServer, ops_server
from bot.ports import Connector
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.fake_discord import FakeDiscord
from fakes.harness import make_settings
from fakes.mock_slack import MockSlack
from fakes.ports import free_port
from fakes.postgres import PostgresServer
from fakes.slack_harness import ALICE, BOT, BOT_TOKEN, SIGNING_SECRET, SlackHarness
from tests.test_cli import logging_restored  # noqa: F401 (a fixture)


@pytest.fixture
async def slack() -> AsyncIterator[MockSlack]:
    async with MockSlack() as mock:
        mock.add_user(ALICE, "alice")
        yield mock


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default=text("Hello from the ops test.")) as server:
        yield server


@pytest.fixture
def pg(postgres_server: PostgresServer) -> tuple[PostgresServer, str]:
    return postgres_server, postgres_server.create_database()


class OpsClient:
    """Asks an ops endpoint over HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.base + path) as resp:
            return resp.status, await resp.text()

    async def ready(self) -> tuple[int, dict[str, Any]]:
        status, body = await self.get("/readyz")
        return status, json.loads(body)

    async def until_ready(self, expected: int, seconds: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            status, body = await self.ready()
            if status == expected or time.monotonic() > deadline:
                assert status == expected, body
                return body
            await asyncio.sleep(0.1)

    async def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = await self.get("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }


class Ops(OpsClient):
    """An in-process ``haven run``: its ops server, services, metrics and connectors."""

    def __init__(
        self, server: OpsServer, services: Services, metrics: Metrics, connectors: Sequence[Connector]
    ) -> None:
        super().__init__(f"http://127.0.0.1:{server.port}")
        self.server, self.services, self.metrics, self.connectors = server, services, metrics, connectors


@asynccontextmanager
async def running(settings: Settings, **connector_options: Any) -> AsyncIterator[Ops]:
    """What ``haven run`` does (``bot.cli._dispatch``), with the ops server on a free local port."""
    metrics = Metrics(slow_turn_seconds=settings.slow_turn_seconds)
    services = await initialize(settings, model=MeteredModel(build_model(settings), metrics))
    services.engine.metrics = metrics
    connectors: Sequence[Connector] = build_connectors(services)
    for c in connectors:
        for name, value in connector_options.get(c.name, {}).items():
            setattr(c, name, value)
    server = ops_server(settings, services, connectors, metrics, port=0)
    listening: list[asyncio.Task[None]] = []
    try:
        assert await server.start()
        ops = Ops(server, services, metrics, connectors)
        # Up before the connectors: alive, not ready.
        assert (await ops.get("/healthz"))[0] == 200
        status, body = await ops.ready()
        assert status == 503 and set(body["failing"]) == {c.name for c in connectors}, body
        for c in connectors:
            await c.connect()
            listening.append(asyncio.create_task(c.listen()))
        yield ops
    finally:
        await asyncio.gather(*(c.disconnect() for c in connectors), return_exceptions=True)
        for t in listening:
            t.cancel()
        await asyncio.gather(*listening, return_exceptions=True)
        await server.stop()
        await services.aclose()


async def readyz_follows_postgresql(ops: Ops, postgres: PostgresServer, platform: str) -> None:
    body = await ops.until_ready(200)
    assert body == {"ok": True, "checks": {"database": "ok", platform: "ok", "model": "ok"}}
    postgres.shutdown()
    try:
        started = time.monotonic()
        body = await ops.until_ready(503)
        assert time.monotonic() - started < 5
        assert body["failing"] == ["database"] and body["checks"][platform] == "ok", body
        assert (await ops.get("/healthz"))[0] == 200  # alive all the same
        samples = await ops.samples()
        assert samples[("haven_ready", (("check", "database"),))] == 0.0
    finally:
        postgres.start()
    await ops.until_ready(200)


def base_settings(url: str, anthropic: FakeAnthropic, **overrides: Any) -> Settings:
    return make_settings(url, anthropic.url, HAVEN_BIND_ADDRESS="127.0.0.1", **overrides)


# -- /readyz and PostgreSQL, one test per mode ------------------------------------------------------


@pytest.mark.postgres
async def test_readyz_follows_postgresql_in_slack_http_mode(
    pg: tuple[PostgresServer, str], slack: MockSlack, anthropic: FakeAnthropic
) -> None:
    postgres, url = pg
    port = free_port()
    settings = base_settings(
        url,
        anthropic,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=port,
    )
    async with running(settings) as ops:
        await readyz_follows_postgresql(ops, postgres, "slack")
        # Slack's own port keeps answering /healthz; the ops routes live on the ops port only.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 404


@pytest.mark.postgres
async def test_readyz_follows_postgresql_in_slack_socket_mode(
    pg: tuple[PostgresServer, str], slack: MockSlack, anthropic: FakeAnthropic
) -> None:
    postgres, url = pg
    settings = base_settings(
        url,
        anthropic,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-1-A0-test",
        SLACK_API_URL=slack.api_url,
    )
    async with running(settings) as ops:
        await slack.wait_connected()
        await readyz_follows_postgresql(ops, postgres, "slack")


@pytest.mark.postgres
async def test_readyz_follows_postgresql_in_discord_mode(
    pg: tuple[PostgresServer, str], anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    postgres, url = pg
    async with FakeDiscord() as api:
        api.add_guild("Guild A")
        settings = base_settings(url, anthropic, DISCORD_TOKEN=api.token)
        options = {"discord": {"_guild_ready_timeout": 0.01}}
        async with running(settings, **options) as ops:
            await readyz_follows_postgresql(ops, postgres, "discord")
            assert api.connected >= 1


# -- /metrics -----------------------------------------------------------------------------------------


async def test_metrics_parse_and_count_a_turn(
    tmp_path: Path, slack: MockSlack, anthropic: FakeAnthropic
) -> None:
    settings = base_settings(
        f"sqlite:///{tmp_path}/haven.db",
        anthropic,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-1-A0-test",
        SLACK_API_URL=slack.api_url,
    )
    async with running(settings) as ops:
        await slack.wait_connected()
        before = await ops.samples()
        assert not [k for k in before if k[0] == "haven_turns_total"]
        assert before[("haven_turns_in_flight", ())] == 0.0
        assert before[("haven_inbox_pending", ())] == 0.0

        event = SlackHarness.message(f"<@{BOT}> hello", ts="1700000300.000001", kind="app_mention")
        await slack.wait_ack(await slack.push("events_api", SlackHarness.envelope(event)))
        # The process's first turn builds the detectors and imports the Anthropic SDK (seconds of CPU, more
        # on a busy machine): both happen on first use, not at start-up.
        await until(
            lambda: slack.calls_to("chat.postMessage") or slack.calls_to("chat.startStream"), seconds=30
        )

        async def counted() -> dict[Any, float]:
            deadline = time.monotonic() + 10
            while True:
                samples = await ops.samples()
                if samples.get(("haven_turns_total", (("outcome", "replied"), ("platform", "slack")))):
                    return samples
                assert time.monotonic() < deadline, "no turn counted"
                await asyncio.sleep(0.05)

        samples = await counted()
        assert samples[("haven_turns_total", (("outcome", "replied"), ("platform", "slack")))] == 1.0
        assert samples[("haven_turn_seconds_count", (("platform", "slack"),))] == 1.0
        assert samples[("haven_model_call_seconds_count", (("call", "respond"), ("outcome", "ok")))] >= 1.0
        assert samples[("haven_model_tokens_total", (("kind", "output"),))] > 0
        assert samples[("haven_scheduler_leader", ())] == 0.0  # no scheduler in this test


async def until(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_engine_sink_counts_decisions_endings_slow_turns_and_platform_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics(slow_turn_seconds=1.0)
    metrics.decision("VETO_RISK", "abuse")
    metrics.decision("HOLD_WARN", "abuse")
    metrics.ending("abuse")
    metrics.platform_error("slack", "chat.postMessage", "rate_limited")
    with caplog.at_level(logging.WARNING, logger="bot.metrics"):
        metrics.turn("discord", "replied", 0.2)
        metrics.turn("discord", "error", 2.5)
    [slow] = [r for r in caplog.records if r.getMessage() == "turn ran long"]
    assert slow.__dict__["seconds"] == 2.5 and slow.__dict__["platform"] == "discord"
    reg = metrics.registry
    assert reg.get_sample_value("haven_vetoes_total", {"reason": "abuse"}) == 1.0
    assert (
        reg.get_sample_value("haven_ending_decisions_total", {"verdict": "HOLD_WARN", "reason": "abuse"}) == 1
    )
    assert reg.get_sample_value("haven_endings_total", {"reason": "abuse"}) == 1.0
    labels = {"platform": "slack", "method": "chat.postMessage", "kind": "rate_limited"}
    assert reg.get_sample_value("haven_platform_api_errors_total", labels) == 1.0
    assert reg.get_sample_value("haven_slow_turns_total", {"platform": "discord"}) == 1.0


async def test_slack_api_errors_are_counted_by_method(
    tmp_path: Path, slack: MockSlack, anthropic: FakeAnthropic
) -> None:
    settings = base_settings(
        f"sqlite:///{tmp_path}/haven.db",
        anthropic,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=free_port(),
    )
    async with running(settings) as ops:
        slack.fail_http("users.info", 503, times=1)
        slack.fail("chat.getPermalink", "channel_not_found")
        [connector] = ops.connectors
        web = connector.bot.app.client  # type: ignore[attr-defined]  # the connector's own Web API client
        await web.users_info(user=ALICE)
        with pytest.raises(Exception, match="channel_not_found"):
            await web.chat_getPermalink(channel="C1", message_ts="1.1")
        reg = ops.metrics.registry
        errors = "haven_platform_api_errors_total"
        assert reg.get_sample_value(errors, {"platform": "slack", "method": "users.info", "kind": "503"}) == 1
        kind = {"platform": "slack", "method": "chat.getPermalink", "kind": "channel_not_found"}
        assert reg.get_sample_value(errors, kind) == 1


async def test_discord_api_errors_are_counted_by_route_without_ids(
    tmp_path: Path, anthropic: FakeAnthropic
) -> None:
    async with FakeDiscord() as api:
        guild = api.add_guild("Guild A")
        settings = base_settings(f"sqlite:///{tmp_path}/haven.db", anthropic, DISCORD_TOKEN=api.token)
        options = {"discord": {"_guild_ready_timeout": 0.01}}
        async with running(settings, **options) as ops:
            [connector] = ops.connectors
            http = connector.client.http  # type: ignore[attr-defined]  # the connector's own REST client
            api.fail_next("GET", r"/guilds/\d+", 403)
            with pytest.raises(discord.Forbidden):
                await http.request(Route("GET", "/guilds/{guild_id}", guild_id=guild.id))
            reg = ops.metrics.registry
            errors = "haven_platform_api_errors_total"
            labels = {"platform": "discord", "method": "GET /guilds/{guild_id}", "kind": "403"}
            assert reg.get_sample_value(errors, labels) == 1
            exposed = generate_latest(reg).decode()
            assert "haven_platform_api_errors_total" in exposed and str(guild.id) not in exposed


async def test_model_reachability_follows_the_latest_calls() -> None:
    now = [1000.0]
    health = ModelHealth(clock=lambda: now[0])
    assert health.reachable(300)  # not tried yet
    health.failed()
    assert not health.reachable(300)  # failed, never answered
    health.succeeded()
    now[0] += 1000
    assert health.reachable(300)  # the latest call answered; an idle process stays ready
    health.failed()
    assert not health.reachable(300)  # the latest failed and no answer within the window
    now[0] += 1
    health.succeeded()
    health.failed()
    assert health.reachable(300)  # a failure right after an answer: still within the window

    class Broken:
        rehearsal = False

        async def respond(self, request: ModelRequest, sink: Any = None) -> ModelReply:
            raise ModelError("overloaded after retries")

        async def aclose(self) -> None:
            pass

    metrics = Metrics()
    model = MeteredModel(Broken(), metrics)  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        await model.respond(ModelRequest([], [], [], 10))
    assert not metrics.model_health.reachable(300)
    labels = {"call": "respond", "outcome": "error"}
    assert metrics.registry.get_sample_value("haven_model_call_seconds_count", labels) == 1.0


async def test_an_ops_port_in_use_is_a_warning_not_a_stop(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    first = OpsServer(None, metrics, host="127.0.0.1", port=0)  # type: ignore[arg-type]
    assert await first.start()
    try:
        second = OpsServer(None, metrics, host="127.0.0.1", port=first.port)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, logger="bot.ops"):
            assert not await second.start()
        assert any("HAVEN_OPS_PORT" in r.getMessage() for r in caplog.records)
        await second.stop()
    finally:
        await first.stop()


# -- logging ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("logging_restored")
def test_debug_reaches_library_loggers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/haven.db"
    configure_logging(make_settings(url, HAVEN_LOG_LEVEL="DEBUG"))
    for name in ("slack_sdk", "discord", "anthropic", "httpx", "aiohttp.access", "apscheduler"):
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    configure_logging(make_settings(url, HAVEN_LOG_LEVEL="INFO"))
    assert not logging.getLogger("slack_sdk").isEnabledFor(logging.INFO)  # still capped below DEBUG
    assert logging.getLogger("bot").isEnabledFor(logging.INFO)


def test_json_timestamps_are_utc_with_milliseconds() -> None:
    record = logging.makeLogRecord({"msg": "turn handled", "levelname": "INFO", "name": "bot.engine"})
    record.created = datetime(2026, 12, 2, 4, 33, 10, 123456, tzinfo=UTC).timestamp()
    data = json.loads(JsonFormatter().format(record))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|\+00:00)", data["ts"]), data["ts"]
    assert data["ts"] == "2026-12-02T04:33:10.123Z"
    assert datetime.fromisoformat(data["ts"]) == datetime(2026, 12, 2, 4, 33, 10, 123000, tzinfo=UTC)


# -- a real `haven run` -------------------------------------------------------------------------------


@dataclass
class RealHaven:
    proc: subprocess.Popen[bytes]
    ops: OpsClient
    slack: MockSlack
    log: Path


@pytest.fixture
def real_haven(tmp_path: Path) -> Iterator[RealHaven]:
    """`python -m bot run` in Socket Mode with JSON logs and the ops port on a free local port."""
    anthropic = FakeAnthropic(default=text("Hello from a real process.")).start_in_thread()
    slack = MockSlack().start_in_thread()
    slack.add_user(ALICE, "alice")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ANTHROPIC_", "DISCORD_", "HAVEN_", "DATABASE_URL", "PORT"))
    }
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-1-A0-test",
        SLACK_API_URL=slack.api_url,
        ANTHROPIC_BASE_URL=anthropic.url,
        ANTHROPIC_API_KEY="sk-ant-test-key",
        DATABASE_URL=f"sqlite:///{tmp_path}/haven.db",
        HAVEN_RETRY_BASE_SECONDS="0",
        HAVEN_OPS_PORT=str(port),
        HAVEN_BIND_ADDRESS="127.0.0.1",
        HAVEN_LOG_FORMAT="json",
    )
    log_path = tmp_path / "haven.log"
    ops = OpsClient(f"http://127.0.0.1:{port}")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield RealHaven(proc, ops, slack, log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            slack.stop_thread()
            anthropic.stop_thread()


async def test_haven_run_in_socket_mode_serves_the_ops_endpoint(real_haven: RealHaven) -> None:
    """The wiring of ``bot.cli``: Socket Mode has no HTTP server of Slack's, yet the ops port answers,
    with the scheduler's leadership and a turn on /metrics; JSON logs carry UTC milliseconds."""
    ops, slack, log_path = real_haven.ops, real_haven.slack, real_haven.log
    deadline = time.monotonic() + 60
    while True:
        assert real_haven.proc.poll() is None, log_path.read_text()
        with contextlib.suppress(aiohttp.ClientError):
            if (await ops.ready())[0] == 200:
                break
        assert time.monotonic() < deadline, log_path.read_text()
        await asyncio.sleep(0.1)
    event = SlackHarness.message(f"<@{BOT}> hello", ts="1700000400.000001", kind="app_mention")
    loop = slack._loop
    assert loop is not None
    pushed = asyncio.run_coroutine_threadsafe(slack.push("events_api", SlackHarness.envelope(event)), loop)
    await asyncio.wrap_future(pushed)
    await until(lambda: slack.calls_to("chat.postMessage") or slack.calls_to("chat.startStream"), 20)
    deadline = time.monotonic() + 20
    while True:
        samples = await ops.samples()
        if samples.get(("haven_turns_total", (("outcome", "replied"), ("platform", "slack")))) == 1.0:
            break
        assert time.monotonic() < deadline, samples
        await asyncio.sleep(0.1)
    assert samples[("haven_scheduler_leader", ())] == 1.0
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    stamps = [json.loads(line)["ts"] for line in lines]
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps), stamps
