"""The durable producer: idempotent, acks=all, and renewed when aiokafka's idempotent
producer dies; it publishes one record, or a whole batch of them at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.structs import RecordMetadata

from terrain_runtime.metrics import KAFKA_PRODUCER_RENEWALS

log = logging.getLogger(__name__)

Record = tuple[bytes | None, bytes, Sequence[tuple[str, bytes]]]
"""One record to publish: key, value, headers."""

# Errors after which an idempotent aiokafka producer never sends again: its sender task
# dies and every later send raises the same error (aio-libs/aiokafka#1017). The Java client
# bumps its epoch and goes on; aiokafka does not, so we replace the producer.
FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
    UnknownProducerId,
)


class DurableProducer:
    """An idempotent aiokafka producer that replaces itself when the broker loses its
    sequence (seen after a broker restart under load): without this, ingest would answer
    503 until someone restarted it. Records in flight at that moment fail (ingest answers
    503, the app resends; downstream deduplicates on the submission id), the next ones go
    through a new producer with a new producer id.

    Besides the key (aiokafka hashes it in Python, 6 us a record), the partition can be
    chosen by an ``affinity``: records with the same one land on the same partition, in the
    order they were sent; ``send_batch`` sends a request's or a consumer batch's records as
    whole Kafka batches, each on one partition. For topics whose consumers deduplicate by
    id wherever a resend lands."""

    def __init__(
        self,
        factory: Callable[[], AIOKafkaProducer],
        *,
        client_id: str,
        max_record_bytes: int = 1024 * 1024,
    ) -> None:
        self._factory = factory
        self._client_id = client_id
        self._producer = factory()
        self._generation = 0
        self._lock = asyncio.Lock()
        self._renewals: set[asyncio.Task[None]] = set()
        # aiokafka's max_request_size, which ``send`` checks each record against.
        self._max_record_bytes = max_record_bytes
        self._turn: dict[str, int] = {}  # per topic, the last partition handed out in turn

    @property
    def client(self) -> Any:
        return self._producer.client

    @property
    def generation(self) -> int:
        """How many times the producer was replaced."""
        return self._generation

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        for task in list(self._renewals):
            with contextlib.suppress(Exception):
                await task
        await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        affinity: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a record; the returned future resolves when Kafka acknowledged it. Its
        partition is the ``affinity``'s if one is given, else the key's."""
        generation = self._generation
        try:
            future = await self._send(topic, value, key, headers, affinity)
        except FATAL_PRODUCER_ERRORS as error:
            await self._renew(generation, error)
            generation = self._generation
            future = await self._send(topic, value, key, headers, affinity)
        future.add_done_callback(lambda f: self._check(f, generation))
        return future

    async def _send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        affinity: int | None,
    ) -> asyncio.Future[RecordMetadata]:
        partition = None if affinity is None else await self._partition(topic, affinity)
        future: asyncio.Future[RecordMetadata] = await self._producer.send(
            topic, value, key=key, headers=headers, partition=partition
        )
        return future

    async def send_batch(
        self, topic: str, records: Sequence[Record], *, affinity: int | None = None
    ) -> asyncio.Future[Any]:
        """Queue ``records`` as whole Kafka batches (as many as their size needs), sent
        without lingering: one append per batch for the broker, one future for the caller,
        which resolves once Kafka acknowledged every record (acks=all). The keys travel
        but do not choose the partition: the ``affinity``'s, else the next in turn."""
        generation = self._generation
        try:
            futures = await self._send_batches(topic, records, affinity)
        except FATAL_PRODUCER_ERRORS as error:
            await self._renew(generation, error)
            generation = self._generation
            futures = await self._send_batches(topic, records, affinity)
        for future in futures:
            future.add_done_callback(lambda f: self._check(f, generation))
        return futures[0] if len(futures) == 1 else asyncio.gather(*futures)

    async def _send_batches(
        self, topic: str, records: Sequence[Record], affinity: int | None
    ) -> list[asyncio.Future[Any]]:
        producer = self._producer
        futures: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for key, value, headers in records:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await self._send_whole(topic, batch, affinity))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
            if batch.record_count() == 1 and batch.size() > self._max_record_bytes:
                # What ``send`` refuses before it leaves, the broker would refuse later.
                raise MessageSizeTooLargeError(f"a record of {batch.size()} bytes")
        if batch.record_count():
            futures.append(await self._send_whole(topic, batch, affinity))
        return futures

    async def _send_whole(
        self, topic: str, batch: Any, affinity: int | None
    ) -> asyncio.Future[Any]:
        batch.close()  # complete: no linger, and no other record joins it
        if affinity is None:
            partitions = len(await self._producer.partitions_for(topic))
            partition = self._turn[topic] = (self._turn.get(topic, -1) + 1) % partitions
        else:
            partition = await self._partition(topic, affinity)
        future: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return future

    async def _partition(self, topic: str, affinity: int) -> int:
        return affinity % len(await self._producer.partitions_for(topic))

    def _check(self, future: asyncio.Future[Any], generation: int) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, FATAL_PRODUCER_ERRORS) and generation == self._generation:
            task = asyncio.ensure_future(self._renew_quietly(generation, error))
            self._renewals.add(task)
            task.add_done_callback(self._renewals.discard)

    async def _renew_quietly(self, generation: int, error: BaseException) -> None:
        try:
            await self._renew(generation, error)
        except Exception as failure:  # the broker is still away; sends will say so
            log.warning("%s: new producer not started: %s", self._client_id, failure)

    async def _renew(self, generation: int, error: BaseException) -> None:
        async with self._lock:
            if generation != self._generation:
                return  # another failed record renewed it already
            log.warning(
                "%s: idempotent producer lost its sequence (%s); starting a new one",
                self._client_id,
                type(error).__name__,
            )
            new = self._factory()
            try:
                await new.start()
            except BaseException:
                # Broker still away: keep the old one, the next failure tries again.
                with contextlib.suppress(Exception):
                    await new.stop()
                raise
            old, self._producer = self._producer, new
            self._generation += 1
            KAFKA_PRODUCER_RENEWALS.labels(self._client_id).inc()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), timeout=10)
