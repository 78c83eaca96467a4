"""The request span ingest makes itself: one server span per request, named by route
template, in the caller's trace when it sent a traceparent; none for the probes."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import Receive, Scope, Send

from ingest.observability import RequestSpan

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


class Route:
    path = "/v1/submissions/{kind}"


def traced(status: int) -> tuple[RequestSpan, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route()  # as the router (or the door) records it
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return RequestSpan(app, tracer_provider=provider, excluded=("/healthz",)), exporter


async def call(middleware: RequestSpan, path: str, headers: list[tuple[bytes, bytes]]) -> None:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": path, "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Any) -> None:
        return None

    await middleware(scope, receive, send)


async def test_a_request_is_one_server_span_named_by_its_route_in_the_callers_trace() -> None:
    middleware, exporter = traced(202)
    parent = f"00-{CALLER_TRACE}-b7ad6b7169203331-01".encode()
    await call(middleware, "/v1/submissions/77-555-12-34", [(b"traceparent", parent)])
    [span] = exporter.get_finished_spans()
    assert span.name == "POST /v1/submissions/{kind}" and span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.attributes is not None and "77-555-12-34" not in repr(dict(span.attributes))
    assert span.attributes["http.response.status_code"] == 202


async def test_a_server_error_marks_the_span_and_probes_have_none() -> None:
    middleware, exporter = traced(503)
    await call(middleware, "/v1/submissions", [])
    await call(middleware, "/healthz", [])
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
