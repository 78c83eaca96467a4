"""The pure parts of `terrain failed`: time filters, what a terminal may show of a payload,
and what a replayed record carries (its key, its trace, its span exported at any ratio)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from terrain_cli.failed import (
    parent_context,
    parse_since,
    render_payload,
    replay_failures,
    replay_key,
)
from terrain_cli.failed_repository import FailedSubmission
from terrain_contracts.headers import TRACEPARENT
from terrain_runtime.sampling import KEEP, Keep

NOW = datetime(2025, 4, 15, 12, 0, tzinfo=UTC)


def test_since_takes_a_duration_back_from_now_or_a_time() -> None:
    assert parse_since("30m", now=NOW) == datetime(2025, 4, 15, 11, 30, tzinfo=UTC)
    assert parse_since("2d", now=NOW) == datetime(2025, 4, 13, 12, 0, tzinfo=UTC)
    assert parse_since("2025-04-15T09:00", now=NOW) == datetime(2025, 4, 15, 9, 0, tzinfo=UTC)
    assert parse_since("2025-04-15T09:00+02:00", now=NOW).utcoffset() is not None
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", now=NOW)


def test_a_payload_is_shown_without_any_sealed_value() -> None:
    document = {
        "submission": {"customer": {"msisdn_sealed": "s1:abc", "msisdn_hash": "k1:00"}},
        "items": [{"sms_sealed": "s1:def", "kept": 1}],
    }
    shown = render_payload(json.dumps(document).encode())
    assert "sealed" not in shown and "s1:abc" not in shown and "s1:def" not in shown
    assert '"msisdn_hash": "k1:00"' in shown and '"kept": 1' in shown
    # Not JSON: shown as escaped text, a sealed value that looks like one left out too, and
    # no control character reaches the terminal.
    garbage = render_payload(b'\x1b[2J{"msisdn_sealed": "s1:ghi", \x00 broken')
    assert "s1:ghi" not in garbage and "\x1b" not in garbage and "\x00" not in garbage
    assert "not JSON" in garbage


def _failure(**changes: object) -> FailedSubmission:
    values: dict[str, object] = {
        "failure_id": 1, "failed_at": NOW, "service": "enrich", "service_version": "t",
        "reason": "undecodable", "detail": "", "source_topic": "raw", "source_partition": 0,
        "source_offset": 0, "submission_id": None, "payload": b"", "payload_sha256": "",
        "existing_payload_sha256": None, "trace_id": None, "replayed_at": None,
        "replay_count": 0,
    }  # fmt: skip
    values.update(changes)
    return FailedSubmission(**values)  # type: ignore[arg-type]


def test_a_replay_is_keyed_by_the_submission_id_as_ingest_keys_it() -> None:
    submission_id = uuid4()
    assert replay_key(_failure(submission_id=submission_id)) == str(submission_id).encode()
    from_payload = json.dumps({"submission_id": str(submission_id)}).encode()
    assert replay_key(_failure(payload=from_payload)) == str(submission_id).encode()
    assert replay_key(_failure(payload=b"\xff")) is None


def test_a_replay_continues_the_failed_records_trace() -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    span = trace.get_current_span(parent_context(trace_id))
    assert format(span.get_span_context().trace_id, "032x") == trace_id
    # Unknown or malformed trace ids start a new trace rather than a broken one.
    assert parent_context(None) is None
    assert parent_context("not-a-trace-id") is None
    assert parent_context("0" * 32) is None


class _AckingProducer:
    """Acknowledges every record at once, keeping what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, value, headers))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(object())
        return future


class _Connection:
    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append(sql)
        return "UPDATE 1"


@pytest.mark.parametrize("trace_id", [None, "4bf92f3577b34da6a3ce929d0e0e4736"])
def test_a_replay_is_exported_whatever_the_ratio(
    exported: InMemorySpanExporter, trace_id: str | None
) -> None:
    # The unit tests' sampler runs at ratio 0: only what is always kept is exported.
    producer = _AckingProducer()
    failure = _failure(trace_id=trace_id, payload=b"{}", submission_id=uuid4())
    sent, failed = asyncio.run(
        replay_failures(
            [failure],
            producer=producer,  # type: ignore[arg-type]
            connection=_Connection(),  # type: ignore[arg-type]
            tracer=trace.get_tracer("test"),
        )
    )
    assert len(sent) == 1 and not failed
    (span,) = exported.get_finished_spans()
    assert (span.attributes or {}).get(KEEP) == Keep.REPLAY.value
    context = span.get_span_context()
    assert context is not None
    if trace_id:
        assert format(context.trace_id, "032x") == trace_id
    # The replayed record carries the kept span's context, sampled: every later hop of the
    # replay is exported too.
    traceparent = dict(producer.sent[0][2])[TRACEPARENT].decode()
    assert int(traceparent.split("-")[3], 16) & 0x01  # sampled
    assert traceparent.split("-")[2] == format(context.span_id, "016x")
