"""Which enriched records carry their raw record's trace context on as it is (no span of
enrich's is sampled for them) and which get a span of their own."""

from __future__ import annotations

import pytest

from enrich.logic import SubmissionRow
from enrich.stages import _unsampled_context
from terrain_contracts.headers import TRACEPARENT, TRACESTATE
from terrain_contracts.messages import Enrichment
from terrain_runtime.dlq import SourceRecord
from terrain_testkit.factories import field_submission, raw_envelope
from tests.unit.exported import UNSAMPLED_TRACEPARENT

SAMPLED = UNSAMPLED_TRACEPARENT[:-2] + b"01"


def row(headers: tuple[tuple[str, bytes], ...], *, urgent: bool = False) -> SubmissionRow:
    return SubmissionRow(
        received=raw_envelope(field_submission(feedback__urgent=urgent)),
        enrichment=Enrichment(),
        payload_sha256="v2:0",
        record=SourceRecord("raw", 0, 7, b"k", b"{}", headers),
        document="{}",
    )


def test_an_unsampled_record_passes_its_own_context_on() -> None:
    headers = ((TRACEPARENT, UNSAMPLED_TRACEPARENT), (TRACESTATE, b"a=b"), ("other", b"x"))
    assert _unsampled_context(row(headers)) == [headers[0], headers[1]]


@pytest.mark.parametrize(
    "headers",
    [
        ((TRACEPARENT, SAMPLED),),  # sampled upstream: enrich's spans follow
        (),  # no parent: a root, which the ratio decides
        ((TRACEPARENT, b"00-" + b"0" * 32 + b"-b7ad6b7169203331-00"),),  # invalid: a root
        ((TRACEPARENT, b"not a traceparent"),),
    ],
)
def test_other_records_get_a_span(headers: tuple[tuple[str, bytes], ...]) -> None:
    assert _unsampled_context(row(headers)) is None


def test_a_submission_kept_whatever_the_ratio_gets_a_span() -> None:
    headers = ((TRACEPARENT, UNSAMPLED_TRACEPARENT),)
    assert _unsampled_context(row(headers, urgent=True)) is None
