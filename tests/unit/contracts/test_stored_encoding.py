"""The enriched record as enrich writes it: the raw record's submission spliced in, which
readers decode to the very model a dump of the envelope gives; any other layout of the raw
record is dumped instead."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from terrain_contracts.messages import (
    Enrichment,
    SubmissionStoredV1,
    decode_raw_submission,
    decode_stored_submission,
    encode_stored_submission,
    raw_submission_json,
)
from terrain_testkit.factories import field_submission, raw_record

STORED_AT = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
ENRICHMENT = Enrichment(signals=["money_lost"], language="fr", enricher_version="2")


def encoded(raw: bytes) -> tuple[bytes, bytes]:
    """(what enrich writes for ``raw``, the dump of the same envelope)."""
    envelope = decode_raw_submission(raw)
    dumped = SubmissionStoredV1(
        submission_id=envelope.submission_id,
        market=envelope.submission.agent.market,
        received_at=envelope.received_at,
        stored_at=STORED_AT,
        enrichment=ENRICHMENT,
        submission=envelope.submission,
    )
    spliced = encode_stored_submission(
        raw,
        submission_id=envelope.submission_id,
        received_at=envelope.received_at,
        stored_at=STORED_AT,
        enrichment=ENRICHMENT,
        submission=envelope.submission,
    )
    return spliced, dumped.model_dump_json().encode()


def test_the_spliced_record_is_the_dump_of_a_record_as_ingest_writes_it() -> None:
    _, raw = raw_record(field_submission(feedback__verbatim='il a dit "}" puis {"submission":'))
    assert raw_submission_json(raw) is not None
    spliced, dumped = encoded(raw)
    assert spliced == dumped
    assert decode_stored_submission(spliced) == decode_stored_submission(dumped)


def reordered(raw: bytes) -> bytes:
    document = json.loads(raw)
    return json.dumps({"submission": document.pop("submission"), **document}).encode()


def with_nested_key(raw: bytes) -> bytes:
    document = json.loads(raw)
    document["submission"]["feedback"]["submission"] = {"a": 1}
    return json.dumps(document).encode()


def spaced(raw: bytes) -> bytes:
    return json.dumps(json.loads(raw), indent=2).encode() + b"\n"


def twice(raw: bytes) -> bytes:
    """The submission key twice (the last one counts): what a splice must not take."""
    document = json.loads(raw)
    first = json.dumps(field_submission())
    return b'{"submission":' + first.encode() + b"," + json.dumps(document).encode()[1:]


@pytest.mark.parametrize("layout", [reordered, with_nested_key, spaced, twice])
def test_any_other_layout_decodes_to_the_same_model_as_the_dump(
    layout: Callable[[bytes], bytes],
) -> None:
    _, raw = raw_record()
    other = layout(raw)
    spliced, dumped = encoded(other)
    assert decode_stored_submission(spliced) == decode_stored_submission(dumped)
    assert decode_stored_submission(spliced).submission == decode_raw_submission(other).submission


def test_the_spliced_submission_is_the_raw_one_when_only_the_whitespace_differs() -> None:
    _, raw = raw_record()
    spaced_out = spaced(raw)
    assert raw_submission_json(spaced_out) is not None
    spliced, dumped = encoded(spaced_out)
    assert decode_stored_submission(spliced) == decode_stored_submission(dumped)
