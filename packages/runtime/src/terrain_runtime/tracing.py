"""One trace per submission through batch consumers.

A batch consumer sees 500 records from 500 different traces at once. FastStream's
telemetry middleware gives the batch one span; these helpers give each submission spans
in *its own* trace (the W3C context its record carried), so an SRE following submission X
sees ingest, enrich, the database write, notify and the delivery of X — and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Span, SpanKind

from terrain_contracts.headers import TRACE_CONTEXT, TRACEPARENT
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.sampling import KEEP, Keep


def context_from_headers(headers: Iterable[tuple[str, bytes]]) -> otel_context.Context:
    """The trace context a Kafka record carried (W3C traceparent/tracestate headers)."""
    carrier = {}
    for key, value in headers:
        if key in TRACE_CONTEXT:
            carrier[key] = value.decode("latin-1")
    return extract(carrier)


def trace_id_of(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """The trace id a record belongs to (from its W3C traceparent), for `terrain trace`."""
    for key, value in headers:
        if key == TRACEPARENT:
            parts = value.decode("latin-1").split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return None


def headers_for(span: Span) -> dict[str, str]:
    """W3C headers that make a message, or an outbox row, continue ``span``'s trace."""
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def context_from_carrier(carrier: dict[str, str] | None) -> otel_context.Context:
    return extract(carrier or {})


def submission_attributes(
    submission_id: Any, market: str | None, *, keep: Keep | None = None
) -> dict[str, str]:
    """A submission's span attributes; ``keep`` samples the span whatever the ratio
    (``terrain_runtime.sampling``), so it must be given here, when the span starts."""
    attributes = {"terrain.submission_id": str(submission_id)}
    if market:
        attributes["terrain.market"] = market
    if keep is not None:
        attributes[KEEP] = keep.value
    return attributes


def failure_attributes(reason: FailureReason, submission_id: Any) -> dict[str, str]:
    """The span of a dead-lettered record: always kept, a conflict under its own reason."""
    keep = Keep.CONFLICT if reason is FailureReason.CONFLICT else Keep.FAILED
    attributes = {KEEP: keep.value, "terrain.reason": reason.value}
    if submission_id is not None:
        attributes["terrain.submission_id"] = str(submission_id)
    return attributes


@contextmanager
def span_in(
    tracer: trace.Tracer,
    name: str,
    parent: otel_context.Context,
    *,
    attributes: dict[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
) -> Iterator[Span]:
    """A span in the trace of ``parent`` (not the batch's), current within the block."""
    span = tracer.start_span(
        name, context=parent, kind=kind, attributes=attributes, start_time=start_time
    )
    with trace.use_span(span, end_on_exit=True):
        yield span
