"""Device authentication with a short-lived cache, so a revoked token stops within seconds
while a busy device does not cost a database round trip per request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ingest.logic import Device
from ingest.repository import hash_token

Lookup = Callable[[str], Awaitable[Device | None]]


class DeviceDirectory:
    def __init__(self, lookup: Lookup, *, ttl_s: float, max_entries: int = 100_000) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        # Keyed by the token's hash: no bearer token sits in memory longer than a request.
        self._cache: dict[bytes, tuple[float, Device | None]] = {}

    async def authenticate(self, token: str) -> Device | None:
        key = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        device = await self._lookup(token)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()  # a flood of random tokens must not grow memory without bound
        self._cache[key] = (now + self._ttl_s, device)
        return device
