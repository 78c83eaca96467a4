"""Tracing and logging bootstrap, the same for every service.

One tracer provider per process, built from settings: an OTLP/HTTP exporter when an
endpoint is configured, otherwise spans are still created (so trace ids reach the logs) but
not exported; head sampling at ``otel_sample_ratio`` that keeps every submission an SRE
may be asked about (``terrain_runtime.sampling``). Logs are JSON lines on stdout carrying
the current trace and span ids, so an SRE can go from a log line to the trace. Nothing
here logs message payloads: phone numbers and verbatims stay out of logs by construction,
not by filtering.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from terrain_runtime.sampling import SubmissionSampler
from terrain_runtime.settings import TerrainSettings

_global_set = False


def setup_tracing(settings: TerrainSettings, service_name: str) -> TracerProvider:
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": settings.service_version,
            "deployment.environment": str(settings.environment),
        }
    )
    # A ratio of ordinary traces, and every urgent, failed or alerted one (sampling.py).
    provider = TracerProvider(
        resource=resource, sampler=SubmissionSampler(settings.otel_sample_ratio)
    )
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    global _global_set
    if not _global_set:
        trace.set_tracer_provider(provider)
        # Every query is a span (text only, never the parameters: they hold personal data).
        AsyncPGInstrumentor(capture_parameters=False).instrument(  # type: ignore[no-untyped-call]
            tracer_provider=provider
        )
        _global_set = True
    return provider


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def setup_logging(settings: TerrainSettings, service_name: str) -> None:
    """JSON logs on stdout for our code and for the libraries (uvicorn, faststream, aiokafka)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service_name)
