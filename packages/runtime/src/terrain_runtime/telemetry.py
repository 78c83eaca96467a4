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

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

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


# Where a structlog event's key-values travel on the stdlib record it becomes.
_FIELDS = "terrain_fields"


class JsonLines(logging.Formatter):
    """One JSON object a line: the message as ``event``, ``service``, ``level``, ``logger``,
    ``timestamp`` (UTC), the current ``trace_id`` and ``span_id``, the ``exception`` if
    any, and a structlog event's own key-values. A stdlib record's ``extra`` stays out, as
    the libraries' extras (FastStream's, uvicorn's) do: a log line holds what we chose."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "service": self.service_name,
            "level": record.levelname.lower(),
            "logger": record.name,
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        event.update(getattr(record, _FIELDS, ()))
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format(context.trace_id, "032x")
            event["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def _to_stdlib(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog's last processor: the event becomes the keyword arguments of a stdlib
    logging call, its key-values carried for ``JsonLines``."""
    message = event.pop("event", "")
    options: dict[str, Any] = {"msg": message}
    for key in ("exc_info", "stack_info"):
        if key in event:
            options[key] = event.pop(key)
    options["extra"] = {_FIELDS: event}
    return options


def setup_logging(settings: TerrainSettings, service_name: str) -> None:
    """JSON lines on stdout (``JsonLines``) for our code and the libraries (uvicorn,
    FastStream, aiokafka). structlog is not imported for it (it brings rich and pygments:
    about 150 ms of every start and several MB); code that logs through structlog has
    imported it by the time a service sets its logging up, and goes to the same lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog = sys.modules.get("structlog")
    if structlog is not None:
        structlog.configure(
            processors=[structlog.contextvars.merge_contextvars, _to_stdlib],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
