"""What head sampling saves: CPU µs per submission of the spans each service makes for it,
at sampling ratios, with the services' own code (ingest's ``accept submission``, enrich's
``enrich submission`` and ``store submission``, notify's decide stage with its ``decide
alerts``), each continuing the trace context the previous one passed on, and every
recorded span encoded as the OTLP exporter would (bench.kit.tracing). One urgent visit in
20, which every ratio keeps. Each ratio runs in a process of its own (a process has one
tracer provider); "off" is no tracer provider at all, the floor below any ratio.

    uv run python -m bench.sampling                  # 20,000 submissions a ratio
    uv run python -m bench.sampling --smoke          # 1,000; checks that it runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from itertools import islice

from bench.kit.results import aligned_table, load_average
from bench.kit.submissions import TEMPLATES, field_documents
from bench.kit.tracing import cpu_us, traced
from enrich.logic import SubmissionRow
from enrich.stages import _submission_spans
from ingest.routes import _submission_span
from notify.facts import read_alert_facts
from notify.rules import load_ruleset
from notify.stages import Received, decide_alerts
from terrain_contracts.messages import Enrichment, SubmissionReceivedV1, SubmissionStoredV1
from terrain_runtime.dlq import SourceRecord
from terrain_runtime.pipeline import StoreTimes
from terrain_runtime.tracing import headers_for
from terrain_testkit.factories import raw_envelope

RATIOS = ("1.0", "0.1", "0.01", "off")
URGENT_EVERY = 20
BATCH = 500


def measure(ratio: str, count: int) -> dict[str, float]:
    """The figures of one ratio, in this process."""
    off = ratio == "off"
    provider, exporter = (None, None) if off else traced("bench", float(ratio), 2048)
    envelopes = []
    for n, document in enumerate(islice(field_documents(5), min(count, TEMPLATES))):
        document["feedback"]["urgent"] = n % URGENT_EVERY == 0
        if n % URGENT_EVERY:
            document["feedback"]["satisfaction"] = max(document["feedback"]["satisfaction"], 3)
        envelopes.append(raw_envelope(document))
    envelopes = [envelopes[n % len(envelopes)] for n in range(count)]
    now = datetime.now(UTC)
    times = StoreTimes(*(3 * (int(now.timestamp() * 1e9),)))
    carried: list[dict[str, str]] = []
    rows: list[SubmissionRow] = []
    received: list[Received] = []

    def ingest() -> None:
        for envelope in envelopes:
            span = _submission_span(envelope, own_trace=True)
            carried.append(headers_for(span))
            span.end()

    def enrich() -> None:
        for row in rows:
            span = _submission_spans(row, False, times)
            carried.append(headers_for(span))
            span.end()

    def notify() -> None:
        for start in range(0, count, BATCH):
            decide_alerts(received[start : start + BATCH], ruleset)

    figures = {"ingest": cpu_us(provider, count, ingest)}
    rows = [
        SubmissionRow(
            received=e,
            enrichment=Enrichment(),
            payload_sha256="v2:0",
            record=SourceRecord("raw", 0, n, None, b"", _encoded(h)),
            document="{}",
        )
        for n, (e, h) in enumerate(zip(envelopes, carried, strict=True))
    ]
    carried = []
    figures["enrich"] = cpu_us(provider, count, enrich)
    ruleset = load_ruleset()
    values = [_stored(e, now) for e in envelopes[:TEMPLATES]]
    received = [
        Received(
            SourceRecord("enriched", 0, n, None, values[n % len(values)], _encoded(h)),
            read_alert_facts(values[n % len(values)]),
        )
        for n, h in enumerate(carried)
    ]
    figures["notify"] = cpu_us(provider, count, notify)
    figures["exported"] = exporter.exported if exporter else 0
    return figures


def _encoded(headers: dict[str, str]) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, v.encode()) for k, v in headers.items())


def _stored(envelope: SubmissionReceivedV1, now: datetime) -> bytes:
    """The enriched record of ``envelope``, as enrich publishes it."""
    stored = SubmissionStoredV1(
        submission_id=envelope.submission_id,
        market=envelope.submission.agent.market,
        received_at=now,
        stored_at=now,
        enrichment=Enrichment(),
        submission=envelope.submission,
    )
    return stored.model_dump_json().encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--ratio", help=argparse.SUPPRESS)  # one ratio, in a child process
    args = parser.parse_args(argv)
    count = 1_000 if args.smoke else args.count
    if args.ratio:
        print(json.dumps(measure(args.ratio, count)))
        return
    started = load_average()
    rows = []
    for ratio in RATIOS:
        child = [sys.executable, "-m", "bench.sampling", "--ratio", ratio, "--count", str(count)]
        figures = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
        total = figures["ingest"] + figures["enrich"] + figures["notify"]
        rows.append(
            [ratio, *(f"{figures[s]:.1f}" for s in ("ingest", "enrich", "notify")),
             f"{total:.1f}", f"{figures['exported']:,.0f}"]
        )  # fmt: skip
    header = ["ratio", "ingest µs", "enrich µs", "notify µs", "total µs", "spans exported"]
    print(f"CPU per submission of its spans ({count:,} submissions, 1 urgent in {URGENT_EVERY})")
    print("\n".join(aligned_table(header, rows)))
    print(f"load average: {started} at start, {load_average()} at end")


if __name__ == "__main__":
    main()
