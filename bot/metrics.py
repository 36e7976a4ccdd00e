"""Prometheus metrics for ``/metrics`` (``bot.ops``): one ``Metrics`` object per process, built at start-up
with a registry of its own and passed down — no module-level state.

Composition root (see ``bot.app``): the only place that imports ``prometheus_client``. The core counts
through ``bot.ports.MetricsSink`` (``Engine.metrics``), which ``Metrics`` implements; model calls are
timed by ``MeteredModel``, a ``ModelClient`` wrapping the real one, which also remembers when the model
last answered (``ModelHealth``, for ``/readyz``). Gauges that something else already knows (turns in
flight, scheduler leadership, inbox depth) are read when Prometheus scrapes, never kept twice.

Labels never carry content or ids of people, workspaces or conversations: platforms, statuses,
verdicts, reasons, API method names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.model import ChunkSink, ContextTooLong, ModelClient, ModelReply, ModelRequest
from bot.policy import Verification

log = logging.getLogger(__name__)

# Seconds; model calls and whole turns (a turn may include several calls, retries and tool rounds).
MODEL_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
TURN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 180.0)
VETO = "VETO_RISK"


class ModelHealth:
    """When the model last answered and last failed (``time.monotonic``), for ``/readyz``.

    Reachable when no call was made yet, or a call succeeded within ``window`` seconds, or the latest
    call succeeded (an idle process stays ready). Not reachable when the latest call failed and no call
    succeeded within the window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last_success: float | None = None
        self.last_failure: float | None = None

    def succeeded(self) -> None:
        self.last_success = self._clock()

    def failed(self) -> None:
        self.last_failure = self._clock()

    def reachable(self, window: float) -> bool:
        if self.last_failure is None:
            return True
        if self.last_success is None:
            return False
        return self.last_success >= self.last_failure or self._clock() - self.last_success <= window


class Metrics:
    """Every metric Haven exports, on ``self.registry``; implements ``bot.ports.MetricsSink``."""

    def __init__(self, *, slow_turn_seconds: float = 60.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.slow_turn_seconds = slow_turn_seconds
        self.model_health = ModelHealth()
        r = self.registry
        self.turns = Counter(
            "haven_turns",
            "User messages handled in a conversation, by outcome",
            ["platform", "outcome"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "haven_turn_seconds",
            "Time to handle one user message",
            ["platform"],
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.model_seconds = Histogram(
            "haven_model_call_seconds",
            "Model call latency (retries included), by call and outcome",
            ["call", "outcome"],
            buckets=MODEL_BUCKETS,
            registry=r,
        )
        self.model_tokens = Counter(
            "haven_model_tokens", "Model tokens of conversation calls, by kind", ["kind"], registry=r
        )
        self.decisions = Counter(
            "haven_ending_decisions",
            "Ending-policy answers to end_conversation proposals",
            ["verdict", "reason"],
            registry=r,
        )
        self.vetoes = Counter(
            "haven_vetoes",
            "Proposed endings vetoed because of risk, by proposed reason",
            ["reason"],
            registry=r,
        )
        self.endings = Counter("haven_endings", "Conversations ended, by reason", ["reason"], registry=r)
        self.platform_errors = Counter(
            "haven_platform_api_errors",
            "Failed platform API calls (HTTP status, rate limit, connection), by method",
            ["platform", "method", "kind"],
            registry=r,
        )
        self.slow_turns = Counter(
            "haven_slow_turns",
            "Turns that took longer than HAVEN_SLOW_TURN_SECONDS",
            ["platform"],
            registry=r,
        )
        self.inbox_pending = Gauge(
            "haven_inbox_pending", "Durable inbox entries not yet delivered (all processes)", registry=r
        )
        self.turns_in_flight = Gauge(
            "haven_turns_in_flight", "Turns of this process whose model part is running", registry=r
        )
        self.turns_waiting = Gauge(
            "haven_turns_waiting", "Turns of this process waiting for a model slot", registry=r
        )
        self.scheduler_leader = Gauge(
            "haven_scheduler_leader", "1 when this process leads the scheduled jobs", registry=r
        )
        self.ready = Gauge(
            "haven_ready", "1 when the last /readyz check passed, by check", ["check"], registry=r
        )

    # -- bot.ports.MetricsSink ------------------------------------------------------------------------

    def turn(self, platform: str, outcome: str, seconds: float) -> None:
        self.turns.labels(platform, outcome).inc()
        self.turn_seconds.labels(platform).observe(seconds)
        if seconds > self.slow_turn_seconds:
            self.slow_turns.labels(platform).inc()
            log.warning(
                "turn ran long",
                extra={
                    "platform": platform,
                    "status": outcome,
                    "seconds": round(seconds, 1),
                    "threshold": self.slow_turn_seconds,
                },
            )

    def decision(self, verdict: str, reason: str) -> None:
        self.decisions.labels(verdict, reason).inc()
        if verdict == VETO:
            self.vetoes.labels(reason).inc()

    def ending(self, reason: str) -> None:
        self.endings.labels(reason).inc()

    def platform_error(self, platform: str, method: str, kind: str) -> None:
        self.platform_errors.labels(platform, method, kind).inc()

    # -- sampled at scrape time -----------------------------------------------------------------------

    def watch(
        self,
        *,
        in_flight: Callable[[], float] | None = None,
        waiting: Callable[[], float] | None = None,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        """Gauges read from their owner whenever Prometheus scrapes (``Admission``, ``Scheduler``)."""
        if in_flight is not None:
            self.turns_in_flight.set_function(in_flight)
        if waiting is not None:
            self.turns_waiting.set_function(waiting)
        if leader is not None:
            self.scheduler_leader.set_function(lambda: 1.0 if leader() else 0.0)


class MeteredModel:
    """A ``ModelClient`` that times every call, counts the tokens of conversation calls and tells
    ``ModelHealth`` whether the model answered. Conversation calls (``respond``) decide reachability: a
    ``ModelError`` after the client's retries is a failure; ``ContextTooLong`` is an answer."""

    def __init__(self, inner: ModelClient, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    @property
    def rehearsal(self) -> bool:
        return self.inner.rehearsal

    def _observe(self, call: str, outcome: str, started: float) -> None:
        self._metrics.model_seconds.labels(call, outcome).observe(time.perf_counter() - started)

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        started = time.perf_counter()
        health = self._metrics.model_health
        try:
            reply = await self.inner.respond(request, sink)
        except ContextTooLong:
            self._observe("respond", "context_too_long", started)
            health.succeeded()
            raise
        except Exception:
            # ModelError after the client's retries, a time-out, a cancelled turn: the model did not answer.
            self._observe("respond", "error", started)
            health.failed()
            raise
        self._observe("respond", "ok", started)
        health.succeeded()
        usage = reply.usage
        for kind, n in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_creation_input", usage.cache_creation_input_tokens),
            ("cache_read_input", usage.cache_read_input_tokens),
        ):
            if n:
                self._metrics.model_tokens.labels(kind).inc(n)
        return reply

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        started = time.perf_counter()
        verification = await self.inner.verify(transcript, cues)
        self._observe("verify", "ok" if verification.risk is not None else "unclear", started)
        return verification

    async def count_tokens(self, request: ModelRequest) -> int | None:
        started = time.perf_counter()
        n = await self.inner.count_tokens(request)
        self._observe("count_tokens", "ok" if n is not None else "error", started)
        return n

    async def check(self) -> str | None:
        """The start-up check of the key and model (``bot.cli``), when the wrapped client has one."""
        check: Any = getattr(self.inner, "check", None)
        return None if check is None else await check()

    async def aclose(self) -> None:
        await self.inner.aclose()
