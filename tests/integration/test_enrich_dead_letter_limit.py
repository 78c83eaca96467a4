"""A consumer that fails on everything stops instead of draining the topic into the DLQ."""

from __future__ import annotations

from typing import Any

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_testkit.database import fetchval
from terrain_testkit.topics import produce_junk, until_it_stops


async def test_dead_letter_limit_stops_the_consumer(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    raw = SUBMISSIONS_RAW.name(namespace)
    await produce_junk(raw, 40)
    # Nobody asks it to stop: the dead-letter budget does.
    await until_it_stops(
        create_app(EnrichSettings(**settings_kwargs, dlq_max_consecutive=10, dlq_window=20))
    )
    failed = await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.failed_submissions WHERE source_topic = $1",
        raw,
    )
    # Every record of the batch that hit the limit is kept with its reason; the rest of
    # the topic waits, uncommitted, for someone to look at the cause.
    assert 10 <= failed <= 40
