"""Dead letters: self-describing failure records, and the limit that stops a broken consumer.

A record that cannot be processed (undecodable, unknown version, invalid, conflicting,
refused by PostgreSQL) is not retried: it becomes a ``Failure``, stored in
``terrain.failed_submissions`` (``store_failures``) and published to the dead-letter topic
as a ``DeadLetterV1`` (``dead_letter_message``), and the consumer goes on. But when *most*
records fail, the fault is ours (a bad deployment, a wrong key), not the records': the
``DeadLetterBudget`` then stops the consumer instead of draining the whole topic into the
dead-letter queue. Conflicts never count toward it (``counts_toward_limit``).

This module is the one place that knows the shape of a dead letter, its key and headers,
which reasons count, and the SQL of the failed-submissions store: enrich and notify both
go through it.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from terrain_contracts import headers
from terrain_contracts.messages import DeadLetterV1
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.db import Connection
from terrain_runtime.tracing import trace_id_of


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


@dataclass(frozen=True, slots=True)
class Failure:
    """One record that goes to the dead letters, and why."""

    record: SourceRecord
    reason: FailureReason
    detail: str
    submission_id: UUID | None = None
    # Conflicts only: the content hashes of this record and of the submission stored first.
    content_sha256: str | None = None
    existing_content_sha256: str | None = None


def counts_toward_limit(reason: FailureReason) -> bool:
    """A conflict is one visit's data-quality event: a resent or re-edited batch of them
    must never stop a consumer. Every other reason may mean the deployment is broken."""
    return reason is not FailureReason.CONFLICT


def text_safe(value: str) -> str:
    """``value`` without U+0000, which no PostgreSQL text column can hold: a failure's
    detail or key must itself be storable, or the failure would halt the pipeline too."""
    return value.replace("\x00", "") if "\x00" in value else value


# Kafka refuses records above its max.message.bytes (1 MB by default), and a dead letter
# that cannot be published would hold its batch back forever: a payload above this is left
# out of the topic's record (base64 adds a third) and kept only in failed_submissions.
MAX_DEAD_LETTER_PAYLOAD = 256 * 1024


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
    content_sha256: str | None = None,
    existing_content_sha256: str | None = None,
) -> DeadLetterV1:
    payload_b64 = ""
    if len(record.value) <= MAX_DEAD_LETTER_PAYLOAD:
        payload_b64 = base64.b64encode(record.value).decode()
    else:
        detail = f"[payload of {len(record.value)} bytes: in failed_submissions only] {detail}"
    return DeadLetterV1(
        failed_at=failed_at or datetime.now(UTC),
        service=service,
        service_version=service_version,
        consumer_group=consumer_group,
        reason=reason,
        detail=text_safe(detail)[:4000],
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key=text_safe(record.key.decode("utf-8", "replace")) if record.key is not None else None,
        submission_id=submission_id,
        payload_sha256=hashlib.sha256(record.value).hexdigest(),
        payload_b64=payload_b64,
        content_sha256=content_sha256,
        existing_content_sha256=existing_content_sha256,
    )


_JSON = (headers.CONTENT_TYPE, headers.JSON.encode())


def dead_letter_message(
    failure: Failure, *, service: str, service_version: str, consumer_group: str
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers (``DeadLetterHeaders``) of ``failure`` on the dead-letter
    topic. The key is the source coordinates (one record, one key: a redelivery lands on
    the same partition); the headers say the reason and the service, so a consumer of the
    topic can filter without decoding; the source's trace context goes along so the
    failure shows in the submission's trace."""
    record = failure.record
    letter = dead_letter(
        record,
        reason=failure.reason,
        detail=failure.detail,
        service=service,
        service_version=service_version,
        consumer_group=consumer_group,
        submission_id=failure.submission_id,
        content_sha256=failure.content_sha256,
        existing_content_sha256=failure.existing_content_sha256,
    )
    letter_headers = [
        _JSON,
        (headers.FAILURE_REASON, failure.reason.value.encode()),
        (headers.FAILING_SERVICE, service.encode()),
        *((k, v) for k, v in record.headers if k in (headers.TRACEPARENT, headers.TRACESTATE)),
    ]
    key = f"{record.topic}/{record.partition}/{record.offset}".encode()
    return key, letter.model_dump_json().encode(), letter_headers


_STORE_FAILURES = """
INSERT INTO terrain.failed_submissions (
    service, service_version, reason, detail, source_topic, source_partition, source_offset,
    submission_id, payload, payload_sha256, existing_payload_sha256, trace_id, content_sha256)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                     $7::bigint[], $8::uuid[], $9::bytea[], $10::text[], $11::text[],
                     $12::text[], $13::text[])
ON CONFLICT (source_topic, source_partition, source_offset, reason) DO NOTHING
"""


async def store_failures(
    *, connection: Connection, failures: list[Failure], service: str, service_version: str
) -> None:
    """Keep ``failures`` in terrain.failed_submissions, once per (record, reason): a
    redelivered batch adds nothing. The payload is bytea (any bytes fit); every text column
    is made storable first."""
    if not failures:
        return
    trace_ids = [trace_id_of(f.record.headers) for f in failures]
    await connection.execute(
        _STORE_FAILURES,
        [service] * len(failures),
        [service_version] * len(failures),
        [f.reason.value for f in failures],
        [text_safe(f.detail) for f in failures],
        [f.record.topic for f in failures],
        [f.record.partition for f in failures],
        [f.record.offset for f in failures],
        [f.submission_id for f in failures],
        [f.record.value for f in failures],
        [hashlib.sha256(f.record.value).hexdigest() for f in failures],
        [f.existing_content_sha256 for f in failures],
        [text_safe(t) if t is not None else None for t in trace_ids],
        [f.content_sha256 for f in failures],
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
        """Account one record; raises ``DeadLetterLimitExceeded`` past a limit. ``failed``
        is whether it failed for a reason that counts (see ``counts_toward_limit``)."""
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
