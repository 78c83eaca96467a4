from __future__ import annotations

import base64

import pytest

from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import (
    MAX_DEAD_LETTER_PAYLOAD,
    DeadLetterBudget,
    DeadLetterLimitExceeded,
    SourceRecord,
    counts_toward_limit,
    dead_letter,
    text_safe,
)


def test_dead_letter_describes_itself() -> None:
    record = SourceRecord("raw", 3, 42, b"key", b"\xff\x00garbage")
    letter = dead_letter(
        record,
        reason=FailureReason.UNDECODABLE,
        detail="not JSON",
        service="enrich",
        service_version="1",
        consumer_group="g",
    )
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("raw", 3, 42)
    assert base64.b64decode(letter.payload_b64) == record.value
    assert letter.reason is FailureReason.UNDECODABLE


def test_budget_stops_after_consecutive_failures() -> None:
    budget = DeadLetterBudget(max_consecutive=3, max_ratio=1.0, window=100)
    for _ in range(3):
        budget.record(failed=True)
    with pytest.raises(DeadLetterLimitExceeded, match="consecutive"):
        budget.record(failed=True)


def test_budget_stops_above_ratio_once_window_is_full() -> None:
    budget = DeadLetterBudget(max_consecutive=1000, max_ratio=0.5, window=10)
    for _ in range(4):
        budget.record(failed=False)
        budget.record(failed=True)
    budget.record(failed=True)
    with pytest.raises(DeadLetterLimitExceeded, match="failed"):
        budget.record(failed=True)


def test_a_success_resets_the_consecutive_count() -> None:
    budget = DeadLetterBudget(max_consecutive=2, max_ratio=1.0, window=100)
    for _ in range(10):
        budget.record(failed=True)
        budget.record(failed=True)
        budget.record(failed=False)


def test_failures_that_left_the_window_no_longer_count() -> None:
    # 5 failures then 5 successes fill a window of 10 at exactly the limit; each further
    # success pushes out an old failure, so failing again later stays under 50 %.
    budget = DeadLetterBudget(max_consecutive=1000, max_ratio=0.5, window=10)
    for failed in [True] * 5 + [False] * 10:
        budget.record(failed=failed)
    for _ in range(5):
        budget.record(failed=True)  # 5 of the last 10: at the limit, not above it
    with pytest.raises(DeadLetterLimitExceeded, match="60% of the last 10"):
        budget.record(failed=True)


def test_only_conflicts_are_left_out_of_the_limit() -> None:
    assert [r.value for r in FailureReason if not counts_toward_limit(r)] == ["conflict"]


def test_a_dead_letter_never_carries_a_character_postgresql_cannot_store() -> None:
    record = SourceRecord("raw", 0, 1, b"a\x00b", b"{}")
    letter = dead_letter(
        record,
        reason=FailureReason.STORE_REJECTED,
        detail="before\x00after",
        service="enrich",
        service_version="1",
        consumer_group="g",
    )
    assert letter.detail == "beforeafter" and letter.key == "ab"
    assert text_safe("clean") == "clean"


def test_a_payload_too_large_for_kafka_stays_out_of_the_dead_letter_record() -> None:
    # Published with it, the dead letter would exceed Kafka's 1 MB and block its batch.
    record = SourceRecord("raw", 0, 1, b"k", b"x" * (MAX_DEAD_LETTER_PAYLOAD + 1))
    letter = dead_letter(
        record,
        reason=FailureReason.UNDECODABLE,
        detail="not JSON",
        service="enrich",
        service_version="1",
        consumer_group="g",
    )
    assert letter.payload_b64 == "" and "failed_submissions only" in letter.detail
    assert len(letter.model_dump_json()) < 10_000
