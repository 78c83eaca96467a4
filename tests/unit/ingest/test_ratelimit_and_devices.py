from __future__ import annotations

from uuid import UUID

from ingest.devices import DeviceDirectory
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
    import asyncio

    await asyncio.sleep(0.06)
    assert await directory.authenticate("t") is None
