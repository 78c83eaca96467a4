"""Contract of the OpenTelemetry collector's config, and of every observability config's syntax.

Nothing here needs Docker: deploy/ and docker-compose.yml are parsed and checked against
each other.

- Every config in deploy/ that compose mounts parses (YAML or JSON).
- The OTel collector's pipelines use only defined receivers, processors, exporters and
  extensions; OTLP comes in over gRPC and HTTP on the port the services are pointed at;
  memory_limiter runs first; exporters target compose services.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.contract.deployment import ROOT, environment_of, services
from tests.contract.observability import (
    ALERTS_FILE,
    ALERTS_TEST_FILE,
    COLLECTOR_FILE,
    DASHBOARD_FILES,
    DATASOURCE_FILES,
    PROMETHEUS_FILE,
    PROVIDER_FILES,
    SCRAPED_SERVICES,
    collector,
    flag,
    host_and_port,
    host_file,
    load,
)

CONFIG_FILES = [
    COLLECTOR_FILE,
    PROMETHEUS_FILE,
    ALERTS_FILE,
    ALERTS_TEST_FILE,
    *DATASOURCE_FILES,
    *PROVIDER_FILES,
    *DASHBOARD_FILES,
]


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_config_parses(path: Path) -> None:
    assert path.is_file(), f"{path} is missing"
    assert isinstance(load(path), dict), f"{path}: not a mapping"


def test_collector_pipelines_use_defined_components() -> None:
    config = collector()
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines, "the collector has no traces pipeline"
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            used = pipeline.get(kind, [])
            assert used or kind == "processors", f"pipeline {name} has no {kind}"
            undefined = set(used) - set(config.get(kind) or {})
            assert not undefined, f"pipeline {name} uses undefined {kind}: {sorted(undefined)}"
        processors = pipeline.get("processors", [])
        assert processors[:1] == ["memory_limiter"], f"{name}: memory_limiter must run first"
        assert "batch" in processors, f"{name}: no batch processor"
    undefined = set(config["service"].get("extensions", [])) - set(config.get("extensions") or {})
    assert not undefined, f"undefined extensions: {sorted(undefined)}"


def test_collector_receives_otlp_where_the_services_send_it() -> None:
    protocols = collector()["receivers"]["otlp"]["protocols"]
    assert {"grpc", "http"} <= set(protocols), "the OTLP receiver needs grpc and http"
    _, http_port = host_and_port(protocols["http"]["endpoint"])
    for name in SCRAPED_SERVICES:
        endpoint = environment_of(name).get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        assert endpoint, f"{name}: no OTEL_EXPORTER_OTLP_ENDPOINT"
        assert urlsplit(endpoint).path in {"", "/"}, "the SDK appends /v1/traces itself"
        assert host_and_port(endpoint) == ("otel-collector", http_port), endpoint
    config_path = flag("otel-collector", "--config")
    assert host_file("otel-collector", config_path) == COLLECTOR_FILE


def test_collector_exports_to_compose_services() -> None:
    for name, exporter in collector()["exporters"].items():
        if "endpoint" in (exporter or {}):
            host, _ = host_and_port(exporter["endpoint"])
            assert host in services(), f"exporter {name} targets unknown {host}"
