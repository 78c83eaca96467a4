"""What every service keeps whatever the sampling ratio, one rule a test: the spans are
the services' own, exported at ratio 0 (tests.unit.exported), each in its submission's
trace even when the record's trace was not sampled upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from enrich.logic import SubmissionRow
from enrich.stages import _submission_spans
from ingest.routes import _submission_span
from notify.rules import load_ruleset
from notify.stages import Received, decide_alerts, decode
from terrain_contracts.headers import TRACEPARENT
from terrain_contracts.messages import Enrichment
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import DeadLetterBudget, Failure, SourceRecord
from terrain_runtime.pipeline import DeadLetters, StoreTimes
from terrain_runtime.sampling import KEEP
from terrain_testkit.factories import field_submission, raw_envelope, stored_record
from tests.unit.exported import UNSAMPLED_TRACE_ID, UNSAMPLED_TRACEPARENT, unsampled_parent


def record(value: bytes = b"{}") -> SourceRecord:
    """A record whose trace its field app's request did not sample."""
    return SourceRecord("source", 0, 7, b"k", value, ((TRACEPARENT, UNSAMPLED_TRACEPARENT),))


def kept(exported: InMemorySpanExporter) -> dict[str, str]:
    """Each exported span's name and why it was kept, after checking they are all in the
    submission's trace."""
    spans = exported.get_finished_spans()
    assert {s.context.trace_id for s in spans} <= {UNSAMPLED_TRACE_ID}
    return {s.name: str((s.attributes or {}).get(KEEP)) for s in spans}


@pytest.mark.parametrize(("urgent", "expected"), [(True, {"accept submission": "urgent"}),
                                                  (False, {})])  # fmt: skip
def test_ingest_keeps_an_urgent_visit(
    exported: InMemorySpanExporter, urgent: bool, expected: dict[str, str]
) -> None:
    envelope = raw_envelope(field_submission(feedback__urgent=urgent))
    # A single POST: the request's span was not sampled, its submission's is.
    with trace.use_span(trace.get_current_span(unsampled_parent())):
        _submission_span(envelope, own_trace=False).end()
    assert kept(exported) == expected


def enriched_row(urgent: bool, signals: list[str]) -> SubmissionRow:
    return SubmissionRow(
        received=raw_envelope(field_submission(feedback__urgent=urgent)),
        enrichment=Enrichment(signals=signals),
        payload_sha256="v2:0",
        record=record(),
        document="{}",
    )


@pytest.mark.parametrize(
    ("urgent", "signals", "keep"),
    [(False, ["money_lost"], "signals"), (True, [], "urgent"), (False, [], None)],
)
def test_enrich_keeps_a_submission_with_a_signal_or_the_urgent_flag(
    exported: InMemorySpanExporter, urgent: bool, signals: list[str], keep: str | None
) -> None:
    now = datetime.now(UTC).timestamp()
    times = StoreTimes(int(now * 1e9), int(now * 1e9), int(now * 1e9))
    _submission_spans(enriched_row(urgent, signals), False, times).end()
    expected = {"enrich submission": keep, "store submission": keep} if keep else {}
    assert kept(exported) == expected


class Producer:
    async def send(self, topic: str, value: bytes, **_: Any) -> Awaitable[object]:
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


@pytest.mark.parametrize(
    ("reason", "keep"),
    [(FailureReason.UNDECODABLE, "failed"), (FailureReason.STORE_REJECTED, "failed"),
     (FailureReason.CONFLICT, "conflict")],
)  # fmt: skip
async def test_every_dead_letter_is_kept(
    exported: InMemorySpanExporter, reason: FailureReason, keep: str
) -> None:
    stage = DeadLetters(
        service="enrich",
        service_version="1",
        consumer_group="g",
        topic="dlq",
        producer=Producer(),
        budget=DeadLetterBudget(max_consecutive=10, max_ratio=1.0, window=10),
        source_topic_id="submissions.raw",
    )
    await stage.publish([Failure(record(), reason, "detail")])
    assert kept(exported) == {"dead-letter submission": keep}


@pytest.mark.parametrize(("urgent", "expected"), [(True, {"decide alerts": "alert"}),
                                                  (False, {})])  # fmt: skip
def test_notify_keeps_every_alert_it_decides(
    exported: InMemorySpanExporter, urgent: bool, expected: dict[str, str]
) -> None:
    document = field_submission(feedback__urgent=urgent, feedback__satisfaction=4)
    received = decode(record(stored_record(document)[1]))
    assert isinstance(received, Received)
    alerts, failures = decide_alerts([received], load_ruleset())
    assert (len(alerts), failures) == (int(urgent), [])
    assert kept(exported) == expected
    if urgent:  # the delivery continues a sampled trace (and keeps its own span anyway)
        carried = alerts[0].alert.trace_context or {}
        assert carried["traceparent"].endswith("-01")
