"""Optional OpenTelemetry tracing, switched on by the standard ``OTEL_*`` variables.

Haven opens one span per turn (``haven.turn``, ``haven.recovered_turn`` in ``bot.engine``) carrying ids
and outcomes, never words; the Anthropic SDK's own call spans (its default content mode records
metadata only) nest under it. This module only sets up the exporting side at start-up, from the
environment an operator already knows from other services:

- on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or
  ``OTEL_TRACES_EXPORTER`` names an exporter; off when ``OTEL_SDK_DISABLED=true`` or the exporter is
  ``none``;
- OTLP over HTTP/protobuf (``otlp``, the default) or ``console``; the endpoint, headers, time-out,
  ``OTEL_SERVICE_NAME`` (default ``haven``) and ``OTEL_RESOURCE_ATTRIBUTES`` are read by the SDK itself.

The SDK is an optional extra (``pip install 'haven[otel]'``); asking for tracing without it is a
start-up error of one line, not a silent no-op.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.ports import StartupError

log = logging.getLogger(__name__)

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_EXPORTERS = ("otlp", "console")
# Flushing at shutdown waits at most this long for the collector: a gone collector must not hold a deploy.
SHUTDOWN_FLUSH_MS = 5_000


@dataclass
class Tracing:
    """The configured provider; ``shutdown`` flushes what is still buffered."""

    provider: Any
    exporter: str

    def shutdown(self) -> None:
        try:
            self.provider.force_flush(SHUTDOWN_FLUSH_MS)
            self.provider.shutdown()
        except Exception as exc:  # exporting is best effort; it never fails a shutdown
            log.warning("tracing shutdown failed", extra={"error": type(exc).__name__})


def wanted_exporter(environ: Mapping[str, str]) -> str | None:
    """Which exporter the environment asks for, or None when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if names:
        if names == ["none"]:
            return None
        unknown = [n for n in names if n not in _EXPORTERS]
        if unknown or len(names) > 1:
            raise StartupError(
                f"OTEL_TRACES_EXPORTER={','.join(names)} is not supported: use one of {', '.join(_EXPORTERS)}"
                " (or none)"
            )
        return names[0]
    return "otlp" if any(environ.get(name, "").strip() for name in _ENDPOINTS) else None


def start_tracing(environ: Mapping[str, str] | None = None) -> Tracing | None:
    """Install a global tracer provider when the environment asks for tracing (see the module)."""
    env = os.environ if environ is None else environ
    exporter_name = wanted_exporter(env)
    if exporter_name is None:
        return None
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip()
    if exporter_name == "otlp" and protocol not in ("", "http/protobuf"):
        raise StartupError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: Haven exports http/protobuf "
            "(unset it, or set it to http/protobuf)"
        )
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporter: SpanExporter
        if exporter_name == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
    except ImportError:
        raise StartupError(
            "OpenTelemetry tracing is configured (OTEL_* variables) but its SDK is not installed: "
            "pip install 'haven[otel]', or unset the OTEL_* variables"
        ) from None
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over this default (Resource.create reads them).
    default = Resource({SERVICE_NAME: "haven"})
    provider = TracerProvider(resource=default.merge(Resource.create()), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on", extra={"exporter": exporter_name})
    return Tracing(provider, exporter_name)
