"""Real receivers on loopback, standing in for the managers' systems and for a trace
collector: a webhook endpoint (``WebhookSink``; it is the SMS gateway too, at ``/sms``,
deduping on the JSON ``reference``), a mail server (``SmtpSink``) and an OTLP/HTTP trace
receiver (``OtlpReceiver``). Each keeps what it received for the test to count and scan."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from aiosmtpd.controller import Controller
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from terrain_testkit.processes import free_port


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as a real receiver offers: a connection per webhook would measure TCP
    # handshakes, not Terrain.
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of alerts overflowed it and each
    # dropped SYN cost the sender a 1 s (then 3 s) retransmission.
    request_queue_size = 128
    daemon_threads = True


class _LoopbackServer:
    """An HTTP server on a free loopback port, serving in a thread while entered."""

    def __init__(self, handler: type[_Handler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def _base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class WebhookSink(_LoopbackServer):
    """A real HTTP server on loopback that records every webhook it receives."""

    def __init__(self, *, status: int = 200, answer_after_s: float = 0.0) -> None:
        """``answer_after_s``: a slow receiver, which has the request (it counts as received)
        well before the sender has the answer."""
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.status = status
        self.answer_after_s = answer_after_s
        # Called (in the server's thread) with each request's path as it is received.
        self.on_receive: Callable[[str], None] | None = None
        received = self.received
        sink = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                declared = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(declared)
                if len(body) < declared:
                    return  # the sender died mid-request: nothing was received
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if sink.on_receive is not None:
                    sink.on_receive(self.path)
                if sink.answer_after_s:
                    time.sleep(sink.answer_after_s)
                self.send_response(sink.status)
                self.send_header("content-length", "0")
                self.end_headers()

        super().__init__(Handler)

    def url(self, path: str = "/hook") -> str:
        """The URL at which this sink receives ``path``."""
        return f"{self._base}{path}"

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies received (at ``path``, or anywhere), in order."""
        return [json.loads(body) for p, _, body in list(self.received) if path is None or p == path]

    def by_idempotency_key(self, path: str | None = None) -> Counter[str]:
        """Raw receptions per ``idempotency-key`` header: what a receiver dedupes on."""
        return Counter(
            headers.get("idempotency-key", "")
            for p, headers, _ in list(self.received)
            if path is None or p == path
        )

    def by_reference(self, path: str | None = None) -> Counter[str]:
        """Raw receptions per JSON ``reference`` field: what an SMS gateway dedupes on."""
        return Counter(str(body.get("reference", "")) for body in self.bodies(path))

    def text(self) -> str:
        """Every request received, headers and body, as one text to scan."""
        return "\n".join(
            f"{p} {headers} {body.decode('utf-8', 'replace')}"
            for p, headers, body in list(self.received)
        )


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.raw.append(envelope.content)
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        """Listen (in a thread of its own) until ``stop``."""
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def to(self, address: str) -> list[Message]:
        """The messages received for ``address``."""
        return [m for m in self.messages if m["To"] == address]

    def by_message_id(self) -> Counter[str]:
        """Raw receptions per Message-ID: what a mail system dedupes on."""
        return Counter(str(m["Message-ID"]) for m in list(self.messages))

    def text(self) -> str:
        """Every message as received (headers and body, decoded), as one text to scan."""
        parts = []
        for message in list(self.messages):
            parts.append(str(message.items()))
            for part in message.walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    parts.append(payload.decode("utf-8", "replace"))
        return "\n".join(parts)


class OtlpReceiver(_LoopbackServer):
    """An OTLP/HTTP (protobuf) trace receiver on loopback: what the services export."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        spans = self.spans

        class Handler(_Handler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    service = next(
                        (a.value.string_value for a in resource_spans.resource.attributes
                         if a.key == "service.name"),
                        "?",
                    )  # fmt: skip
                    for scope_spans in resource_spans.scope_spans:
                        spans.extend(_span(service, span) for span in scope_spans.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        super().__init__(Handler)

    @property
    def endpoint(self) -> str:
        """The base URL to give the services as their OTLP endpoint."""
        return self._base


def _span(service: str, span: Any) -> dict[str, Any]:
    return {
        "service": service,
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_id": span.parent_span_id.hex(),
        "attributes": {a.key: a.value.string_value or a.value.int_value for a in span.attributes},
        "links": [link.trace_id.hex() for link in span.links],
    }
