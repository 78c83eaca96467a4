"""The producer replaces itself when aiokafka's idempotent producer dies of a lost
sequence. The real broker restart is in tests/reliability; here, aiokafka's side is a
stand-in that fails the way aiokafka does (a failed future, then every send raising)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
)

from terrain_runtime.producer import DurableProducer, Record


class StandIn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[bytes] = []
        self.dead: BaseException | None = None
        self.started = self.stopped = False
        self.refuse_start = False
        self.partitions: list[int | None] = []
        self.batches: list[tuple[int, list[bytes]]] = []
        self.batch_bytes = 1000

    async def start(self) -> None:
        if self.refuse_start:
            raise KafkaConnectionError("broker away")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **options: Any) -> asyncio.Future[Any]:
        if self.dead is not None:
            raise self.dead
        self.sent.append(value)
        self.partitions.append(options.get("partition"))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(topic)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(12))

    def create_batch(self) -> Batch:
        return Batch(self.batch_bytes)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if self.dead is not None:
            raise self.dead
        assert batch.closed, "a complete batch is closed: it must not linger"
        self.batches.append((partition, batch.values))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(partition)
        return future


class Batch:
    """aiokafka's BatchBuilder as the producer uses it: append until full (None), close."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: list[bytes] = []
        self.closed = False

    def append(self, *, timestamp: None, key: bytes | None, value: bytes, headers: Any) -> Any:
        if self.closed or (self.values and self.size() + len(value) > self.limit):
            return None
        self.values.append(value)
        return object()

    def size(self) -> int:
        return sum(len(v) for v in self.values)

    def record_count(self) -> int:
        return len(self.values)

    def close(self) -> None:
        self.closed = True


def producers() -> tuple[list[StandIn], Any]:
    made: list[StandIn] = []

    def factory() -> Any:
        made.append(StandIn(f"p{len(made)}"))
        return made[-1]

    return made, factory


async def test_a_failed_record_with_a_lost_sequence_replaces_the_producer() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.start()
    first = made[0]
    # aiokafka fails the records in flight, then refuses every later send.
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def failing_send(*_: Any, **__: Any) -> asyncio.Future[Any]:
        return failed

    first.send = failing_send  # type: ignore[method-assign]
    pending = await producer.send("t", b"a")
    failed.set_exception(OutOfOrderSequenceNumber())
    with pytest.raises(OutOfOrderSequenceNumber):
        await pending
    for _ in range(100):  # the renewal runs in the background
        if first.stopped:
            break
        await asyncio.sleep(0)
    assert producer.generation == 1 and first.stopped and made[1].started
    assert await (await producer.send("t", b"b")) == "t"
    assert made[1].sent == [b"b"]
    await producer.stop()


async def test_a_send_refused_for_a_lost_sequence_renews_and_goes_through() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.start()
    made[0].dead = OutOfOrderSequenceNumber()
    assert await (await producer.send("t", b"a")) == "t"
    assert producer.generation == 1 and made[1].sent == [b"a"]


async def test_while_the_broker_is_away_the_old_producer_stays_and_the_error_is_raised() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.start()
    made[0].dead = OutOfOrderSequenceNumber()

    def refusing() -> Any:
        made.append(StandIn("refused"))
        made[-1].refuse_start = True
        return made[-1]

    producer._factory = refusing  # the broker is still restarting
    with pytest.raises(KafkaConnectionError):
        await producer.send("t", b"a")
    assert producer.generation == 0
    producer._factory = factory  # it is back
    assert await (await producer.send("t", b"b")) == "t"
    assert producer.generation == 1


async def test_a_batch_goes_whole_to_one_partition_and_the_next_batch_to_the_next() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.start()
    first = await producer.send_batch("t", [(b"k1", b"a", []), (b"k2", b"b", [])])
    second = await producer.send_batch("t", [(b"k3", b"c", [])])
    assert (await first, await second) == (0, 1)
    assert made[0].batches == [(0, [b"a", b"b"]), (1, [b"c"])]


async def test_records_past_a_full_batch_go_in_another_on_the_next_partition() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    records: list[Record] = [(None, bytes(400), []) for _ in range(5)]
    assert await (await producer.send_batch("t", records)) == [0, 1, 2]
    assert [(p, len(values)) for p, values in made[0].batches] == [(0, 2), (1, 2), (2, 1)]


async def test_a_record_larger_than_a_request_is_refused_before_it_leaves() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test", max_record_bytes=1100)
    with pytest.raises(MessageSizeTooLargeError):
        await producer.send_batch("t", [(None, b"small", []), (None, bytes(1200), [])])
    # As with ``send``, what came before is on its way: the answer is a 503 all the same.
    assert made[0].batches == [(0, [b"small"])]


async def test_a_batch_refused_for_a_lost_sequence_renews_and_goes_through() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.start()
    made[0].dead = OutOfOrderSequenceNumber()
    assert await (await producer.send_batch("t", [(None, b"a", [])])) == 1
    assert producer.generation == 1 and made[1].batches == [(1, [b"a"])]


async def test_a_failed_batch_with_a_lost_sequence_replaces_the_producer() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.start()
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def failing_send_batch(*_: Any, **__: Any) -> asyncio.Future[Any]:
        return failed

    made[0].send_batch = failing_send_batch  # type: ignore[method-assign]
    pending = await producer.send_batch("t", [(None, b"a", [])])
    failed.set_exception(OutOfOrderSequenceNumber())
    with pytest.raises(OutOfOrderSequenceNumber):
        await pending
    for _ in range(100):  # the renewal runs in the background
        if made[0].stopped:
            break
        await asyncio.sleep(0)
    assert producer.generation == 1 and made[1].started


async def test_records_with_one_affinity_share_its_partition_whole_batches_included() -> None:
    made, factory = producers()
    producer = DurableProducer(factory, client_id="test")
    await producer.send("t", b"a", key=b"k", affinity=27)
    await producer.send_batch("t", [(None, b"b", []), (None, b"c", [])], affinity=27)
    await producer.send("t", b"d", key=b"k")  # the key chooses: aiokafka hashes it
    assert made[0].partitions == [3, None]
    assert made[0].batches == [(3, [b"b", b"c"])]
