"""The floor: what the parts Terrain is built on cost per submission on this machine, and
the ceilings that puts on the throughput targets of ingest, enrich + store and the whole
pipeline.

Every figure is CPU time per record of a library doing only its share of a submission's
work, on realistic records, in one run: no HTTP server, no tracing, no logging, none of
Terrain's own logic. It is what any Python pipeline with the chosen dependencies (pydantic,
phonenumbers, cryptography, timezonefinder and h3, opentelemetry-sdk, aiokafka and the
broker's JVM, asyncpg and the PostgreSQL backend, both read from /proc) would spend at
least; bench/README.md lists the steps and the stage each belongs to.

A stage that needs at least F µs of CPU per submission can never pass cores / F
submissions per second on this machine, whatever its code; the table compares that
ceiling with each target. The real services also parse HTTP, trace, log, look up devices
and segments, dedupe and commit, so their real ceiling is lower still.

    uv run python -m bench.floor              # 20,000 records a step, about a minute
    uv run python -m bench.floor --record     # same, appended to bench/RESULTS.md
    uv run python -m bench.floor --smoke      # 500 records; checks that it runs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import h3  # type: ignore[import-untyped]
import phonenumbers
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from opentelemetry.propagate import extract
from opentelemetry.sdk.trace import TracerProvider
from timezonefinder import TimezoneFinder

from bench.kit import results
from bench.kit.copy_limit import submission_tuples
from bench.kit.kafka_perf import perf_topic
from bench.kit.procstat import cpu_s
from bench.kit.stack import broker_pid
from bench.kit.submissions import field_documents, raw_records
from enrich.geo import load_gazetteer
from enrich.logic import enrich_batch
from enrich.repository import SUBMISSION_COLUMNS
from ingest.logic import Device, receive
from terrain_contracts.markets import MARKETS, Market
from terrain_contracts.messages import SubmissionReceivedV1, SubmissionStoredV1
from terrain_contracts.submission import FieldSubmission
from terrain_runtime.settings import TerrainSettings
from terrain_runtime.tracing import headers_for
from terrain_testkit.database import throwaway_database
from terrain_testkit.topics import KAFKA

LIBRARIES = ("pydantic", "phonenumbers", "aiokafka", "asyncpg", "timezonefinder", "h3")
TARGETS = {  # submissions/s each stage must sustain on a 2-core machine
    "ingest, batch endpoint": 20_000,
    "enrich + store": 15_000,
    "end to end": 10_000,
}


@dataclass
class Floor:
    """µs of CPU per record of each step, as measured."""

    steps: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, step: str) -> float:
        return self.steps[step]


@contextmanager
def _cpu(floor: Floor, step: str, count: int, pids: tuple[int, ...] = ()) -> Iterator[None]:
    """CPU per record of this process (or of ``pids``) over the block."""
    process = not pids
    before = time.process_time() if process else sum(cpu_s(pid) for pid in pids)
    yield
    after = time.process_time() if process else sum(cpu_s(pid) for pid in pids)
    floor.steps[step] = (after - before) / count * 1e6


def _each(floor: Floor, step: str, items: list[Any], work: Callable[[Any], object]) -> None:
    with _cpu(floor, step, len(items)):
        for item in items:
            work(item)


def pure_steps(floor: Floor, count: int) -> tuple[list[bytes], list[bytes]]:
    """The CPU-only steps; returns the raw and enriched records for the Kafka steps."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    documents = list(islice(field_documents(11, now=now), count))
    bodies = [json.dumps(d, ensure_ascii=False).encode() for d in documents]
    _each(floor, "pydantic: validate the field document (JSON)", bodies,
          FieldSubmission.model_validate_json)  # fmt: skip

    numbers = [
        (d["customer"]["msisdn"], d["agent"]["market"])
        for d in documents
        if "msisdn" in d["customer"]
    ]

    def normalise(pair: tuple[str, str]) -> str:
        parsed = phonenumbers.parse(pair[0], pair[1])
        phonenumbers.is_possible_number(parsed)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    _each(floor, "phonenumbers: parse, check, E.164", numbers, normalise)
    secret, aead = os.urandom(32), AESGCM(AESGCM.generate_key(bit_length=256))

    def protect(pair: tuple[str, str]) -> str:
        digest = hmac.new(secret, pair[0].encode(), hashlib.sha256).hexdigest()
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, pair[0].encode(), b"id")
        return digest + base64.b64encode(nonce + sealed).decode()

    _each(floor, "HMAC-SHA-256 + AES-GCM of the number", numbers, protect)

    settings = TerrainSettings(environment="test")
    envelopes = [
        receive(
            FieldSubmission.model_validate(d),
            device=Device(UUID(int=1), Market(d["agent"]["market"]), "floor"),
            received_at=now,
            pseudonymiser=settings.pseudonymiser(),
            sealer=settings.sealer(),
            ingest_version="floor",
        )
        for d in documents
    ]
    raw: list[bytes] = []
    _each(floor, "pydantic: write the raw envelope", envelopes,
          lambda e: raw.append(e.model_dump_json().encode()))  # fmt: skip
    _each(floor, "pydantic: read the raw envelope", raw,
          SubmissionReceivedV1.model_validate_json)  # fmt: skip

    def fingerprint(envelope: SubmissionReceivedV1) -> str:
        document = envelope.submission.model_dump(mode="json", exclude_none=True)
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # Same id, other content must be told from a resend: a canonical form, hashed.
    _each(floor, "pydantic + json + hashlib: canonical document, SHA-256", envelopes,
          fingerprint)  # fmt: skip

    finder = TimezoneFinder(in_memory=True)
    fixes = [
        (MARKETS[Market(d["agent"]["market"])].capital_lat + rng.uniform(-0.1, 0.1),
         MARKETS[Market(d["agent"]["market"])].capital_lon + rng.uniform(-0.1, 0.1))
        for d in documents
    ]  # fmt: skip

    def geo(fix: tuple[float, float]) -> None:
        finder.timezone_at(lng=fix[1], lat=fix[0])
        h3.latlng_to_cell(fix[0], fix[1], 8)

    _each(floor, "timezonefinder + h3 of a GPS fix", fixes, geo)

    # One trace per submission across the services: each starts a span for it, continuing
    # the context its record carried, and passes the context on in W3C headers. No exporter.
    tracer = TracerProvider().get_tracer("floor")
    carried = headers_for(tracer.start_span("field app"))
    attributes = {"terrain.submission_id": str(uuid4()), "terrain.market": "SN"}

    def span(_: object) -> None:
        parent = extract(carried)
        one = tracer.start_span("submission", context=parent, attributes=attributes)
        headers_for(one)
        one.end()

    _each(floor, "opentelemetry-sdk: a span, its context into headers", envelopes, span)

    enrichments = enrich_batch(envelopes, gazetteer=load_gazetteer(), segment_histories={})
    stored_models = [
        SubmissionStoredV1(
            submission_id=e.submission_id,
            market=e.submission.agent.market,
            received_at=e.received_at,
            stored_at=now,
            enrichment=enrichment,
            submission=e.submission,
        )
        for e, enrichment in zip(envelopes, enrichments, strict=True)
    ]
    enriched: list[bytes] = []
    _each(floor, "pydantic: write the enriched envelope", stored_models,
          lambda s: enriched.append(s.model_dump_json().encode()))  # fmt: skip
    _each(floor, "pydantic: read the enriched envelope", enriched,
          SubmissionStoredV1.model_validate_json)  # fmt: skip
    return raw, enriched


async def kafka_steps(floor: Floor, raw: list[bytes]) -> None:
    async with perf_topic(f"floor-{uuid4().hex[:8]}.") as topic:
        await asyncio.sleep(1)  # leaders elected
        broker = broker_pid()
        producer = AIOKafkaProducer(
            bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        try:
            await (await producer.send(topic, b"warm-up", key=b"warm-up"))
            keys = [str(uuid4()).encode() for _ in raw]
            with (
                _cpu(floor, "aiokafka: produce acks=all (client)", len(raw)),
                _cpu(floor, "Kafka broker: take a record", len(raw), (broker,)),
            ):
                for start in range(0, len(raw), 500):
                    pending = [
                        await producer.send(topic, value, key=key)
                        for value, key in zip(
                            raw[start : start + 500], keys[start : start + 500], strict=True
                        )
                    ]
                    await asyncio.gather(*pending)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=KAFKA, group_id=None, auto_offset_reset="earliest",
            enable_auto_commit=False, max_poll_records=500,
        )  # fmt: skip
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=5000, max_records=1)  # assigned, fetching
            seen = 1
            with (
                _cpu(floor, "aiokafka: consume (client)", len(raw)),
                _cpu(floor, "Kafka broker: serve a record", len(raw), (broker,)),
            ):
                while seen < len(raw) + 1:
                    batches = await consumer.getmany(timeout_ms=5000)
                    if not batches:
                        break
                    seen += sum(len(records) for records in batches.values())
        finally:
            await consumer.stop()


IDEMPOTENT_BATCH = 500  # a consumer's batch: one transaction, then the offsets


async def database_steps(floor: Floor, count: int) -> None:
    """PostgreSQL's bulk limit (a plain COPY), and the least an exactly-once store costs:
    per batch, COPY into a staging table and INSERT ... ON CONFLICT DO NOTHING, in a
    transaction, so that a redelivered record changes nothing."""
    records, _ = raw_records(count, seed=7)
    tuples = submission_tuples(records)
    columns = ", ".join(SUBMISSION_COLUMNS)  # the repository's constants, never input
    move = f"INSERT INTO terrain.submissions ({columns}) SELECT {columns} FROM staging"  # noqa: S608
    move += " ON CONFLICT (submission_id) DO NOTHING"
    async with throwaway_database("terrain_floor") as url:
        connection = await asyncpg.connect(url)
        try:
            backend = (int(await connection.fetchval("SELECT pg_backend_pid()")),)
            with (
                _cpu(floor, "PostgreSQL: COPY a row (server)", len(tuples), backend),
                _cpu(floor, "asyncpg: COPY a row (client)", len(tuples)),
            ):
                await connection.copy_records_to_table(
                    "submissions",
                    schema_name="terrain",
                    records=tuples,
                    columns=list(SUBMISSION_COLUMNS),
                )
            await connection.execute("TRUNCATE terrain.submissions CASCADE")
            staging = f"CREATE TEMP TABLE staging AS SELECT {columns} FROM terrain.submissions"  # noqa: S608
            await connection.execute(staging + " WITH NO DATA")
            with (
                _cpu(floor, "PostgreSQL: store a row once (server)", len(tuples), backend),
                _cpu(floor, "asyncpg: store a row once (client)", len(tuples)),
            ):
                for start in range(0, len(tuples), IDEMPOTENT_BATCH):
                    async with connection.transaction():
                        await connection.execute("TRUNCATE staging")
                        await connection.copy_records_to_table(
                            "staging",
                            records=tuples[start : start + IDEMPOTENT_BATCH],
                            columns=list(SUBMISSION_COLUMNS),
                        )
                        await connection.execute(move)
        finally:
            await connection.close()


STAGES: dict[str, tuple[str, ...]] = {
    "ingest, batch endpoint": (
        "pydantic: validate the field document (JSON)",
        "opentelemetry-sdk: a span, its context into headers",
        "phonenumbers: parse, check, E.164",
        "HMAC-SHA-256 + AES-GCM of the number",
        "pydantic: write the raw envelope",
        "aiokafka: produce acks=all (client)",
        "Kafka broker: take a record",
    ),
    "enrich + store": (
        "aiokafka: consume (client)",
        "Kafka broker: serve a record",
        "pydantic: read the raw envelope",
        "opentelemetry-sdk: a span, its context into headers",
        "pydantic + json + hashlib: canonical document, SHA-256",
        "timezonefinder + h3 of a GPS fix",
        "PostgreSQL: store a row once (server)",
        "asyncpg: store a row once (client)",
        "pydantic: write the enriched envelope",
        "aiokafka: produce acks=all (client)",
        "Kafka broker: take a record",
    ),
    "notify, reading every stored submission": (
        "aiokafka: consume (client)",
        "Kafka broker: serve a record",
        "pydantic: read the enriched envelope",
        "opentelemetry-sdk: a span, its context into headers",
    ),
}


def table(floor: Floor, cores: int, count: int) -> str:
    lines = [
        "",
        results.heading("floor"),
        "",
        f"- machine: {results.machine()}; {results.versions(LIBRARIES)}",
        f"- {count:,} records a step; load average {results.load_average()}",
        "",
        "| step | µs CPU per record |",
        "|---|---:|",
    ]
    lines += [f"| {step} | {value:,.1f} |" for step, value in floor.steps.items()]
    stage_floor = {stage: sum(floor[s] for s in steps) for stage, steps in STAGES.items()}
    stage_floor["end to end"] = sum(stage_floor.values())
    lines += [
        "",
        f"| stage | floor, µs CPU per submission | ceiling on {cores} cores, /s | target, /s "
        "| reachable? |",
        "|---|---:|---:|---:|---|",
    ]
    for stage, micros in stage_floor.items():
        ceiling = cores * 1e6 / micros
        target = TARGETS.get(stage)
        verdict = "" if target is None else ("yes" if ceiling >= target else "NO")
        lines.append(
            f"| {stage} | {micros:,.0f} | {ceiling:,.0f} | "
            f"{'' if target is None else f'{target:,}'} | {verdict} |"
        )
    lines += [
        "",
        "ceiling = cores / floor: the rate at which these parts alone would keep every core "
        "busy; the services also do HTTP, tracing, logging, lookups, dedupe and commits.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="records a step")
    parser.add_argument("--smoke", action="store_true", help="500 records: checks that it runs")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    count = 500 if args.smoke else args.count
    floor = Floor()
    raw, _ = pure_steps(floor, count)
    # What the steps built stays alive; out of the collector's sight, as the services
    # freeze what they build at start-up, it does not tax the Kafka steps.
    gc.collect()
    gc.freeze()
    asyncio.run(kafka_steps(floor, raw))
    asyncio.run(database_steps(floor, count))
    report = table(floor, os.cpu_count() or 1, count)
    print(report)
    if args.record and not args.smoke:
        results.append(report)


if __name__ == "__main__":
    main()
