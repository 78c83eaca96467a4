"""The sampler: a ratio of ordinary traces, and every span started with ``terrain.keep``,
in its parent's trace whatever the parent decided; a span that is not sampled still
passes its trace id on."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from terrain_runtime.sampling import KEEP, Keep, SubmissionSampler
from terrain_runtime.tracing import context_from_headers, headers_for
from tests.unit.exported import UNSAMPLED_TRACE_ID, UNSAMPLED_TRACEPARENT, unsampled_parent


def tracer_at(ratio: float) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=SubmissionSampler(ratio))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_at_ratio_zero_only_kept_spans_are_exported() -> None:
    tracer, exporter = tracer_at(0.0)
    tracer.start_span("ordinary").end()
    tracer.start_span("urgent", attributes={KEEP: Keep.URGENT.value}).end()
    assert [s.name for s in exporter.get_finished_spans()] == ["urgent"]


def test_a_kept_span_joins_its_unsampled_parents_trace_and_its_children_follow() -> None:
    tracer, exporter = tracer_at(0.0)
    kept = tracer.start_span(
        "dead-letter submission", context=unsampled_parent(), attributes={KEEP: "failed"}
    )
    child = tracer.start_span("child", context=trace.set_span_in_context(kept))
    child.end()
    kept.end()
    tracer.start_span("sibling", context=unsampled_parent()).end()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"dead-letter submission", "child"}
    assert {s.context.trace_id for s in spans.values()} == {UNSAMPLED_TRACE_ID}
    parent = spans["dead-letter submission"].parent
    assert parent is not None and parent.span_id == 0xB7AD6B7169203331
    # What it passes on downstream says sampled: the next service keeps the trace too.
    assert headers_for(kept)["traceparent"].endswith("-01")


def test_a_span_that_is_not_sampled_still_passes_its_trace_id_on() -> None:
    tracer, exporter = tracer_at(0.0)
    parent = context_from_headers([("traceparent", UNSAMPLED_TRACEPARENT)])
    span = tracer.start_span("enrich submission", context=parent)
    carried = headers_for(span)["traceparent"]
    span.end()
    assert not exporter.get_finished_spans()
    assert carried.split("-")[1] == format(UNSAMPLED_TRACE_ID, "032x")
    assert carried.endswith("-00")


@pytest.mark.parametrize(("ratio", "names"), [(1.0, {"root", "child"}), (0.0, set())])
def test_a_root_is_sampled_at_the_ratio_and_its_children_follow(
    ratio: float, names: set[str]
) -> None:
    tracer, exporter = tracer_at(ratio)
    root = tracer.start_span("root")
    tracer.start_span("child", context=trace.set_span_in_context(root)).end()
    tracer.start_span("under an unsampled parent", context=unsampled_parent()).end()
    root.end()
    assert {s.name for s in exporter.get_finished_spans()} == names


def test_a_sampled_parent_is_followed_at_ratio_zero() -> None:
    tracer, exporter = tracer_at(0.0)
    sampled = UNSAMPLED_TRACEPARENT[:-2] + b"01"
    tracer.start_span("notify", context=context_from_headers([("traceparent", sampled)])).end()
    assert [s.name for s in exporter.get_finished_spans()] == ["notify"]
