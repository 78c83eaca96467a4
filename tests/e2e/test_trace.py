"""One submission, one trace: the three services export to an in-test OTLP receiver, and
the trace of one POST holds ingest's request, enrich's processing and database write,
notify's decision and the webhook delivery. `terrain trace` then finds it by id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ingest.repository import create_device
from terrain_cli.main import app as cli
from terrain_contracts.markets import Market
from terrain_testkit.factories import country_managers, field_submission
from terrain_testkit.processes import Stack, free_port, post
from terrain_testkit.sinks import OtlpReceiver, WebhookSink

VERBATIM = "On m'a volé 40 000 FCFA sur mon compte, mon numéro est le 77 555 12 34"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running_receiver:
        yield running_receiver


METRICS_PORTS = {"enrich": free_port(), "notify": free_port()}


@pytest.fixture
def stack_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "ENRICH__TERRAIN_METRICS_PORT": str(METRICS_PORTS["enrich"]),
        "NOTIFY__TERRAIN_METRICS_PORT": str(METRICS_PORTS["notify"]),
    }


async def test_one_post_is_one_trace_from_request_to_webhook(
    stack: Stack, database_url: str, receiver: OtlpReceiver
) -> None:
    submission = field_submission(
        feedback__urgent=True, feedback__verbatim=VERBATIM, customer__msisdn="77 555 12 34"
    )
    submission_id = submission["submission_id"]
    with WebhookSink() as sink:
        async with country_managers(database_url, sink):
            connection = await asyncpg.connect(database_url)
            try:
                _, token = await create_device(connection=connection, market=Market.SN, label="t")
            finally:
                await connection.close()
            response = await asyncio.to_thread(post, stack, "/v1/submissions", token, submission)
            assert response.status_code == 202
            deadline = time.monotonic() + 30
            while not sink.bodies("/SN") and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert sink.bodies("/SN"), stack.output()[-3000:]

    def ours() -> list[dict[str, Any]]:
        return [
            s
            for s in receiver.spans
            if s["attributes"].get("terrain.submission_id") == submission_id
        ]

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not {"deliver alert"} <= {s["name"] for s in ours()}:
        await asyncio.sleep(0.2)
    trace_ids = {s["trace_id"] for s in ours()}
    assert len(trace_ids) == 1, ours()
    [trace_id] = trace_ids
    in_trace = [s for s in receiver.spans if s["trace_id"] == trace_id]
    services = {s["service"] for s in in_trace}
    names = {s["name"] for s in in_trace}
    assert {"ingest", "enrich", "notify"} <= services
    assert {"accept submission", "enrich submission", "store submission", "decide alerts",
            "deliver alert", "deliver webhook"} <= names  # fmt: skip
    assert any(s["service"] == "ingest" and "POST" in str(s["name"]) for s in in_trace)
    # No phone number and no verbatim in any span attribute, nor in any service's output.
    everything = repr(receiver.spans) + stack.output()
    assert "555 12 34" not in everything
    assert "221775551234" not in everything
    assert VERBATIM not in everything

    # What the SREs' dashboards read is there after the run, with values.
    async with httpx.AsyncClient(timeout=5) as http:
        scraped = {"ingest": (await http.get(f"{stack.ingest_url}/metrics/")).text}
        for service, port in METRICS_PORTS.items():
            scraped[service] = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    expected: dict[str, list[tuple[str, dict[str, str]]]] = {
        "ingest": [("terrain_http_requests_total", {}), ("terrain_submissions_received_total", {}),
                   ("terrain_kafka_publish_duration_seconds_count", {})],
        "enrich": [("terrain_records_processed_total", {"outcome": "stored"}),
                   ("terrain_batch_duration_seconds_count", {}),
                   ("terrain_submission_store_latency_seconds_count", {})],
        "notify": [("terrain_records_processed_total", {"outcome": "alerted"}),
                   ("terrain_alert_latency_seconds_count", {}), ("terrain_alerts_total", {}),
                   ("terrain_alert_delivery_attempts_total", {"outcome": "ok"})],
    }  # fmt: skip
    for service, wanted in expected.items():
        samples = [s for f in text_string_to_metric_families(scraped[service]) for s in f.samples]
        for name, labels in wanted:
            assert any(
                s.name == name and s.value > 0 and labels.items() <= s.labels.items()
                for s in samples
            ), (service, name, labels)
    lag = [s for f in text_string_to_metric_families(scraped["enrich"]) for s in f.samples
           if s.name == "terrain_consumer_lag"]  # fmt: skip
    assert lag, "enrich reports its lag per partition"

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["trace", submission_id], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    assert trace_id in result.output
    assert "stored by enrich" in result.output
    assert "webhook" in result.output
