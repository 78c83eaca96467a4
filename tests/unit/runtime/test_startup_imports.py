"""What a service's start does not pay for: modules the shared packages keep out of a
service that does not use them (each costs hundreds of ms of CPU and MB at every start,
and the three services start together on the same cores). Not a timing: a list of names."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# FastStream is the consumers' (terrain_runtime.consumer); structlog brings rich and
# pygments; the OTLP exporter is loaded only when an endpoint is set; the AsyncAPI
# document is built only by `terrain` (make docs).
_HEAVY = (
    "faststream",
    "structlog",
    "rich",
    "pygments",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "terrain_contracts.asyncapi",
)


def _loaded_by(module: str) -> set[str]:
    program = (
        f"import sys, json, {module}\n"
        f"print(json.dumps([m for m in {_HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    ("service", "uses"),
    [("ingest.app", set()), ("enrich.app", {"faststream"})],
)
def test_a_service_imports_only_what_it_runs(service: str, uses: set[str]) -> None:
    assert _loaded_by(service) == uses
