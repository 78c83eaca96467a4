"""Consumer lag from committed offsets: the commit clock, and a monitor that survives its own
failures (the Kafka reads are replaced by plain functions; the real ones are tested in
tests/integration/test_consumer_stuck.py)."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from terrain_runtime.lag import CommitClock, ConsumerLagMonitor, Partition, PartitionOffsets

RAW = "tunit.terrain.submissions.raw.v1"


def test_lag_counts_from_the_commit_or_from_the_first_record_without_one() -> None:
    assert PartitionOffsets(committed=40, beginning=0, end=50).lag == 10
    # Never committed: the group will start at the first record still in the log.
    assert PartitionOffsets(committed=None, beginning=5, end=50).lag == 45
    # Committed before records expired: those are gone, not waiting.
    assert PartitionOffsets(committed=3, beginning=20, end=50).lag == 30
    assert PartitionOffsets(committed=50, beginning=0, end=50).lag == 0


def test_commit_age_grows_while_lag_waits_and_resets_when_the_commit_moves() -> None:
    clock = CommitClock()
    p0: Partition = (RAW, 0)

    def at(now: float, committed: int | None, end: int) -> tuple[int, float]:
        state = clock.observe({p0: PartitionOffsets(committed, 0, end)}, now)[p0]
        return state.lag, state.commit_age_s

    assert at(0, 10, 10) == (0, 0.0)  # caught up
    # Records arrive at a consumer that does not commit: the age counts from when it was
    # last caught up, not from its last commit hours ago.
    assert at(5, 10, 30) == (20, 0.0)
    assert at(10, 10, 30) == (20, 5.0)
    assert at(65, 10, 35) == (25, 60.0)
    # A commit that moves restarts the clock, even with lag left.
    assert at(70, 20, 35) == (15, 0.0)
    assert at(75, 20, 35) == (15, 5.0)
    assert at(80, 35, 35) == (0, 0.0)


def test_unreadable_offsets_keep_the_last_lag_and_let_the_age_grow() -> None:
    clock = CommitClock()
    stuck: Partition = (RAW, 1)
    idle: Partition = (RAW, 2)
    clock.observe({stuck: PartitionOffsets(0, 0, 7), idle: PartitionOffsets(3, 0, 3)}, 100)
    later = clock.unobserved(400)
    assert later[stuck].lag == 7 and later[stuck].commit_age_s == 300
    assert later[idle].lag == 0 and later[idle].commit_age_s == 0


async def test_the_monitor_logs_its_failures_and_goes_on_measuring() -> None:
    now = [0.0]
    answers: list[object] = [
        {(RAW, 3): PartitionOffsets(None, 0, 4)},
        ConnectionError("broker away"),
        ConnectionError("broker away"),
        {(RAW, 3): PartitionOffsets(4, 0, 4)},
    ]
    calls = 0

    async def read() -> dict[Partition, PartitionOffsets]:
        nonlocal calls
        answer = answers[min(calls, len(answers) - 1)]
        calls += 1
        now[0] += 10
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return answer

    monitor = ConsumerLagMonitor(
        service="unit-lag", read=read, interval_s=0.001, clock=lambda: now[0]
    )
    labels = {"service": "unit-lag", "topic": "submissions_raw", "partition": "3"}

    def gauge(name: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    await monitor.check()
    assert gauge("terrain_consumer_lag") == 4
    await monitor.check()  # fails: no exception, the age goes on
    assert gauge("terrain_consumer_lag") == 4
    assert gauge("terrain_consumer_commit_age_seconds") == 10

    # As a task: the failure does not end it, the next reads catch up.
    monitor.start()
    try:
        for _ in range(500):
            if calls >= 4:
                break
            await asyncio.sleep(0.01)
    finally:
        await monitor.stop()
    assert calls >= 4
    assert gauge("terrain_consumer_lag") == 0
    assert gauge("terrain_consumer_commit_age_seconds") == 0
