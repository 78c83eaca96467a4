"""The observability configs in deploy/ as the contract tests read them, and the metrics
the code declares.

Nothing here needs Docker, a broker or a database: the files are parsed, and their wiring
is looked up in docker-compose.yml (bind mounts, command flags, environment).

Exported = the prometheus_client REGISTRY after importing terrain_runtime.metrics and every
``metrics`` module under packages/*/src/*/ and services/*/src/*/ (a module that does not
import yet is skipped), expanded per type (counter: ``_total``; histogram: ``_bucket``,
``_sum``, ``_count``), plus PROPOSED_METRICS below.

PROPOSED_METRICS: metrics the dashboard and alert rules need that no service exports yet.
Each entry is the proposal (name, type, labels, help text) for the engineer who adds it.
When a metric lands, remove it from PROPOSED_METRICS (test_proposed_metrics_are_still_missing
fails until then, so the list only shrinks):

- ``terrain_alerts_total`` (Counter ``terrain_alerts``), labels ``market``, ``severity``,
  ``channel``; help "Alerts sent to country managers, by market, severity and channel: one
  per alert and channel delivered." Notify, where a delivery succeeds (sender.py, beside
  ALERT_DELIVERY_ATTEMPTS). Dashboard "Alerts by market and severity".
- ``terrain_alert_acknowledgement_seconds`` (Histogram), labels ``severity``; help "From an
  alert's first delivery to a manager's acknowledgement: how long urgent complaints wait for
  a human." Buckets (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400).
  Notify's acknowledgement handler (web.py). Dashboard "Time to acknowledgement".
- ``terrain_campaign_day`` (Gauge), labels ``market``; help "1 while today is a declared
  campaign day in this market, else 0: arms the no-submissions alert from the first minute
  of the day." Ingest, from a campaign calendar setting. Alert
  TerrainNoSubmissionsOnCampaignDay (which otherwise infers a campaign day from traffic).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from tests.contract.deployment import ROOT, services

DEPLOY = ROOT / "deploy"
COLLECTOR_FILE = DEPLOY / "otel" / "collector.yaml"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST_FILE = DEPLOY / "prometheus" / "alerts_test.yml"
GRAFANA = DEPLOY / "grafana"
DATASOURCE_FILES = sorted((GRAFANA / "provisioning" / "datasources").glob("*.y*ml"))
PROVIDER_FILES = sorted((GRAFANA / "provisioning" / "dashboards").glob("*.y*ml"))
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))


@dataclass(frozen=True)
class Metric:
    name: str  # as declared, without a counter's _total
    type: str  # counter, gauge, histogram, summary
    labels: frozenset[str]

    def series(self) -> set[str]:
        """The names Prometheus stores for this metric."""
        suffixes = {
            "counter": ["_total"],
            "gauge": [""],
            "histogram": ["_bucket", "_sum", "_count"],
            "summary": ["", "_sum", "_count"],
        }[self.type]
        return {self.name + suffix for suffix in suffixes}


# See the module docstring: proposals for metrics that do not exist yet. Shrinks to nothing.
PROPOSED_METRICS = [
    Metric("terrain_campaign_day", "gauge", frozenset({"market"})),
]
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# The Terrain services Prometheus must scrape, and the compose variable naming their port.
SCRAPED_SERVICES = {
    "ingest": "TERRAIN_INGEST_PORT",
    "enrich": "TERRAIN_METRICS_PORT",
    "notify": "TERRAIN_METRICS_PORT",
}
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:$])terrain_[A-Za-z0-9_:]*")


# ------------------------------------------------------------------------------ loading


def load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def service(name: str) -> dict[str, Any]:
    assert name in services(), f"docker-compose.yml has no service {name}"
    found = services()[name]
    assert isinstance(found, dict)
    return found


def host_file(service_name: str, container_path: str) -> Path:
    """The repository file a container path of a service is, through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for volume in service(service_name).get("volumes", []):
        assert isinstance(volume, str), f"{service_name}: write volumes in short syntax"
        source, target, *_ = volume.split(":")
        if not source.startswith("./"):
            continue  # a named volume holds no repository file
        mount = PurePosixPath(target)
        if wanted == mount or mount in wanted.parents:
            return ROOT / source / wanted.relative_to(mount)
    raise AssertionError(f"{service_name}: {container_path} is not bind-mounted from the repo")


def flag(service_name: str, name: str) -> str:
    """The value of a `--name=value` flag in a service's compose command."""
    command = service(service_name).get("command", [])
    assert isinstance(command, list), f"{service_name}: write command in exec (list) form"
    for word in command:
        if str(word).startswith(f"{name}="):
            return str(word).split("=", 1)[1]
    raise AssertionError(f"{service_name}: its command has no {name}=")


def host_and_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"//{address}")
    assert parts.hostname and parts.port, f"no host:port in {address}"
    return parts.hostname, parts.port


@cache
def collector() -> dict[str, Any]:
    data = load(COLLECTOR_FILE)
    assert isinstance(data, dict)
    return data


@cache
def prometheus() -> dict[str, Any]:
    data = load(PROMETHEUS_FILE)
    assert isinstance(data, dict)
    return data


def alert_rules() -> list[dict[str, Any]]:
    groups = load(ALERTS_FILE)["groups"]
    return [rule for group in groups for rule in group["rules"]]


def datasources() -> list[dict[str, Any]]:
    return [source for path in DATASOURCE_FILES for source in load(path)["datasources"]]


def panels_of(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows opened (a collapsed row keeps its panels inside it)."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def graph_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in panels_of(dashboard) if panel.get("type") != "row"]


# ------------------------------------------------------------------------------- metrics


def metric_modules() -> list[str]:
    modules = ["terrain_runtime.metrics"]
    for pattern in ("packages/*/src/*/metrics.py", "services/*/src/*/metrics.py"):
        modules += [f"{path.parent.name}.metrics" for path in sorted(ROOT.glob(pattern))]
    return list(dict.fromkeys(modules))


@cache
def exported_metrics() -> dict[str, Metric]:
    """Series name -> metric, for every metric the services declare."""
    for module in metric_modules():
        try:
            importlib.import_module(module)
        except ImportError:
            continue  # a service being written: its metrics join when it imports
    metrics: dict[str, Metric] = {}
    for collector_object in list(REGISTRY._collector_to_names):
        if isinstance(collector_object, MetricWrapperBase):
            kind = collector_object._type
            assert kind, f"{collector_object._name}: a metric without a type"
            metric = Metric(collector_object._name, kind, frozenset(collector_object._labelnames))
            metrics.update(dict.fromkeys(metric.series(), metric))
    return metrics


def known_metrics() -> dict[str, Metric]:
    proposed = {series: metric for metric in PROPOSED_METRICS for series in metric.series()}
    return {**proposed, **exported_metrics()}


@dataclass(frozen=True)
class Query:
    where: str
    expr: str


def queries() -> list[Query]:
    """Every PromQL expression of the alert rules, the dashboards and their variables."""
    found = [Query(f"alerts.yml {rule['alert']}", str(rule["expr"])) for rule in alert_rules()]
    for path in DASHBOARD_FILES:
        dashboard = load(path)
        for panel in graph_panels(dashboard):
            for target in panel.get("targets", []):
                where = f"{path.name} panel {panel.get('title')!r} {target.get('refId')}"
                found.append(Query(where, str(target.get("expr", ""))))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query", "")
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            found.append(Query(f"{path.name} variable ${variable.get('name')}", text))
    return found


def metric_names(expr: str) -> set[str]:
    """terrain_* names in a PromQL expression, quoted strings (label values) left out."""
    return set(METRIC_NAME.findall(QUOTED.sub('""', expr)))
