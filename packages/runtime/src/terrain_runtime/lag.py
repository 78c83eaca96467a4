"""Consumer lag measured from outside the consumer: committed offsets against end offsets.

Lag read from the batches a consumer finishes is only ever updated by a consumer that
finishes batches: one that fails on the same batch again and again, or waits forever on a
lock, shows the last good value and alerts nobody. So each consumer service runs a monitor
that, every few seconds, reads what ``kafka-consumer-groups --describe`` reads: the group's
committed offsets (OffsetFetch, from an admin client) and the partitions' first and end
offsets (ListOffsets, from a consumer that belongs to no group). It never joins the group,
so it cannot trigger a rebalance, and it keeps measuring while the handler is stuck.

Besides the lag, it keeps, per partition, the age of the last commit while there is lag:
a consumer that is alive but cannot progress has lag that does not shrink and a commit
that does not move, and that age is what ``TerrainConsumerStuck`` watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from terrain_contracts.topics import TopicSpec
from terrain_runtime.kafka import topic_id
from terrain_runtime.metrics import CONSUMER_COMMIT_AGE, CONSUMER_LAG
from terrain_runtime.settings import ConsumerSettings

log = logging.getLogger(__name__)

Partition: TypeAlias = tuple[str, int]  # (topic name, partition number)


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """One partition as the broker sees it for one group."""

    committed: int | None  # None: the group has never committed on this partition
    beginning: int  # first offset still in the log (retention moves it)
    end: int  # offset the next record will get

    @property
    def lag(self) -> int:
        """Records the group still has to commit. Without a commit the group starts at the
        first record (``auto_offset_reset=earliest``); records gone by retention no longer
        count, the consumer will never see them."""
        start = self.beginning if self.committed is None else max(self.committed, self.beginning)
        return max(0, self.end - start)


@dataclass(frozen=True, slots=True)
class Progress:
    lag: int
    commit_age_s: float


@dataclass(frozen=True, slots=True)
class _Seen:
    committed: int | None
    lag: int
    since: float  # when the commit last moved, or the partition was last caught up


class CommitClock:
    """When each partition's committed offset last moved while it had lag (pure: the
    caller passes the offsets and the time)."""

    def __init__(self) -> None:
        self._seen: dict[Partition, _Seen] = {}

    def observe(
        self, offsets: Mapping[Partition, PartitionOffsets], now: float
    ) -> dict[Partition, Progress]:
        progress: dict[Partition, Progress] = {}
        for partition, current in offsets.items():
            lag = current.lag
            before = self._seen.get(partition)
            # A commit that moved, a partition caught up, or one seen for the first time
            # starts the clock again: the age counts how long lag has waited without any
            # commit, not how long a quiet partition went without records.
            moved = (
                before is None
                or lag == 0
                or before.lag == 0
                or before.committed != current.committed
            )
            since = now if moved or before is None else before.since
            self._seen[partition] = _Seen(current.committed, lag, since)
            progress[partition] = Progress(lag, 0.0 if lag == 0 else now - since)
        return progress

    def unobserved(self, now: float) -> dict[Partition, Progress]:
        """What is known when the offsets could not be read: the lags last seen, and commit
        ages that keep growing. A monitor that cannot see must not look like a consumer
        that is fine; when Kafka is away, the consumer cannot commit either."""
        return {
            partition: Progress(seen.lag, 0.0 if seen.lag == 0 else now - seen.since)
            for partition, seen in self._seen.items()
        }


class GroupOffsets:
    """Reads a group's committed offsets and its topics' first and end offsets, with an
    admin client and a consumer of its own (``group_id=None``: it joins nothing)."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        timeout_s: float,
    ) -> None:
        self.group_id = group_id
        self.topics = list(topics)
        self._bootstrap_servers = bootstrap_servers
        self._timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def read(self) -> dict[Partition, PartitionOffsets]:
        # ListOffsets waits forever for a partition that does not exist: bounded here.
        return await asyncio.wait_for(self._read(), timeout=self._timeout_s)

    async def _read(self) -> dict[Partition, PartitionOffsets]:
        admin, consumer = await self._clients()
        described = await admin.describe_topics(self.topics)
        partitions = [
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            if topic["error_code"] == 0
            for p in topic["partitions"]
        ]
        if not partitions:
            missing = sorted(t["topic"] for t in described if t["error_code"] != 0)
            raise LookupError(f"no partitions found for {missing or self.topics}")
        committed = await admin.list_consumer_group_offsets(self.group_id, partitions=partitions)
        beginning = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        offsets: dict[Partition, PartitionOffsets] = {}
        for tp in partitions:
            commit = committed.get(tp)
            offsets[(tp.topic, tp.partition)] = PartitionOffsets(
                committed=commit.offset if commit is not None and commit.offset >= 0 else None,
                beginning=beginning[tp],
                end=end[tp],
            )
        return offsets

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap_servers,
                client_id=f"{self.group_id}-lag-monitor",
                request_timeout_ms=int(self._timeout_s * 1000),
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                client_id=f"{self.group_id}-lag-monitor",
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=int(self._timeout_s * 1000),
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                # Kafka away at start: nothing half-open is kept, the next read tries again.
                await _close(admin, consumer)
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        if self._admin is not None and self._consumer is not None:
            await _close(self._admin, self._consumer)
        self._admin = self._consumer = None


async def _close(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        await consumer.stop()
    with contextlib.suppress(Exception):
        await admin.close()


class ConsumerLagMonitor:
    """A task, for the life of a consumer service, that sets ``terrain_consumer_lag`` and
    ``terrain_consumer_commit_age_seconds`` of its group every ``interval_s``. Its own
    failures (Kafka away, a timeout) are logged and retried at the next tick; they never
    stop the service."""

    def __init__(
        self,
        *,
        service: str,
        read: Callable[[], Awaitable[Mapping[Partition, PartitionOffsets]]],
        interval_s: float,
        close: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.interval_s = interval_s
        self._read = read
        self._close = close
        self._clock = clock
        self._commits = CommitClock()
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._close is not None:
            await self._close()

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

    async def check(self) -> dict[Partition, Progress]:
        """One measurement, published to the gauges; never raises (but lets cancellation
        through)."""
        try:
            offsets = await self._read()
        except Exception as error:
            self._failures += 1
            # The first failure with its traceback, then one line a minute or so: a broker
            # away for an hour must not write 720 tracebacks.
            if self._failures == 1 or self._failures % max(1, round(60 / self.interval_s)) == 0:
                log.warning(
                    "%s: consumer lag not measured (%d in a row): %s: %s",
                    self.service,
                    self._failures,
                    type(error).__name__,
                    error,
                    exc_info=self._failures == 1,
                )
            progress = self._commits.unobserved(self._clock())
        else:
            if self._failures:
                log.info("%s: consumer lag measured again", self.service)
            self._failures = 0
            progress = self._commits.observe(offsets, self._clock())
        for (topic, partition), state in progress.items():
            labels = (self.service, topic_id(topic), str(partition))
            CONSUMER_LAG.labels(*labels).set(state.lag)
            CONSUMER_COMMIT_AGE.labels(*labels).set(state.commit_age_s)
        return progress


def consumer_lag_monitor(
    settings: ConsumerSettings, *, service: str, source: TopicSpec
) -> ConsumerLagMonitor:
    """The monitor of the service's group on its ``source`` topic, reading Kafka with
    clients of its own: lag from the group's committed offsets, measured whether batches
    succeed or not."""
    interval_s = settings.consumer_lag_interval_s
    offsets = GroupOffsets(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group_id,
        topics=[settings.topic(source)],
        # A tick that hangs must not hide the next ones for long.
        timeout_s=max(5.0, 2 * interval_s),
    )
    return ConsumerLagMonitor(
        service=service, read=offsets.read, close=offsets.close, interval_s=interval_s
    )
