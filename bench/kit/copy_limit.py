"""PostgreSQL's own limit, measured in the same run as the service: one binary COPY of the
very rows enrich would store, into a fresh table shaped and indexed like
``terrain.submissions``."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from bench.kit.submissions import RawRecord
from enrich.logic import Decoded, decode, plan_batch
from enrich.places import load_gazetteer
from enrich.repository import SUBMISSION_COLUMNS, submission_values
from terrain_runtime.dlq import SourceRecord


def submission_tuples(
    records: list[RawRecord], histories: dict[str, Any] | None = None
) -> list[tuple[object, ...]]:
    """The rows enrich would store for ``records``, in ``SUBMISSION_COLUMNS`` order; the
    sealed number, which goes to another table, left out."""
    decoded = [decode(SourceRecord("raw", 0, i, k, v)) for i, (k, v) in enumerate(records)]
    rows, _ = plan_batch(
        [d for d in decoded if isinstance(d, Decoded)],
        gazetteer=load_gazetteer(),
        segment_histories=histories or {},
    )
    return [submission_values(row)[:-1] for row in rows]


async def copy_limit(
    url: str, records: list[RawRecord], histories: dict[str, Any] | None = None
) -> dict[str, float]:
    """Seconds and rows/s of one binary COPY of ``records`` as enrich shapes them."""
    tuples = submission_tuples(records, histories)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "CREATE TABLE terrain.bench_copy (LIKE terrain.submissions INCLUDING ALL)"
        )
        started = time.monotonic()
        await connection.copy_records_to_table(
            "bench_copy", schema_name="terrain", records=tuples, columns=list(SUBMISSION_COLUMNS)
        )
        seconds = time.monotonic() - started
    finally:
        await connection.close()
    return {"seconds": seconds, "per_s": len(tuples) / seconds}
