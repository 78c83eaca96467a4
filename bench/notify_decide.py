"""Notify's CPU per enriched record in its decode and decide stages (no Kafka, no
PostgreSQL): a field day's enriched records as enrich publishes them, one urgent in 20,
each with its trace context, through ``notify.stages.decode`` and ``decide_alerts`` in
batches of 500, with notify's tracing at a sampling ratio and every recorded span encoded
as the OTLP exporter would.

    uv run python -m bench.notify_decide                 # 20,000 records, ratio 1.0
    uv run python -m bench.notify_decide --ratio 0.01
    uv run python -m bench.notify_decide --smoke         # 1,000; checks that it runs
"""

from __future__ import annotations

import argparse
import random
from itertools import islice
from uuid import uuid4

from bench.kit.results import load_average
from bench.kit.submissions import TEMPLATES, field_documents
from bench.kit.tracing import cpu_us, traced
from notify.rules import load_ruleset
from notify.stages import Received, decide_alerts, decode
from terrain_contracts.headers import CONTENT_TYPE, JSON, TRACEPARENT
from terrain_runtime.dlq import Failure, SourceRecord
from terrain_testkit.factories import stored_record

BATCH = 500
URGENT_EVERY = 20


def enriched_records(count: int, ratio: float) -> list[SourceRecord]:
    """``count`` distinct enriched records from ``TEMPLATES`` visits of the field day, their
    trace sampled upstream as the services would: at ``ratio``, and every urgent one."""
    rng = random.Random(7)
    templates: list[tuple[str, bytes, bool]] = []
    for n, document in enumerate(islice(field_documents(7), TEMPLATES)):
        urgent = n % URGENT_EVERY == 0
        document["feedback"]["urgent"] = urgent
        if not urgent:  # calm: no other rule fires either (they need satisfaction <= 2)
            document["feedback"]["satisfaction"] = max(document["feedback"]["satisfaction"], 3)
        key, value = stored_record(document)
        templates.append((key.decode(), value, urgent))
    records = []
    for n in range(count):
        old_id, value, urgent = templates[n % TEMPLATES]
        new_id = str(uuid4())
        sampled = "01" if urgent or rng.random() < ratio else "00"
        traceparent = f"00-{uuid4().hex}-{uuid4().hex[:16]}-{sampled}".encode()
        records.append(
            SourceRecord(
                "enriched",
                0,
                n,
                new_id.encode(),
                value.replace(old_id.encode(), new_id.encode()),
                ((CONTENT_TYPE, JSON.encode()), (TRACEPARENT, traceparent)),
            )
        )
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--ratio", type=float, default=1.0)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    count = 1_000 if args.smoke else args.count
    provider, exporter = traced("notify", args.ratio, queue=2048)
    records = enriched_records(count, args.ratio)
    ruleset = load_ruleset()
    alerted = 0

    def run() -> None:
        nonlocal alerted
        for start in range(0, count, BATCH):
            decoded = [decode(r) for r in records[start : start + BATCH]]
            received = [d for d in decoded if isinstance(d, Received)]
            assert len(received) == len(decoded), [d for d in decoded if isinstance(d, Failure)]
            alerts, failures = decide_alerts(received, ruleset)
            assert not failures, failures
            alerted += len(alerts)

    run()  # warm-up: imports, caches, the first batches of the processor
    provider.force_flush()
    alerted, exporter.exported = 0, 0
    per_record = cpu_us(provider, count, run)
    print(
        f"notify decode + decide: {per_record:.1f} µs CPU per enriched record"
        f" ({count:,} records, {alerted:,} alerted, {exporter.exported:,} spans exported,"
        f" ratio {args.ratio}); load average {load_average()}"
    )


if __name__ == "__main__":
    main()
