"""`terrain failed list|show|replay`: what failed and why, and sending it again once fixed.

A failed submission keeps the record's original bytes. ``replay`` re-publishes them to the
topic they came from, keyed by the submission id as ingest keys them, so the consumer that
refused them tries again: it deduplicates on the submission id, so a record replayed twice
(or one that had been stored meanwhile) is stored once. The replayed record continues the
original trace (a new span in the failed row's trace id) and says which failure it
replays (``terrain-replay-of``); the row is marked replayed only once Kafka acknowledged
the record (acks=all). A replay's span is always exported, whatever the sampling ratio:
an operator who replays a record will look for what became of it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import typer
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from terrain_cli.failed_repository import (
    FailedSubmission,
    FailureFilter,
    failure_ids,
    find_failures,
    get_failures,
    mark_replayed,
)
from terrain_contracts.headers import CONTENT_TYPE, JSON, REPLAY_OF
from terrain_runtime.db import Connection
from terrain_runtime.kafka import make_producer
from terrain_runtime.producer import DurableProducer
from terrain_runtime.sampling import KEEP, Keep
from terrain_runtime.settings import TerrainSettings
from terrain_runtime.telemetry import setup_tracing
from terrain_runtime.tracing import headers_for

failed_app = typer.Typer(
    no_args_is_help=True, help="Failed submissions: list, show, replay once the cause is fixed."
)

_REPLAY_CHUNK = 500  # rows in memory (payloads included) at once during a bulk replay
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# The sealed number (and any other sealed value) is ciphertext only the alerted manager's
# page may open: an SRE's terminal shows none of it, not even the ciphertext.
_SEALED_IN_TEXT = re.compile(r'("[^"\\]*sealed[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*"')
LEFT_OUT = "[left out]"


# ------------------------------------------------------------------------- pure helpers


def parse_since(text: str, *, now: datetime) -> datetime:
    """``30m``, ``2h``, ``7d`` back from ``now``, or an ISO 8601 time (UTC if naive)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration (30m, 2h, 7d) or a time (2025-04-15T09:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def without_sealed(value: Any) -> Any:
    """``value`` with every key naming a sealed value dropped, at every level."""
    if isinstance(value, dict):
        return {k: without_sealed(v) for k, v in value.items() if "sealed" not in str(k)}
    if isinstance(value, list):
        return [without_sealed(item) for item in value]
    return value


def printable(text: str) -> str:
    """One line, control characters escaped: a payload cannot move an SRE's cursor."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def render_payload(payload: bytes, *, limit: int = 20_000) -> str:
    """The payload for a terminal: pretty JSON without sealed values, else escaped text."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = _SEALED_IN_TEXT.sub(rf'\1"{LEFT_OUT}"', payload.decode("utf-8", "replace"))
        shown = printable(text)
        cut = f" … ({len(shown) - limit} more characters)" if len(shown) > limit else ""
        return f"(not JSON: as text, escaped)\n{shown[:limit]}{cut}"
    return json.dumps(without_sealed(document), indent=2, ensure_ascii=False, sort_keys=True)


def replay_key(failure: FailedSubmission) -> bytes | None:
    """The key ingest gave the record: its submission id (from the row, else the payload)."""
    if failure.submission_id is not None:
        return str(failure.submission_id).encode()
    try:
        document = json.loads(failure.payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    submission_id = document.get("submission_id") if isinstance(document, dict) else None
    return str(submission_id).encode() if isinstance(submission_id, str) else None


def parent_context(trace_id: str | None) -> Any:
    """The context a replay's span starts in: the failed record's trace when it is known.
    Only the trace id was kept, not the span that failed, so the parent span id is a new
    one: trace UIs show the replay in the original trace, under a parent they lack."""
    if not trace_id or not re.fullmatch(r"[0-9a-f]{32}", trace_id) or int(trace_id, 16) == 0:
        return None  # a new trace
    parent = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int.from_bytes(secrets.token_bytes(8), "big") or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def _replayed(failure: FailedSubmission) -> str:
    if not failure.replay_count or failure.replayed_at is None:
        return "-"
    return f"{failure.replay_count}x, last {failure.replayed_at:%Y-%m-%d %H:%M}"


def list_line(failure: FailedSubmission, *, detail_chars: int = 80) -> str:
    source = f"{failure.source_topic}/{failure.source_partition}/{failure.source_offset}"
    return "  ".join(
        [
            f"{failure.failure_id:>8}",
            f"{failure.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            f"{failure.service:<7}",
            f"{failure.reason:<22}",
            f"{failure.submission_id or '-'!s:<36}",
            source,
            f"{_replayed(failure):<24}",
            printable(failure.detail)[:detail_chars],
        ]
    )


# ------------------------------------------------------------------------------ commands


def _run(work: Any) -> Any:
    async def main() -> Any:
        settings = TerrainSettings()
        connection = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            return await work(settings, connection)
        finally:
            await connection.close()

    return asyncio.run(main())


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text, now=datetime.now(UTC))
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


Reason = Annotated[
    str | None, typer.Option(help="undecodable, invalid, conflict, store_rejected, ...")
]
Since = Annotated[
    str | None, typer.Option(help="Failed at or after: 30m, 2h, 7d, or an ISO 8601 time (UTC).")
]
Service = Annotated[str | None, typer.Option(help="enrich or notify.")]


@failed_app.command("list")
def list_command(
    reason: Reason = None,
    since: Since = None,
    service: Service = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest first, at most this many.")] = 100,
) -> None:
    """What failed, where and why (newest first), and whether it was replayed."""
    selection = FailureFilter(reason=reason, service=service, since=_since(since))

    async def work(_: TerrainSettings, connection: Connection) -> list[FailedSubmission]:
        return await find_failures(connection=connection, selection=selection, limit=limit)

    failures: list[FailedSubmission] = _run(work)
    if not failures:
        typer.echo("no failed submission matches", err=True)
        return
    typer.echo(
        f"{'ID':>8}  {'FAILED AT (UTC)':<19}  {'SERVICE':<7}  {'REASON':<22}  "
        f"{'SUBMISSION':<36}  SOURCE (topic/partition/offset)  {'REPLAYED':<24}  DETAIL"
    )
    for failure in failures:
        typer.echo(list_line(failure))
    if len(failures) == limit:
        typer.echo(f"(the newest {limit}; narrow with --since/--reason or raise --limit)", err=True)


@failed_app.command("show")
def show_command(failure_id: int) -> None:
    """One failure in full, with its payload (sealed values left out)."""

    async def work(_: TerrainSettings, connection: Connection) -> list[FailedSubmission]:
        return await get_failures(connection=connection, ids=[failure_id])

    found: list[FailedSubmission] = _run(work)
    if not found:
        typer.echo(f"no failed submission {failure_id}", err=True)
        raise typer.Exit(1)
    failure = found[0]
    echo = typer.echo
    echo(f"failure {failure.failure_id}")
    echo(f"  failed at          {failure.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f} UTC")
    echo(f"  service            {failure.service} {failure.service_version}")
    echo(f"  reason             {failure.reason}")
    echo(f"  detail             {printable(failure.detail)}")
    echo(
        f"  source             {failure.source_topic} partition {failure.source_partition}"
        f" offset {failure.source_offset}"
    )
    echo(f"  submission id      {failure.submission_id or '-'}")
    echo(f"  payload sha256     {failure.payload_sha256}")
    if failure.existing_payload_sha256:
        echo(f"  stored sha256      {failure.existing_payload_sha256} (the row already stored)")
    echo(f"  trace id           {failure.trace_id or '-'}")
    echo(f"  replayed           {_replayed(failure) if failure.replay_count else 'never'}")
    for name, value in sorted(failure.other.items()):
        if "sealed" not in name:
            echo(f"  {name:<18} {printable(str(value)) if value is not None else '-'}")
    echo(f"  payload ({len(failure.payload)} bytes, sealed values left out):")
    echo(render_payload(failure.payload))


async def replay_failures(
    failures: Sequence[FailedSubmission],
    *,
    producer: DurableProducer,
    connection: Connection,
    tracer: trace.Tracer,
) -> tuple[list[tuple[FailedSubmission, Any]], list[tuple[FailedSubmission, BaseException]]]:
    """Publish each failure's original payload to its source topic, wait for the acks, then
    mark the acknowledged ones replayed. Returns (failure, record metadata) of those sent
    and (failure, error) of those that were not."""
    spans = []
    pending = []
    for failure in failures:
        span = tracer.start_span(
            "replay failed submission",
            context=parent_context(failure.trace_id),
            kind=SpanKind.PRODUCER,
            attributes={
                "terrain.failure_id": failure.failure_id,
                "terrain.failure_reason": failure.reason,
                "terrain.submission_id": str(failure.submission_id or ""),
                KEEP: Keep.REPLAY.value,
                "messaging.system": "kafka",
                "messaging.destination.name": failure.source_topic,
            },
        )
        spans.append(span)
        headers = [
            (CONTENT_TYPE, JSON.encode()),
            *((k, v.encode()) for k, v in headers_for(span).items()),
            (REPLAY_OF, str(failure.failure_id).encode()),
        ]
        try:
            pending.append(
                await producer.send(
                    failure.source_topic, failure.payload, key=replay_key(failure), headers=headers
                )
            )
        except Exception as error:  # e.g. the topic does not exist (any more)
            pending.append(_failed_already(error))
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    for span in spans:
        span.end()
    sent = [
        (f, o) for f, o in zip(failures, outcomes, strict=True) if not isinstance(o, BaseException)
    ]
    failed = [
        (f, o) for f, o in zip(failures, outcomes, strict=True) if isinstance(o, BaseException)
    ]
    if sent:
        await mark_replayed(connection=connection, ids=[f.failure_id for f, _ in sent])
    return sent, failed


def _failed_already(error: Exception) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


@failed_app.command("replay")
def replay_command(
    failure_id: Annotated[int | None, typer.Argument(help="One failure; or use --reason.")] = None,
    reason: Reason = None,
    since: Since = None,
    service: Service = None,
    include_replayed: Annotated[
        bool, typer.Option(help="With --reason: also those replayed before.")
    ] = False,
) -> None:
    """Re-publish original payloads to their source topic once the cause is fixed: one
    failure by id, or every failure of a reason (not replayed yet, unless told)."""
    if (failure_id is None) == (reason is None):
        typer.echo("give a failure id or --reason (not both)", err=True)
        raise typer.Exit(2)
    if failure_id is not None and (since or service):
        typer.echo("--since and --service select with --reason only", err=True)
        raise typer.Exit(2)
    selection = FailureFilter(
        reason=reason,
        service=service,
        since=_since(since),
        replayed=None if include_replayed else False,
    )

    async def work(settings: TerrainSettings, connection: Connection) -> tuple[int, int]:
        if failure_id is not None:
            ids = [failure_id]
        else:
            ids = await failure_ids(connection=connection, selection=selection)
        provider = setup_tracing(settings, "terrain-cli")
        producer = make_producer(settings, client_id="terrain-cli-replay")
        await producer.start()
        sent_count = failed_count = 0
        try:
            for start in range(0, len(ids), _REPLAY_CHUNK):
                chunk = await get_failures(
                    connection=connection, ids=ids[start : start + _REPLAY_CHUNK]
                )
                if failure_id is not None and not chunk:
                    typer.echo(f"no failed submission {failure_id}", err=True)
                    raise typer.Exit(1)
                sent, failed = await replay_failures(
                    chunk,
                    producer=producer,
                    connection=connection,
                    tracer=provider.get_tracer("terrain.cli"),
                )
                for failure, metadata in sent:
                    typer.echo(
                        f"replayed {failure.failure_id} ({failure.reason}) -> "
                        f"{metadata.topic}/{metadata.partition}/{metadata.offset}"
                    )
                for failure, error in failed:
                    typer.echo(
                        f"NOT replayed {failure.failure_id}: {type(error).__name__}: {error}",
                        err=True,
                    )
                sent_count += len(sent)
                failed_count += len(failed)
        finally:
            await producer.stop()
            provider.shutdown()  # exports the replay spans, when an endpoint is set
        return sent_count, failed_count

    sent_count, failed_count = _run(work)
    if not sent_count and not failed_count:
        typer.echo("no failed submission matches", err=True)
    typer.echo(f"{sent_count} replayed, {failed_count} not", err=True)
    if failed_count:
        raise typer.Exit(1)
