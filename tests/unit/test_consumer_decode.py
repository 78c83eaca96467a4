"""What each consumer makes of a record it cannot take: the reason and the detail kept
with it. Enrich reads what field apps sent, so a record that does not fit the contract is
INVALID (the app's mistake); notify reads what enrich validated, so one that does not fit
is UNDECODABLE (a bug or a foreign producer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from enrich.logic import decode as enrich_decode
from notify.stages import decode as notify_decode
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import Failure, SourceRecord


@dataclass(frozen=True)
class Consumer:
    decode: Callable[[SourceRecord], object]
    reads: str
    misfit: FailureReason
    not_an_object: str


ENRICH = Consumer(
    enrich_decode,
    "raw submission",
    FailureReason.INVALID,
    "not a JSON object: raw submission must be a JSON object",
)
NOTIFY = Consumer(
    notify_decode,
    "stored submission",
    FailureReason.UNDECODABLE,
    "ValueError: stored submission must be a JSON object",
)
consumers = pytest.mark.parametrize("consumer", [ENRICH, NOTIFY], ids=["enrich", "notify"])


def record(value: bytes) -> SourceRecord:
    return SourceRecord("source", 0, 7, b"k", value)


@consumers
def test_a_record_of_an_unknown_version_says_which_versions_are_known(consumer: Consumer) -> None:
    source = record(b'{"schema_version": 99}')
    assert consumer.decode(source) == Failure(
        source,
        FailureReason.UNKNOWN_SCHEMA_VERSION,
        f"{consumer.reads} schema_version 99 is not one of [1]",
    )


@consumers
def test_a_record_that_does_not_fit_names_its_fields_without_their_values(
    consumer: Consumer,
) -> None:
    failure = consumer.decode(record(b'{"schema_version": 1, "submission_id": "98 765 432"}'))
    assert isinstance(failure, Failure)
    assert failure.reason is consumer.misfit
    assert "submission_id: " in failure.detail
    assert "98 765 432" not in failure.detail


@consumers
def test_a_record_that_is_not_a_json_object_is_undecodable(consumer: Consumer) -> None:
    source = record(b"[1]")
    assert consumer.decode(source) == Failure(
        source, FailureReason.UNDECODABLE, consumer.not_an_object
    )
    failure = consumer.decode(record(b"\xff not json"))
    assert isinstance(failure, Failure)
    assert failure.reason is FailureReason.UNDECODABLE
    assert len(failure.detail) <= 500
