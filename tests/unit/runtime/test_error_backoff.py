from __future__ import annotations

import time
from typing import Any

import pytest

from terrain_runtime.consumer import ErrorBackoff


async def test_failures_wait_longer_each_time_and_success_resets() -> None:
    policy = ErrorBackoff(base_s=0.01, max_s=0.04)

    async def failing(_: Any) -> None:
        raise RuntimeError("bug")

    async def fine(msg: Any) -> Any:
        return msg

    waits = []
    for _ in range(4):
        started = time.perf_counter()
        with pytest.raises(RuntimeError):
            await policy(None, context=None).consume_scope(failing, "m")
        waits.append(time.perf_counter() - started)
    assert [policy.base_s * 2**i for i in range(3)] == pytest.approx([0.01, 0.02, 0.04])
    assert policy.delay_s() == 0.04  # capped
    assert waits[0] >= 0.01
    assert await policy(None, context=None).consume_scope(fine, "m") == "m"
    assert policy.consecutive_failures == 0
