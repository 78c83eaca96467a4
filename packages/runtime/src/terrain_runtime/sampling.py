"""Head sampling that keeps what SREs look for: a ratio of ordinary submissions, and every
submission that matters whatever the ratio.

A recorded span costs each service 20-30 µs of CPU per submission; at thousands of visits
a second that is a large share of a core spent on traces nobody opens. So ordinary traces
are sampled at ``otel_sample_ratio`` (``ParentBased(TraceIdRatioBased)``: the field app's
request decides, every later hop follows its flag). But the traces an SRE is asked about
are kept by the service that first knows they matter, whatever the parent decided:

- ingest: the agent marked the visit urgent;
- enrich: the verbatim carries a signal (or the visit is urgent, for a replayed record);
- enrich and notify: the submission is dead-lettered, a conflict among them;
- notify: an alert is decided, and every delivery of it;
- the CLI: an operator replays a failed submission (``terrain failed replay``).

Such a span carries ``terrain.keep`` (why) from its start: the sampler reads it there,
since a sampling decision is taken when a span starts. It stays in its submission's trace
(the trace id comes from the parent's context, sampled or not), and its descendants
follow its sampled flag: downstream of the hop that kept it, the trace is whole. Above
that hop, the parent spans of an unsampled trace were not exported: the kept span shows
in the right trace, under a parent that is missing.

Sampling never hides a submission: its W3C trace id still travels in its records, its
row and its log lines (a span that is not sampled still has a trace id), so
``terrain trace ID`` finds it at any ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

KEEP = "terrain.keep"


class Keep(StrEnum):
    """Why a span is sampled whatever the ratio: the value of its ``terrain.keep``."""

    URGENT = "urgent"
    SIGNALS = "signals"
    FAILED = "failed"
    CONFLICT = "conflict"
    ALERT = "alert"
    REPLAY = "replay"


class SubmissionSampler(Sampler):
    """``ParentBased(TraceIdRatioBased(ratio))``, except that a span started with a
    ``terrain.keep`` attribute is recorded and sampled, in its parent's trace."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._ratio = ParentBased(TraceIdRatioBased(ratio))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if attributes and KEEP in attributes:
            parent = get_current_span(parent_context).get_span_context()
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                attributes,
                parent.trace_state if parent.is_valid else None,
            )
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"SubmissionSampler{{keep:{KEEP},else:ParentBased(TraceIdRatioBased({self.ratio}))}}"
