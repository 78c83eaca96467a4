"""What the benchmarks send, built with the simulator's generator: the field day the
simulator, the demo and the tests use (17 markets weighted like the operator's footprint,
numbers in each market's formats, verbatims in the markets' languages, GPS fixes or typed
places, urgent complaints), valid visits only, each sent once.

Two fast paths are built on its output, before timing:

- request bytes for the load generator (``bench.kit.load``): a visit's JSON with
  ``ID_SLOT`` at the head of its ``submission_id``, so every request stamps fresh ids;
- raw-topic records as ingest writes them, from a thousand visits with new ids each, so
  a consumer benchmark has any number of distinct records at the cost of a string copy.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from uuid import uuid4

from bench.kit.load import ID_SLOT, Request
from terrain_simulator.generator import DayOptions, field_day
from terrain_testkit.factories import raw_envelope

TEMPLATES = 1_000  # distinct visits behind a benchmark's raw records

RawRecord = tuple[bytes, bytes]  # (key, value) as on the raw topic


def field_documents(seed: int, *, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """An endless field day of valid visits as the app sends them, the same for a seed."""
    options = DayOptions(visits=sys.maxsize, seed=seed, invalid_share=0.0, resend_share=0.0)
    for visit in field_day(options, now=now or datetime.now(UTC)):
        yield visit.document


def _stamped(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "submission_id": ID_SLOT.decode() + document["submission_id"][8:]}


def _head(path: str, token: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def batch_requests(tokens: dict[str, str], items: int, count: int, seed: int) -> list[Request]:
    """``count`` batch bodies of ``items`` visits each, each from one market's device (the
    market's token in ``tokens``), as a phone's outbox flushes its own visits."""
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    built: list[Request] = []
    for document in field_documents(seed):
        market = document["agent"]["market"]
        pending[market].append(_stamped(document))
        if len(pending[market]) == items:
            body = json.dumps({"submissions": pending.pop(market)}, ensure_ascii=False).encode()
            built.append((_head("/v1/submissions/batch", tokens[market], len(body)), body))
            if len(built) == count:
                return built
    raise AssertionError("unreachable: the field day is endless")


def single_requests(tokens: dict[str, str], count: int, seed: int) -> list[Request]:
    """``count`` single-submission bodies, each from its market's device."""
    built: list[Request] = []
    for document in islice(field_documents(seed), count):
        body = json.dumps(_stamped(document), ensure_ascii=False).encode()
        token = tokens[document["agent"]["market"]]
        built.append((_head("/v1/submissions", token, len(body)), body))
    return built


def raw_records(count: int, seed: int) -> tuple[list[RawRecord], list[str]]:
    """``count`` distinct raw-topic records from ``TEMPLATES`` visits (a new id each), and
    the templates' number pseudonyms (empty where a visit has no number)."""
    templates: list[tuple[str, str]] = []
    hashes: list[str] = []
    for document in islice(field_documents(seed), TEMPLATES):
        envelope = raw_envelope(document)
        hashes.append(envelope.submission.customer.msisdn_hash or "")
        templates.append((str(envelope.submission_id), envelope.model_dump_json()))
    records: list[RawRecord] = []
    for n in range(count):
        old_id, text = templates[n % TEMPLATES]
        new_id = str(uuid4())
        records.append((new_id.encode(), text.replace(old_id, new_id).encode()))
    return records, hashes


def raw_record_size(records: list[RawRecord]) -> int:
    """The mean size of a raw-topic record's value: what Kafka's perf tools send."""
    return round(sum(len(value) for _, value in records) / len(records))
