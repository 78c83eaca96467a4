"""Sampling at ratio 0 keeps what SREs are asked about: the three services export to an
in-test OTLP receiver and sample no ordinary trace, yet an urgent visit is exported from
ingest's submission span to the webhook delivery, in one trace, and a conflicting resend
is exported as its dead letter, in its own trace; a calm visit exports nothing, and
`terrain trace` still finds its trace id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from ingest.repository import create_device
from terrain_cli.main import app as cli
from terrain_contracts.markets import Market
from terrain_testkit.database import eventually, fetchval
from terrain_testkit.factories import country_managers, field_submission
from terrain_testkit.processes import Stack, post
from terrain_testkit.sinks import OtlpReceiver, WebhookSink


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running_receiver:
        yield running_receiver


@pytest.fixture
def stack_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "TERRAIN_OTEL_SAMPLE_RATIO": "0",
    }


def spans_of(receiver: OtlpReceiver, submission_id: str) -> list[dict[str, Any]]:
    """Every exported span of the trace(s) holding a span of this submission."""
    traces = {
        s["trace_id"]
        for s in receiver.spans
        if s["attributes"].get("terrain.submission_id") == submission_id
    }
    return [s for s in receiver.spans if s["trace_id"] in traces]


async def stored_trace_id(url: str, submission_id: str) -> str | None:
    found: str | None = await fetchval(
        url, "SELECT trace_id FROM terrain.submissions WHERE submission_id = $1::uuid",
        submission_id,
    )  # fmt: skip
    return found


async def test_at_ratio_zero_urgent_and_failed_submissions_are_still_exported(
    stack: Stack, database_url: str, receiver: OtlpReceiver
) -> None:
    urgent = field_submission(feedback__urgent=True, feedback__satisfaction=4)
    calm = field_submission(
        feedback__urgent=False, feedback__satisfaction=5, feedback__verbatim="Tout va bien."
    )
    # The same visit sent again with other content: a conflict, dead-lettered by enrich.
    changed = {**calm, "campaign_id": calm["campaign_id"] + "-edited"}
    with WebhookSink() as sink:
        async with country_managers(database_url, sink):
            connection = await asyncpg.connect(database_url)
            try:
                _, token = await create_device(connection=connection, market=Market.SN, label="t")
            finally:
                await connection.close()
            for body in (urgent, calm):
                response = await asyncio.to_thread(post, stack, "/v1/submissions", token, body)
                assert response.status_code == 202
            calm_trace = await eventually(
                lambda: stored_trace_id(database_url, calm["submission_id"]), timeout_s=30
            )
            response = await asyncio.to_thread(post, stack, "/v1/submissions", token, changed)
            assert response.status_code == 202
            deadline = time.monotonic() + 30
            while not sink.bodies("/SN") and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert sink.bodies("/SN"), stack.output()[-3000:]

    wanted = {"accept submission", "enrich submission", "store submission", "decide alerts",
              "deliver alert", "deliver webhook", "dead-letter submission"}  # fmt: skip

    def exported_names() -> set[str]:
        return {s["name"] for s in receiver.spans}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not wanted <= exported_names():
        await asyncio.sleep(0.2)

    urgent_spans = spans_of(receiver, urgent["submission_id"])
    assert len({s["trace_id"] for s in urgent_spans}) == 1, urgent_spans
    assert {"ingest", "enrich", "notify"} <= {s["service"] for s in urgent_spans}
    assert {"accept submission", "enrich submission", "store submission", "decide alerts",
            "deliver alert", "deliver webhook"} <= {s["name"] for s in urgent_spans}  # fmt: skip
    kept = {s["attributes"].get("terrain.keep") for s in urgent_spans}
    assert {"urgent", "alert"} <= kept

    # The resend's only exported span is its dead letter, kept as a conflict.
    calm_spans = spans_of(receiver, calm["submission_id"])
    assert [(s["name"], s["attributes"].get("terrain.keep")) for s in calm_spans] == [
        ("dead-letter submission", "conflict")
    ], calm_spans
    assert calm_spans[0]["trace_id"] != calm_trace  # the resend is a request of its own

    # The calm visit exported nothing, yet its trace id is on its row and in `terrain trace`.
    assert calm_trace and all(s["trace_id"] != calm_trace for s in receiver.spans)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["trace", calm["submission_id"]],
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert calm_trace in result.output
