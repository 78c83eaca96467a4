"""HTTP routes of ingest: authenticate, read, validate, pseudonymise, publish durably, answer.

A 202 is sent only after Kafka acknowledged every accepted record with acks=all; when
Kafka cannot take them in time, the answer is 503 with Retry-After and the app keeps the
submission in its outbox (resending it later is safe: the key is the submission id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from opentelemetry import context as otel_context
from opentelemetry import trace

from ingest import __version__
from ingest.body import BodyBudget, read_json
from ingest.devices import DeviceDirectory, DirectoryUnavailable
from ingest.logic import Device, SubmissionRejected, receive, validate
from ingest.openapi import BATCH_OPENAPI, PROBES_TAG, SINGLE_OPENAPI, SUBMISSIONS_TAG
from ingest.problems import Problem
from ingest.ratelimit import RateLimiter
from ingest.screening import FieldError, UnknownFieldLimits
from ingest.settings import IngestSettings
from terrain_contracts.headers import CONTENT_TYPE, JSON
from terrain_contracts.messages import SubmissionReceivedV1
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_runtime.kafka import kafka_reachable
from terrain_runtime.metrics import (
    KAFKA_PUBLISH_DURATION,
    KAFKA_PUBLISH_FAILURES,
    SUBMISSIONS_RECEIVED,
)
from terrain_runtime.privacy import Pseudonymiser, RedactionBudget, Sealer
from terrain_runtime.producer import DurableProducer
from terrain_runtime.sampling import Keep
from terrain_runtime.tracing import headers_for, submission_attributes

log = logging.getLogger(__name__)
router = APIRouter()
_tracer = trace.get_tracer("terrain.ingest")


@dataclass
class IngestRuntime:
    """Everything a request needs, created once in the lifespan."""

    settings: IngestSettings
    producer: DurableProducer
    devices: DeviceDirectory
    limiter: RateLimiter
    pseudonymiser: Pseudonymiser
    sealer: Sealer
    raw_topic: str
    bodies: BodyBudget
    limits: UnknownFieldLimits
    pool: asyncpg.Pool  # the device directory's and the receipts' reads
    receipt_reads: asyncio.Semaphore  # bounds the receipts' share of the pool


def runtime_of(request: Request) -> IngestRuntime:
    runtime: IngestRuntime = request.app.state.runtime
    return runtime


async def authenticate(request: Request, runtime: IngestRuntime) -> Device:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "A device token is required",
            errors=[FieldError("(header) Authorization", "must be 'Bearer <device token>'")],
            code="unauthorized",
        )
    try:
        device = await runtime.devices.authenticate(token.strip())
    except DirectoryUnavailable:
        raise _unavailable() from None
    if device is None:
        raise Problem(
            401,
            "Unknown or revoked device token",
            errors=[FieldError("(header) Authorization", "token is unknown or revoked")],
            code="unauthorized",
        )
    wait_s = runtime.limiter.acquire(str(device.device_id))
    if wait_s:
        raise Problem(
            429,
            "Too many requests from this device",
            retry_after_s=int(wait_s),
            code="rate-limited",
        )
    return device


def _submission_span(envelope: SubmissionReceivedV1, *, own_trace: bool) -> trace.Span:
    """The span that carries one submission into Kafka (its context goes in the headers).

    A batch of 500 visits must not become one trace of 500 submissions: each item starts
    a trace of its own, linked to the batch request, so an SRE following submission X sees
    X alone from ingest to the manager's alert.
    """
    # An urgent visit's trace is kept whatever the sampling ratio (terrain_runtime.sampling).
    attributes = submission_attributes(
        envelope.submission_id,
        envelope.submission.agent.market.value,
        keep=Keep.URGENT if envelope.submission.feedback.urgent else None,
    )
    if not own_trace:
        return _tracer.start_span("accept submission", attributes=attributes)
    request = trace.get_current_span().get_span_context()
    return _tracer.start_span(
        "accept submission",
        context=otel_context.Context(),
        links=[trace.Link(request)] if request.is_valid else [],
        attributes=attributes,
    )


async def publish(
    runtime: IngestRuntime, envelopes: list[SubmissionReceivedV1], device: Device
) -> None:
    """Publish and wait for every acknowledgement, or raise a 503 Problem.

    A batch's records go to Kafka as whole batches, not one by one. The partition is the
    device's, not the submission id's: a phone's records stay in one partition in the
    order it sent them, so a resend still reaches enrich after what it resends (enrich
    counts resends by their sent_at), and each batch is one append on one partition."""
    spans = [_submission_span(e, own_trace=len(envelopes) > 1) for e in envelopes]
    producer, topic, affinity = runtime.producer, runtime.raw_topic, device.device_id.int
    started = time.perf_counter()
    try:
        async with asyncio.timeout(runtime.settings.publish_timeout_s):
            if len(envelopes) == 1:
                key, value, headers = _record(envelopes[0], spans[0])
                acknowledged = await producer.send(
                    topic, value, key=key, headers=headers, affinity=affinity
                )
            else:
                records = [_record(e, s) for e, s in zip(envelopes, spans, strict=True)]
                acknowledged = await producer.send_batch(topic, records, affinity=affinity)
            await acknowledged
        KAFKA_PUBLISH_DURATION.labels("ingest", SUBMISSIONS_RAW.id).observe(
            time.perf_counter() - started
        )
    except (KafkaError, TimeoutError, ConnectionError) as error:
        KAFKA_PUBLISH_FAILURES.labels("ingest", SUBMISSIONS_RAW.id).inc()
        log.warning("kafka unavailable: %s", type(error).__name__)
        raise _unavailable() from None
    finally:
        for span in spans:
            span.end()


_JSON = (CONTENT_TYPE, JSON.encode())


def _record(
    envelope: SubmissionReceivedV1, span: trace.Span
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the envelope's raw-topic record."""
    headers = [_JSON, *((k, v.encode()) for k, v in headers_for(span).items())]
    return str(envelope.submission_id).encode(), envelope.model_dump_json().encode(), headers


def _unavailable() -> Problem:
    # The app keeps the visit in its outbox and resends it: same id, so never a duplicate.
    return Problem(
        503,
        "Submissions cannot be stored right now; keep them in the outbox and retry",
        retry_after_s=5,
        code="unavailable",
    )


def _accept(
    document: Any,
    device: Device,
    runtime: IngestRuntime,
    received_at: datetime,
    *,
    check_text: bool,
    budget: RedactionBudget,
    prefix: str = "",
) -> SubmissionReceivedV1:
    submission = validate(document, prefix, runtime.limits, check_text=check_text)
    return receive(
        submission,
        device=device,
        received_at=received_at,
        pseudonymiser=runtime.pseudonymiser,
        sealer=runtime.sealer,
        ingest_version=__version__,
        prefix=prefix,
        budget=budget,
    )


def _echoed_id(item: Any) -> str | None:
    # Only a well-formed id is echoed: the answer must not carry what it refuses (a lone
    # surrogate would not even encode).
    submission_id = item.get("submission_id") if isinstance(item, dict) else None
    try:
        return str(UUID(submission_id)) if isinstance(submission_id, str) else None
    except ValueError:
        return None


@router.post(
    "/v1/submissions",
    status_code=202,
    operation_id="sendSubmission",
    tags=[SUBMISSIONS_TAG],
    openapi_extra=SINGLE_OPENAPI,
)
async def post_submission(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    device = await authenticate(request, runtime)
    body = await read_json(
        request, limit=runtime.settings.max_single_body_bytes, budget=runtime.bodies
    )
    try:
        envelope = _accept(
            body.document,
            device,
            runtime,
            datetime.now(UTC),
            check_text=body.may_hold_forbidden,
            budget=RedactionBudget(runtime.settings.redaction_budget_chars),
        )
    except SubmissionRejected as rejected:
        SUBMISSIONS_RECEIVED.labels("rejected", device.market.value).inc()
        raise Problem(
            422,
            "The submission breaks the field-app contract",
            errors=rejected.errors,
            code="invalid-submission",
        ) from None
    await publish(runtime, [envelope], device)
    SUBMISSIONS_RECEIVED.labels("accepted", device.market.value).inc()
    return JSONResponse(
        {"submission_id": str(envelope.submission_id), "status": "accepted"}, status_code=202
    )


@router.post(
    "/v1/submissions/batch",
    status_code=200,
    operation_id="sendSubmissionBatch",
    tags=[SUBMISSIONS_TAG],
    openapi_extra=BATCH_OPENAPI,
)
async def post_batch(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    device = await authenticate(request, runtime)
    body = await read_json(request, limit=runtime.settings.max_body_bytes, budget=runtime.bodies)
    document = body.document
    items = document.get("submissions") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise Problem(
            422,
            "A batch is an object with a list of submissions",
            errors=[FieldError("submissions", "must be a list of submissions")],
            code="invalid-batch",
        )
    limit = runtime.settings.batch_max_items
    if len(items) > limit:
        raise Problem(
            413,
            f"A batch holds at most {limit} submissions",
            errors=[FieldError("submissions", f"has {len(items)} items, more than {limit}")],
            code="batch-too-large",
        )
    received_at = datetime.now(UTC)
    budget = RedactionBudget(runtime.settings.redaction_budget_chars)
    results: list[dict[str, Any]] = []
    accepted: list[SubmissionReceivedV1] = []
    for index, item in enumerate(items):
        try:
            envelope = _accept(
                item,
                device,
                runtime,
                received_at,
                check_text=body.may_hold_forbidden,
                budget=budget,
                prefix=f"submissions.{index}",
            )
        except SubmissionRejected as rejected:
            results.append(
                {
                    "index": index,
                    "submission_id": _echoed_id(item),
                    "status": "rejected",
                    "errors": [error.as_dict() for error in rejected.errors],
                }
            )
            continue
        accepted.append(envelope)
        results.append(
            {"index": index, "submission_id": str(envelope.submission_id), "status": "accepted"}
        )
    if accepted:
        await publish(runtime, accepted, device)
    SUBMISSIONS_RECEIVED.labels("accepted", device.market.value).inc(len(accepted))
    SUBMISSIONS_RECEIVED.labels("rejected", device.market.value).inc(len(items) - len(accepted))
    return JSONResponse(
        {
            "accepted": len(accepted),
            "rejected": len(items) - len(accepted),
            "results": results,
        },
        status_code=200,
    )


@router.get("/healthz", operation_id="liveness", tags=[PROBES_TAG], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readiness",
    tags=[PROBES_TAG],
    summary="Kafka is reachable: the service can accept submissions",
    responses={503: {"description": "Kafka is not reachable"}},
)
async def readyz(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ok = await kafka_reachable(runtime.producer, timeout_s=2.0)
    return JSONResponse(
        {"status": "ready" if ok else "kafka unreachable"}, status_code=200 if ok else 503
    )
