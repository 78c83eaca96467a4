"""Dead letters: self-describing failure records, and the limit that stops a broken consumer.

A record that cannot be processed (undecodable, unknown version, invalid, conflicting) is
not retried: it becomes a ``DeadLetterV1`` with its reason and its source coordinates, is
stored in ``terrain.failed_submissions`` and published to the dead-letter topic, and the
consumer goes on. But when *most* records fail, the fault is ours (a bad deployment, a
wrong key), not the records': the ``DeadLetterBudget`` then stops the consumer instead of
draining the whole topic into the dead-letter queue.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from terrain_contracts.messages import DeadLetterV1, FailureReason


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a record came from: enough to find it again in Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    # The record's headers (trace context among them); never part of a dead letter's payload.
    headers: tuple[tuple[str, bytes], ...] = ()


def dead_letter(
    record: SourceRecord,
    *,
    reason: FailureReason,
    detail: str,
    service: str,
    service_version: str,
    consumer_group: str,
    submission_id: UUID | None = None,
    failed_at: datetime | None = None,
) -> DeadLetterV1:
    return DeadLetterV1(
        failed_at=failed_at or datetime.now(UTC),
        service=service,
        service_version=service_version,
        consumer_group=consumer_group,
        reason=reason,
        detail=detail[:4000],
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        submission_id=submission_id,
        payload_sha256=hashlib.sha256(record.value).hexdigest(),
        payload_b64=base64.b64encode(record.value).decode(),
    )


class DeadLetterLimitExceeded(RuntimeError):
    """Too many dead letters: stop and let a human look, rather than drain the topic."""


class DeadLetterBudget:
    """Consecutive-failure and failure-ratio limits over a sliding window of records."""

    def __init__(self, *, max_consecutive: int, max_ratio: float, window: int) -> None:
        self.max_consecutive = max_consecutive
        self.max_ratio = max_ratio
        self._recent: deque[bool] = deque(maxlen=window)
        self._failed_in_window = 0  # kept as records come and go: no sum over the window
        self._consecutive = 0

    def record(self, *, failed: bool) -> None:
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._failed_in_window -= 1  # the oldest record leaves the window
        self._recent.append(failed)
        self._failed_in_window += failed
        self._consecutive = self._consecutive + 1 if failed else 0
        if self._consecutive > self.max_consecutive:
            raise DeadLetterLimitExceeded(
                f"{self._consecutive} consecutive dead letters (limit {self.max_consecutive})"
            )
        window_full = len(self._recent) == self._recent.maxlen
        if window_full:
            ratio = self._failed_in_window / len(self._recent)
            if ratio > self.max_ratio:
                raise DeadLetterLimitExceeded(
                    f"{ratio:.0%} of the last {len(self._recent)} records failed"
                    f" (limit {self.max_ratio:.0%})"
                )
