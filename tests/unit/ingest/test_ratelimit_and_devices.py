from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from ingest.devices import DeviceDirectory, DirectoryUnavailable
from ingest.logic import Device
from ingest.ratelimit import RateLimiter
from terrain_contracts.markets import Market


def test_burst_then_refill() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.acquire("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a", now=0.0) >= 1.0
    assert limiter.acquire("b", now=0.0) == 0.0  # other devices are not affected
    assert limiter.acquire("a", now=1.5) == 0.0


async def test_directory_caches_then_sees_revocation() -> None:
    device = Device(UUID(int=1), Market.ML, "x")
    answers: list[Device | None] = [device, None]
    calls = 0

    async def lookup(token: str) -> Device | None:
        nonlocal calls
        calls += 1
        return answers[min(calls - 1, 1)]

    directory = DeviceDirectory(lookup, ttl_s=0.05)
    assert await directory.authenticate("t") == device
    assert await directory.authenticate("t") == device
    assert calls == 1
    await asyncio.sleep(0.06)
    assert await directory.authenticate("t") is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_directory_serves_what_it_last_knew_while_the_database_is_away() -> None:
    known = Device(UUID(int=1), Market.SN, "known")
    answers: dict[str, Device | None] = {"known": known, "revoked": None}
    away = False

    async def lookup(token: str) -> Device | None:
        if away:
            raise DirectoryUnavailable("ConnectionRefusedError")
        return answers.get(token)

    clock = Clock()
    directory = DeviceDirectory(lookup, ttl_s=5, stale_s=60, clock=clock)
    assert await directory.authenticate("known") == known
    assert await directory.authenticate("revoked") is None
    away, clock.now = True, 30.0
    # Past the TTL, within the stale window: the last answer, revocations included.
    assert await directory.authenticate("known") == known
    assert await directory.authenticate("revoked") is None
    with pytest.raises(DirectoryUnavailable):  # never seen: nothing to fall back on
        await directory.authenticate("stranger")
    clock.now = 61.0
    with pytest.raises(DirectoryUnavailable):  # too old to trust
        await directory.authenticate("known")
    away = False
    assert await directory.authenticate("known") == known
