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
import random
import sys
import zlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from uuid import uuid4

from bench.kit.load import ID_SLOT, Request
from terrain_contracts.headers import CONTENT_TYPE, JSON, TRACEPARENT
from terrain_simulator.generator import DayOptions, PlannedVisit, field_day
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


def _device(tokens: dict[str, list[str]], market: str, document: dict[str, Any]) -> str:
    """The device of the document's agent in ``market``: each agent keeps one all day."""
    devices = tokens[market]
    return devices[zlib.crc32(document["agent"]["employee_id"].encode()) % len(devices)]


def batch_requests(
    tokens: dict[str, list[str]], items: int, count: int, seed: int
) -> list[Request]:
    """``count`` batch bodies of ``items`` visits each, each from one market's device (one
    of the market's tokens in ``tokens``), as a phone's outbox flushes its own visits."""
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    built: list[Request] = []
    for document in field_documents(seed):
        market = document["agent"]["market"]
        pending[market].append(_stamped(document))
        if len(pending[market]) == items:
            visits = pending.pop(market)
            body = json.dumps({"submissions": visits}, ensure_ascii=False).encode()
            token = _device(tokens, market, visits[0])
            built.append((_head("/v1/submissions/batch", token, len(body)), body))
            if len(built) == count:
                return built
    raise AssertionError("unreachable: the field day is endless")


def single_requests(tokens: dict[str, list[str]], count: int, seed: int) -> list[Request]:
    """``count`` single-submission bodies, each from its agent's device."""
    built: list[Request] = []
    for document in islice(field_documents(seed), count):
        body = json.dumps(_stamped(document), ensure_ascii=False).encode()
        token = _device(tokens, document["agent"]["market"], document)
        built.append((_head("/v1/submissions", token, len(body)), body))
    return built


def realistic_requests(
    tokens: dict[str, list[str]], options: DayOptions, *, batch_sizes: tuple[int, int] = (20, 150)
) -> tuple[list[Request], list[PlannedVisit]]:
    """The simulator's day as request bytes, in the order its field apps send it
    (``terrain_simulator.runner``): a visit sent at once is a single POST per send (its
    resends follow it), an offline outbox flushes its market's visits as one batch of
    ``batch_sizes`` visits with their resends; a few invalid visits (4xx, or refused in
    their batch). Also the planned visits, to tell what should be stored and alerted."""
    rng = random.Random(options.seed)
    visits = list(field_day(options, now=datetime.now(UTC)))
    built: list[Request] = []
    outboxes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sizes: dict[str, int] = {}

    def flush(market: str) -> None:
        box = outboxes.pop(market)
        body = json.dumps({"submissions": box}, ensure_ascii=False).encode()
        token = _device(tokens, market, box[0])
        built.append((_head("/v1/submissions/batch", token, len(body)), body))

    for visit in visits:
        market = visit.market.value
        documents = [_stamped(document) for document in visit.documents]
        if visit.channel == "single":
            for document in documents:
                body = json.dumps(document, ensure_ascii=False).encode()
                head = _head("/v1/submissions", _device(tokens, market, visit.document), len(body))
                built.append((head, body))
            continue
        outboxes[market].extend(documents)
        if len(outboxes[market]) >= sizes.setdefault(market, rng.randint(*batch_sizes)):
            flush(market)
            sizes.pop(market)
    for market in list(outboxes):
        flush(market)
    return built, visits


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


def ingest_headers(n: int) -> list[tuple[str, bytes]]:
    """The headers ingest puts on the ``n``-th raw record: its content type and the
    submission's traceparent, sampled for one in ten as the deployed ratio (0.1) samples
    ordinary traces, so enrich pays for spans as it does behind ingest."""
    trace_id, span_id = f"{n + 1:032x}", f"{n + 1:016x}"
    flags = "01" if n % 10 == 0 else "00"
    return [
        (CONTENT_TYPE, JSON.encode()),
        (TRACEPARENT, f"00-{trace_id}-{span_id}-{flags}".encode()),
    ]


def raw_record_size(records: list[RawRecord]) -> int:
    """The mean size of a raw-topic record's value: what Kafka's perf tools send."""
    return round(sum(len(value) for _, value in records) / len(records))
