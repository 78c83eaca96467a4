"""What notify makes of an enriched record it cannot take: enrich validated what it
published, so a record that does not fit is undecodable, never a field app's mistake."""

from __future__ import annotations

from notify.handlers import decode
from terrain_contracts.messages import FailureReason
from terrain_runtime.dlq import Failure, SourceRecord


def record(value: bytes) -> SourceRecord:
    return SourceRecord("submissions-enriched.v1", 0, 7, b"k", value)


def test_a_record_of_an_unknown_version_says_which_versions_are_known() -> None:
    failure = decode(record(b'{"schema_version": 99}'))
    assert isinstance(failure, Failure)
    assert failure.reason is FailureReason.UNKNOWN_SCHEMA_VERSION
    assert failure.detail == "stored submission schema_version 99 is not one of [1]"


def test_a_record_that_does_not_fit_the_model_is_undecodable_and_named_without_values() -> None:
    failure = decode(record(b'{"schema_version": 1, "submission_id": "98 765 432"}'))
    assert isinstance(failure, Failure)
    assert failure.reason is FailureReason.UNDECODABLE
    assert "submission_id: " in failure.detail
    assert "98 765 432" not in failure.detail
    assert len(failure.detail) <= 2000


def test_a_record_that_is_not_json_is_undecodable_with_its_error() -> None:
    assert decode(record(b"[1]")) == Failure(
        record(b"[1]"),
        FailureReason.UNDECODABLE,
        "ValueError: stored submission must be a JSON object",
    )
