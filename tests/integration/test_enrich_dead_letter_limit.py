"""A consumer that fails on everything stops instead of draining the topic into the DLQ."""

from __future__ import annotations

import asyncio
from typing import Any

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.topics import SUBMISSIONS_RAW
from tests.helpers import fetchval, produce


async def test_dead_letter_limit_stops_the_consumer(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    raw = SUBMISSIONS_RAW.name(namespace)
    await produce(raw, [(f"junk{i}".encode(), b"\xff not json") for i in range(40)])
    app = create_app(EnrichSettings(**settings_kwargs, dlq_max_consecutive=10, dlq_window=20))
    task = asyncio.create_task(app.run(sleep_time=0.02))
    try:
        # Nobody asks it to stop: the dead-letter budget does.
        await asyncio.wait_for(asyncio.shield(task), timeout=60)
    finally:
        if not task.done():
            app.exit()
            await asyncio.wait_for(task, timeout=30)
    failed = await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.failed_submissions WHERE source_topic = $1",
        raw,
    )
    # Every record of the batch that hit the limit is kept with its reason; the rest of
    # the topic waits, uncommitted, for someone to look at the cause.
    assert 10 <= failed <= 40
