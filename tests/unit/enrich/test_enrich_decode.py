"""What enrich makes of a raw record it cannot take: the reason and the detail kept with it."""

from __future__ import annotations

from enrich.logic import decode
from terrain_contracts.messages import FailureReason
from terrain_runtime.dlq import Failure, SourceRecord


def record(value: bytes) -> SourceRecord:
    return SourceRecord("submissions-raw.v1", 0, 7, b"k", value)


def test_a_record_of_an_unknown_version_says_which_versions_are_known() -> None:
    failure = decode(record(b'{"schema_version": 99}'))
    assert isinstance(failure, Failure)
    assert failure.reason is FailureReason.UNKNOWN_SCHEMA_VERSION
    assert failure.detail == "raw submission schema_version 99 is not one of [1]"


def test_an_invalid_record_names_its_fields_without_their_values() -> None:
    failure = decode(record(b'{"schema_version": 1, "submission_id": "98 765 432"}'))
    assert isinstance(failure, Failure)
    assert failure.reason is FailureReason.INVALID
    assert "submission_id: " in failure.detail
    assert "98 765 432" not in failure.detail


def test_a_record_that_is_not_json_is_undecodable() -> None:
    failure = decode(record(b"\xff not json"))
    assert isinstance(failure, Failure)
    assert failure.reason is FailureReason.UNDECODABLE
    assert failure.detail.startswith("not a JSON object: ")
    assert len(failure.detail) <= 500
    assert decode(record(b"[1]")) == Failure(
        record(b"[1]"),
        FailureReason.UNDECODABLE,
        "not a JSON object: raw submission must be a JSON object",
    )
