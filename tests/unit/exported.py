"""The spans a process exports, in memory, for tests of what the sampler keeps.

The services' tracers are module globals that resolve to the process's tracer provider,
which can be set once (a service's ``setup_tracing`` in a later test leaves it alone):
``install`` sets it before any test runs (tests/unit/conftest.py), with the services'
sampler at ratio 0, so only what is always kept is exported, and a synchronous in-memory
exporter; with ``exported`` a test starts from an empty list.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from terrain_runtime.sampling import SubmissionSampler

_EXPORTER = InMemorySpanExporter()
# A trace its field app's request did not sample: what most records carry at a low ratio.
UNSAMPLED_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
UNSAMPLED_TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def unsampled_parent() -> otel_context.Context:
    """The context of a remote span that was not sampled (UNSAMPLED_TRACEPARENT's)."""
    span = SpanContext(
        UNSAMPLED_TRACE_ID, 0xB7AD6B7169203331, is_remote=True, trace_flags=TraceFlags(0)
    )
    return trace.set_span_in_context(NonRecordingSpan(span))


_PROCESSOR = SimpleSpanProcessor(_EXPORTER)


def install() -> None:
    provider = TracerProvider(sampler=SubmissionSampler(0.0))
    provider.add_span_processor(_PROCESSOR)
    trace.set_tracer_provider(provider)


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    # Collecting the whole suite has been seen to leave the process's provider without its
    # processor (the other floors' test modules import the services too): attach it again.
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        processors = provider._active_span_processor._span_processors
        if _PROCESSOR not in processors:
            provider.add_span_processor(_PROCESSOR)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()
