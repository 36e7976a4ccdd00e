"""Optional OpenTelemetry tracing: the environment switches it on, a turn is one span with ids and no
words, and the Anthropic SDK's call spans nest under it — checked at the wire with a local OTLP/HTTP
collector and the scripted Messages API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.engine import Engine
from bot.ports import StartupError
from bot.tracing import start_tracing, wanted_exporter
from bot.types import Author, IncomingMessage, Origin, ThreadRef, TurnStatus
from fakes import MemoryStore, ScriptedModel
from fakes.fake_anthropic import FakeAnthropic, Reply
from fakes.serving import InThread, serve

WORDS = "PRIVATE-WORDS please help me plan my week"
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, None, id="nothing-set"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp", id="endpoint"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"}, "otlp", id="traces-endpoint"
        ),
        pytest.param({"OTEL_TRACES_EXPORTER": "console"}, "console", id="console"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None, id="none"
        ),
        pytest.param(
            {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None, id="disabled"
        ),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None, id="blank-endpoint"),
    ],
)
def test_the_environment_decides_whether_to_trace(env: dict[str, str], expected: str | None) -> None:
    assert wanted_exporter(env) == expected


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER", id="unknown-exporter"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            id="grpc",
        ),
    ],
)
def test_what_haven_cannot_export_is_one_clear_start_up_line(env: dict[str, str], named: str) -> None:
    with pytest.raises(StartupError, match=named):
        start_tracing(env)


def test_tracing_asked_for_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    with pytest.raises(StartupError, match=r"haven\[otel\]"):
        start_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})


async def test_a_turn_is_one_span_with_ids_and_outcome_and_no_words() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = Engine(MemoryStore(), ScriptedModel(default="Sure."), tracer_provider=provider)
    thread = ThreadRef("slack", "T1", "C1", "100.1")
    msg = IncomingMessage(thread, Author("U1", "Alice"), WORDS, "100.1", origin=Origin.MENTION)
    result = await engine.handle_message(msg)
    assert result.status is TurnStatus.REPLIED
    [span] = exporter.get_finished_spans()
    assert span.name == "haven.turn"
    assert dict(span.attributes or {}) == {
        "haven.platform": "slack",
        "haven.workspace": "T1",
        "haven.origin": "mention",
        "haven.status": "replied",
    }


# -- at the wire: `haven chat` exporting to a local OTLP/HTTP collector ------------------------------


class Collector(InThread):
    """Receives OTLP/HTTP protobuf trace exports, as an OpenTelemetry collector does."""

    thread_name = "fake OTLP collector"

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Collector:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        self.exports.append(export)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def spans(self) -> list[Any]:
        return [
            span
            for export in self.exports
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector().start_in_thread()
    try:
        yield c
    finally:
        c.stop_thread()


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(default=Reply([{"type": "text", "text": "Here is a plan."}])).start_in_thread()
    try:
        yield fake
    finally:
        fake.stop_thread()


def test_haven_chat_exports_a_turn_span_with_the_sdks_call_nested_and_no_words(
    collector: Collector, anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_", "OTEL_"))
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/haven.db",
            "ANTHROPIC_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": anthropic.url,
            "HAVEN_SKIP_MODEL_CHECK": "true",
            "HAVEN_VERIFY_ENDINGS": "false",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_SERVICE_NAME": "haven-test",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input=WORDS + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert "Here is a plan." in done.stdout
    spans = collector.spans()
    by_name = {s.name: s for s in spans}
    assert "haven.turn" in by_name, [s.name for s in spans]
    turn = by_name["haven.turn"]
    calls = [s for s in spans if s.parent_span_id == turn.span_id]
    assert calls, "the Anthropic SDK's call span should nest under the turn"
    assert all(s.trace_id == turn.trace_id for s in calls)
    resource_names = {
        a.value.string_value
        for export in collector.exports
        for r in export.resource_spans
        for a in r.resource.attributes
        if a.key == "service.name"
    }
    assert resource_names == {"haven-test"}
    # No words anywhere in what left the process (the SDK's default content mode is metadata only).
    raw = b"".join(e.SerializeToString() for e in collector.exports)
    assert b"PRIVATE-WORDS" not in raw and b"Here is a plan" not in raw
