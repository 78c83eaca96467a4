"""Log lines: one JSON object each, with the trace they were written in, from stdlib
loggers and from structlog alike."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

from opentelemetry import trace

from terrain_runtime.telemetry import JsonLines


def _record(message: str, **changes: object) -> logging.LogRecord:
    record = logging.LogRecord("terrain.test", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(changes)
    return record


def test_a_line_names_its_service_level_logger_time_and_trace() -> None:
    formatter = JsonLines("enrich")
    with trace.get_tracer("test").start_as_current_span("batch") as span:
        line = json.loads(formatter.format(_record("stored %d", args=(3,))))
    context = span.get_span_context()
    assert line["event"] == "stored 3"
    assert (line["service"], line["level"], line["logger"]) == ("enrich", "warning", "terrain.test")
    assert line["timestamp"].endswith("Z")
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_a_records_extra_stays_out_and_an_exception_is_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info(), body="+221771234567")
    line = json.loads(JsonLines("notify").format(record))
    assert "ValueError: boom" in line["exception"]
    assert "+221771234567" not in json.dumps(line) and "trace_id" not in line


def test_a_service_logging_through_structlog_writes_the_same_lines() -> None:
    # A process of its own: setup_logging takes over the root logger and structlog's
    # global configuration.
    program = textwrap.dedent(
        """
        import logging
        import structlog
        from terrain_runtime.settings import TerrainSettings
        from terrain_runtime.telemetry import setup_logging

        setup_logging(TerrainSettings(environment="test"), "notify")
        structlog.get_logger("terrain.routing").warning("alert unroutable", market="SN")
        logging.getLogger("aiokafka").info("joined")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["event"] == "alert unroutable" and first["market"] == "SN"
    assert (first["service"], first["level"], first["logger"]) == (
        "notify",
        "warning",
        "terrain.routing",
    )
    assert second["event"] == "joined" and second["logger"] == "aiokafka"
