"""The producer replaces itself when aiokafka's idempotent producer dies of a lost
sequence. The real broker restart is in tests/reliability; here, aiokafka's side is a
stand-in that fails the way aiokafka does (a failed future, then every send raising)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from terrain_runtime.kafka import DurableProducer


class StandIn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[bytes] = []
        self.dead: BaseException | None = None
        self.started = self.stopped = False
        self.refuse_start = False

    async def start(self) -> None:
        if self.refuse_start:
            raise KafkaConnectionError("broker away")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[Any]:
        if self.dead is not None:
            raise self.dead
        self.sent.append(value)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(topic)
        return future


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
