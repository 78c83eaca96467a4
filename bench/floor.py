"""The floor: what Terrain's guarantees cost per visit on this machine, with nothing else.

Per visit, the guarantees require exactly this, and the floor measures exactly this, on the
simulator's field day, with the libraries Terrain is built on and none of its own code:

- one validation: pydantic validates the field document from its JSON bytes (a 4xx naming
  the field is only possible after it);
- one pseudonym: phonenumbers parses the number and formats it E.164, HMAC-SHA-256 keys it
  (no phone number in clear);
- one acks=all produce per batch: aiokafka's batch API (``create_batch`` / ``send_batch``,
  one partition per batch of 500), idempotent, awaited (202 only after acks=all): the
  client's CPU and the broker JVM's meanwhile;
- one store per batch: one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING``
  statement of 500 rows shaped as enrich stores them (exactly once in PostgreSQL): the
  client's CPU and the backend's;
- one consume: aiokafka reads the records back in batches of 500: the client's CPU and the
  broker's.

The sum is the floor in µs of CPU per visit; 2 cores / floor is the rate those parts alone
would keep both cores busy at. The distance from each service's CPU per visit
(``bench.end_to_end`` prints it, process by process, beside this floor's part of it) to the
floor is the work left. CPU comes from /proc (10 ms ticks: 20,000 visits a step keep that
under 0.5 µs a visit); the shared broker and PostgreSQL also serve whatever else runs on
the machine, so the load average is printed.

    uv run python -m bench.floor              # 20,000 visits a step, about a minute
    uv run python -m bench.floor --record     # same, appended to bench/RESULTS.md
    uv run python -m bench.floor --smoke      # 500 visits; checks that it runs
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from uuid import uuid4

import asyncpg
import phonenumbers
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kit import results
from bench.kit.copy_limit import submission_tuples
from bench.kit.kafka_perf import perf_topic
from bench.kit.procstat import cpu_s
from bench.kit.stack import broker_pid
from bench.kit.submissions import field_documents, raw_records
from enrich.repository import SUBMISSION_COLUMNS
from terrain_contracts.submission import FieldSubmission
from terrain_testkit.database import throwaway_database
from terrain_testkit.topics import KAFKA

LIBRARIES = ("pydantic", "phonenumbers", "aiokafka", "asyncpg")
CORES = 2  # the machine the targets are set for
BATCH = 500  # a produce, a store and a consume move this many visits at once

VALIDATE = "validate the field document (pydantic, from JSON)"
PSEUDONYM = "pseudonym of the number (phonenumbers parse + E.164, HMAC-SHA-256)"
PRODUCE = "produce acks=all, one batch of 500 (aiokafka create_batch/send_batch)"
TAKE = "Kafka broker JVM: take the produced batch"
STORE = "store once, one INSERT ... SELECT FROM unnest ON CONFLICT per 500 (asyncpg)"
STORE_SERVER = "PostgreSQL backend: the same statement"
CONSUME = "consume, batches of 500 (aiokafka)"
SERVE = "Kafka broker JVM: serve the consumed batch"

STEPS = (VALIDATE, PSEUDONYM, PRODUCE, TAKE, CONSUME, SERVE, STORE, STORE_SERVER)
# Which process pays for each step: how bench.end_to_end sets a service beside its floor.
PARTS: dict[str, tuple[str, ...]] = {
    "ingest": (VALIDATE, PSEUDONYM, PRODUCE),
    "enrich": (CONSUME, STORE),
    "notify": (),
    "Kafka JVM": (TAKE, SERVE),
    "PostgreSQL backends": (STORE_SERVER,),
}


@dataclass
class Floor:
    """µs of CPU per visit of each step, as measured, and how many visits a step."""

    visits: int
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def total_us(self) -> float:
        return sum(self.steps.values())

    def part_us(self, process: str) -> float:
        """The floor's share that ``process`` pays (see ``PARTS``)."""
        return sum(self.steps[step] for step in PARTS.get(process, ()))


@contextmanager
def _cpu(floor: Floor, step: str, pids: tuple[int, ...] = ()) -> Iterator[None]:
    """CPU per visit of this process (or of ``pids``) over the block."""
    mine = not pids
    before = time.process_time() if mine else sum(cpu_s(pid) for pid in pids)
    yield
    after = time.process_time() if mine else sum(cpu_s(pid) for pid in pids)
    floor.steps[step] = (after - before) / floor.visits * 1e6


def _each(floor: Floor, step: str, items: list[Any], work: Callable[[Any], object]) -> None:
    with _cpu(floor, step):
        for item in items:
            work(item)


def edge_steps(floor: Floor) -> None:
    """Validation and pseudonym: pure CPU in ingest, once per visit."""
    documents = list(islice(field_documents(11, now=datetime.now(UTC)), floor.visits))
    bodies = [json.dumps(d, ensure_ascii=False).encode() for d in documents]
    _each(floor, VALIDATE, bodies, FieldSubmission.model_validate_json)
    secret = os.urandom(32)

    def pseudonym(document: dict[str, Any]) -> str | None:
        number = document["customer"].get("msisdn")
        if number is None:  # about a third of the visits carry no number: nothing to do
            return None
        parsed = phonenumbers.parse(number, document["agent"]["market"])
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return hmac.new(secret, e164.encode(), hashlib.sha256).hexdigest()

    _each(floor, PSEUDONYM, documents, pseudonym)


async def kafka_steps(floor: Floor, records: list[tuple[bytes, bytes]]) -> None:
    """One acks=all produce per batch of 500 (one partition each, in turn), then one
    consume of them all."""
    async with perf_topic(f"floor-{uuid4().hex[:8]}.") as topic:
        await asyncio.sleep(1)  # leaders elected
        broker = (broker_pid(),)
        producer = AIOKafkaProducer(
            bootstrap_servers=KAFKA, acks="all", enable_idempotence=True,
            max_batch_size=1_000_000, max_request_size=1_048_576,
        )  # fmt: skip
        await producer.start()
        try:
            await (await producer.send(topic, b"warm-up", key=b"warm-up"))
            partitions = sorted(await producer.partitions_for(topic))
            with _cpu(floor, PRODUCE), _cpu(floor, TAKE, broker):
                for number, start in enumerate(range(0, len(records), BATCH)):
                    await _produce(producer, topic, partitions[number % len(partitions)],
                                   records[start : start + BATCH])  # fmt: skip
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=KAFKA, group_id=None, auto_offset_reset="earliest",
            enable_auto_commit=False, max_poll_records=BATCH, fetch_max_bytes=52_428_800,
            max_partition_fetch_bytes=1_048_576,
        )  # fmt: skip
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=5000, max_records=1)  # assigned, fetching
            seen = 1
            with _cpu(floor, CONSUME), _cpu(floor, SERVE, broker):
                while seen < len(records) + 1:
                    batches = await consumer.getmany(timeout_ms=5000, max_records=BATCH)
                    if not batches:
                        raise RuntimeError(f"consumed {seen} of {len(records) + 1} records")
                    seen += sum(len(batch) for batch in batches.values())
        finally:
            await consumer.stop()


async def _produce(
    producer: AIOKafkaProducer, topic: str, partition: int, records: list[tuple[bytes, bytes]]
) -> None:
    """``records`` to one partition in as few batches as fit, every one acknowledged."""
    pending = []
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            pending.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    pending.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*pending)


async def _unnest_insert(connection: asyncpg.Connection) -> str:
    """The one statement that stores a batch once: each column an array parameter,
    ``unnest`` into rows, ``ON CONFLICT DO NOTHING``. Array columns (topics, signals) travel
    as their text form, since ``unnest`` of a 2-D array yields elements, not rows."""
    rows = await connection.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
        "WHERE attrelid = 'terrain.submissions'::regclass AND attnum > 0"
    )
    types: dict[str, str] = {row["attname"]: row["type"] for row in rows}
    parameters, selected = [], []
    for number, column in enumerate(SUBMISSION_COLUMNS, start=1):
        kind = types[column]
        parameters.append(f"${number}::{'text' if kind.endswith('[]') else kind}[]")
        selected.append(f"{column}::{kind}" if kind.endswith("[]") else column)
    columns = ", ".join(SUBMISSION_COLUMNS)  # the repository's constants, never input
    return (
        f"INSERT INTO terrain.submissions ({columns}) SELECT {', '.join(selected)} "  # noqa: S608
        f"FROM unnest({', '.join(parameters)}) AS t({columns}) "
        "ON CONFLICT (submission_id) DO NOTHING"
    )


def _array_text(values: list[str] | None) -> str | None:
    """A text[] literal of vocabulary words (no quotes, commas or braces in them)."""
    return None if values is None else "{" + ",".join(values) + "}"


async def store_step(floor: Floor, records: list[tuple[bytes, bytes]]) -> None:
    """One INSERT ... SELECT FROM unnest ... ON CONFLICT DO NOTHING per batch of 500, in
    autocommit (one statement is its own transaction): client and backend CPU."""
    rows = submission_tuples(records)
    arrays = {SUBMISSION_COLUMNS.index(c) for c in ("topics", "signals")}
    async with throwaway_database("terrain_floor") as url:
        connection = await asyncpg.connect(url)
        try:
            insert = await _unnest_insert(connection)
            backend = (int(await connection.fetchval("SELECT pg_backend_pid()")),)
            await connection.execute("SELECT 1")
            with _cpu(floor, STORE), _cpu(floor, STORE_SERVER, backend):
                for start in range(0, len(rows), BATCH):
                    columns = [list(c) for c in zip(*rows[start : start + BATCH], strict=True)]
                    for index in arrays:
                        columns[index] = [_array_text(v) for v in columns[index]]
                    await connection.execute(insert, *columns)
            stored = await connection.fetchval("SELECT count(*) FROM terrain.submissions")
            if stored != len(rows):
                raise RuntimeError(f"stored {stored} of {len(rows)} rows")
        finally:
            await connection.close()


def measure(visits: int) -> Floor:
    """The floor over ``visits`` visits a step."""
    floor = Floor(visits)
    edge_steps(floor)
    records, _ = raw_records(visits, seed=7)
    # What the steps built stays alive; out of the collector's sight, as the services
    # freeze what they build at start-up, it does not tax the I/O steps.
    gc.collect()
    gc.freeze()
    asyncio.run(kafka_steps(floor, records))
    asyncio.run(store_step(floor, records))
    return floor


def table(floor: Floor) -> str:
    total = floor.total_us
    lines = [
        "",
        results.heading("floor"),
        "",
        f"- machine: {results.machine()}; {results.versions(LIBRARIES)}",
        f"- {floor.visits:,} visits a step; load average {results.load_average()} "
        "(the broker and PostgreSQL are shared with whatever else runs)",
        "",
        "| what the guarantees require, per visit | paid by | µs CPU per visit |",
        "|---|---|---:|",
    ]
    payer = {step: process for process, steps in PARTS.items() for step in steps}
    lines += [f"| {step} | {payer[step]} | {floor.steps[step]:,.1f} |" for step in STEPS]
    lines += [
        f"| **floor** | | **{total:,.1f}** |",
        "",
        f"floor: {total:,.0f} µs CPU per visit, {CORES * 1e6 / total:,.0f} visits/s on "
        f"{CORES} cores; a service's distance to its part of it is the work left:",
        "; ".join(
            f"{process} {floor.part_us(process):,.1f} µs" for process in PARTS if PARTS[process]
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--visits", type=int, default=20_000, help="visits a step")
    parser.add_argument("--smoke", action="store_true", help="500 visits: checks that it runs")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a line of context for the recorded entry")
    args = parser.parse_args(argv)
    report = table(measure(500 if args.smoke else args.visits))
    if args.note:
        report += f"\n\nnote: {args.note}"
    print(report)
    if args.record and not args.smoke:
        results.append(report)


if __name__ == "__main__":
    main()
