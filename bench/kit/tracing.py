"""Tracing as a service runs it, for CPU micro-benchmarks: the service's own tracer
provider (``terrain_runtime.telemetry.setup_tracing``, its sampler from the ratio), plus a
batch processor whose exporter encodes every span to OTLP protobuf and drops the bytes:
the CPU an exporting service spends, without a collector to wait for. Spans are encoded
in the processor's thread; ``cpu_us`` counts every thread of the process and flushes the
processor inside the window it measures.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from terrain_runtime.settings import TerrainSettings
from terrain_runtime.telemetry import setup_tracing


class EncodingExporter(SpanExporter):
    """Encodes spans as the OTLP exporter does before its HTTP POST, then drops them."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def traced(service: str, ratio: float, queue: int) -> tuple[TracerProvider, EncodingExporter]:
    """The process's global tracer provider at ``ratio`` (once per process: the services'
    tracers are module globals that resolve to it), exporting to an ``EncodingExporter``."""
    settings = TerrainSettings(environment="test", otel_sample_ratio=ratio)
    provider = setup_tracing(settings, service)
    exporter = EncodingExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=queue))
    return provider, exporter


def cpu_us(provider: TracerProvider | None, count: int, work: Callable[[], object]) -> float:
    """CPU µs per record of ``work()`` over ``count`` records, export included."""
    gc.collect()
    started = time.process_time()
    work()
    if provider is not None:
        provider.force_flush()
    return (time.process_time() - started) / count * 1e6
