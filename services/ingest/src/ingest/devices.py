"""Device authentication with a short-lived cache, so a revoked token stops within seconds
while a busy device does not cost a database round trip per request.

The field keeps sending when PostgreSQL does not answer (a restart, a failover): Kafka is
the only thing a 202 depends on. A device seen before is then served from what the cache
last knew, for up to ``stale_s``; a device never seen gets a 503 with Retry-After, and its
app keeps the visit in its outbox.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ingest.logic import Device
from ingest.repository import hash_token

Lookup = Callable[[str], Awaitable[Device | None]]


class DirectoryUnavailable(Exception):
    """The device directory could not be read; raised by a lookup, and by authenticate
    when nothing usable is cached."""


class DeviceDirectory:
    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_s: float,
        stale_s: float = 3600.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._stale_s = stale_s
        self._max_entries = max_entries
        self._clock = clock
        # Keyed by the token's hash: no bearer token sits in memory longer than a request.
        # The value: when it was looked up, and the answer.
        self._cache: dict[bytes, tuple[float, Device | None]] = {}

    async def authenticate(self, token: str) -> Device | None:
        key = hash_token(token)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        try:
            device = await self._lookup(token)
        except DirectoryUnavailable:
            if hit is not None and now - hit[0] < self._stale_s:
                return hit[1]
            raise
        if len(self._cache) >= self._max_entries:
            self._cache.clear()  # a flood of random tokens must not grow memory without bound
        self._cache[key] = (now, device)
        return device
