"""Per-device token buckets: one device flooding ingest cannot starve the others."""

from __future__ import annotations

import math
import time


class RateLimiter:
    def __init__(self, *, per_minute: int, burst: int, max_devices: int = 200_000) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = float(burst)
        self._max_devices = max_devices
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, device: str, cost: float = 1.0, now: float | None = None) -> float:
        """0 when allowed; otherwise the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(device, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        if tokens >= cost:
            if len(self._buckets) >= self._max_devices:
                self._buckets.clear()
            self._buckets[device] = (tokens - cost, now)
            return 0.0
        self._buckets[device] = (tokens, now)
        return max(1.0, math.ceil((cost - tokens) / self.rate_per_s))
