"""Contract of the observability configs in deploy/ and their wiring in docker-compose.yml.

Nothing here needs Docker, a broker or a database: the files are parsed and checked against
each other, against docker-compose.yml and against the metrics the code declares.

- Every config parses (YAML or JSON).
- The OTel collector's pipelines use only defined receivers, processors, exporters and
  extensions; OTLP comes in over gRPC and HTTP on the port the services are pointed at;
  memory_limiter runs first; exporters target compose services.
- Prometheus scrapes every Terrain service on the port and path it serves metrics on,
  under its compose name; its config and rule files are the ones compose mounts.
- Every alert rule has expr, for, labels.severity and summary/description annotations, and
  the alerts REQUIRED_ALERTS names exist. When promtool is installed (Debian package
  `prometheus`): `promtool check config`, `check rules` on the alerts and on every dashboard
  query (PromQL syntax), and `test rules` on deploy/prometheus/alerts_test.yml.
- Grafana's datasources point at compose services; every datasource uid a panel uses is
  provisioned; every panel has targets with an expr; the dashboard provider loads the
  directory compose mounts.
- Every metric name a PromQL expression (rule, panel, dashboard variable) uses is a series
  the services export, with labels the metric has.

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
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COLLECTOR_FILE = DEPLOY / "otel" / "collector.yaml"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST_FILE = DEPLOY / "prometheus" / "alerts_test.yml"
GRAFANA = DEPLOY / "grafana"
DATASOURCE_FILES = sorted((GRAFANA / "provisioning" / "datasources").glob("*.y*ml"))
PROVIDER_FILES = sorted((GRAFANA / "provisioning" / "dashboards").glob("*.y*ml"))
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
CONFIG_FILES = [
    COLLECTOR_FILE,
    PROMETHEUS_FILE,
    ALERTS_FILE,
    ALERTS_TEST_FILE,
    *DATASOURCE_FILES,
    *PROVIDER_FILES,
    *DASHBOARD_FILES,
]


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
# The alerts that must exist, each with the metric it must be computed from.
REQUIRED_ALERTS = {
    "TerrainConsumerLagGrowing": "terrain_consumer_lag",
    "TerrainDeadLetterRateHigh": "terrain_dead_letters_total",
    "TerrainAlertLatencyOverSLO": "terrain_alert_latency_seconds_bucket",
    "TerrainNoSubmissionsOnCampaignDay": "terrain_submissions_received_total",
    # A consumer alive but not committing, and an urgent complaint nobody received.
    "TerrainConsumerStuck": "terrain_consumer_commit_age_seconds",
    "TerrainAlertsUnroutable": "terrain_alerts_unroutable_total",
}
# The dashboard's required panels, each as a series the dashboard must query.
REQUIRED_DASHBOARD_SERIES = {
    "terrain_submissions_received_total",  # submissions/s by market
    "terrain_http_requests_total",  # HTTP status rates
    "terrain_records_processed_total",  # records processed per topic
    "terrain_consumer_lag",  # lag per partition
    "terrain_consumer_commit_age_seconds",  # a stuck consumer
    "terrain_batch_duration_seconds_bucket",  # batch duration p99
    "terrain_submission_store_latency_seconds_bucket",  # store latency p99
    "terrain_dead_letters_total",  # DLQ by reason
    "terrain_alerts_total",  # alerts by market and severity
    "terrain_alert_latency_seconds_bucket",  # alert latency p50/p99
    "terrain_alert_delivery_attempts_total",  # delivery failures by channel
    "terrain_alerts_escalated_total",  # escalations
    "terrain_alert_acknowledgement_seconds_bucket",  # time to acknowledgement
    "terrain_alerts_unroutable_total",  # urgent complaints nobody received
}

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:$])terrain_[A-Za-z0-9_:]*")
SELECTOR = re.compile(r"(?<![A-Za-z0-9_:$])(terrain_[A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)")


# ------------------------------------------------------------------------------ loading


def load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@cache
def compose() -> dict[str, Any]:
    data = load(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name}"
    found = services[name]
    assert isinstance(found, dict)
    return found


def environment_of(name: str) -> dict[str, str]:
    environment = service(name).get("environment", {})
    assert isinstance(environment, dict), f"{name}: write environment as a mapping"
    return {str(key): str(value) for key, value in environment.items()}


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


def grafana_to_promql(expr: str) -> str:
    """A panel query with Grafana's variables replaced by plausible values."""
    values = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "market": ".*"}
    return re.sub(r"\$(\w+)", lambda match: values[match[1]], expr)


def metric_names(expr: str) -> set[str]:
    """terrain_* names in a PromQL expression, quoted strings (label values) left out."""
    return set(METRIC_NAME.findall(QUOTED.sub('""', expr)))


# --------------------------------------------------------------------------------- tests


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
            assert host in compose()["services"], f"exporter {name} targets unknown {host}"


def test_prometheus_runs_the_files_of_this_repository() -> None:
    assert host_file("prometheus", flag("prometheus", "--config.file")) == PROMETHEUS_FILE
    rule_files = [host_file("prometheus", path) for path in prometheus()["rule_files"]]
    assert rule_files == [ALERTS_FILE]


def test_prometheus_scrapes_every_service_where_it_serves_metrics() -> None:
    targets: dict[str, tuple[str, str, int]] = {}
    for job in prometheus()["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = host_and_port(target)
                assert host == "localhost" or host in compose()["services"], (
                    f"job {job['job_name']} scrapes {host}, which is no compose service"
                )
                targets[host] = (job.get("metrics_path", "/metrics"), job["job_name"], port)
    for name, port_variable in SCRAPED_SERVICES.items():
        assert name in targets, f"Prometheus does not scrape {name}"
        _, job, port = targets[name]
        assert job == name, f"{name} is scraped by job {job}: name jobs after services"
        assert str(port) == environment_of(name).get(port_variable), (
            f"{name} serves metrics on {port_variable}={environment_of(name).get(port_variable)}"
            f", Prometheus scrapes {port}"
        )
    # ingest mounts the metrics app: /metrics answers a redirect to /metrics/.
    assert targets["ingest"][0] == "/metrics/"
    telemetry = collector()["service"]["telemetry"]["metrics"]["readers"][0]
    collector_port = telemetry["pull"]["exporter"]["prometheus"]["port"]
    assert targets["otel-collector"][2] == collector_port


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert rules, "no alert rules"
    for rule in rules:
        name = rule.get("alert", "<unnamed>")
        assert str(rule.get("expr", "")).strip(), f"{name}: no expr"
        assert DURATION.match(str(rule.get("for", ""))), f"{name}: no valid `for:` duration"
        assert rule.get("labels", {}).get("severity") in {"page", "ticket"}, f"{name}: severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name}: no summary annotation"
        assert "Runbook:" in annotations.get("description", ""), (
            f"{name}: the description must end with the runbook action"
        )
    by_name = {rule["alert"]: rule for rule in rules}
    for name, series in REQUIRED_ALERTS.items():
        assert name in by_name, f"alert {name} is missing"
        assert series in metric_names(str(by_name[name]["expr"])), f"{name} must use {series}"


def test_datasources_point_at_compose_services() -> None:
    for source in datasources():
        assert source.get("uid") and source.get("type"), f"datasource without uid/type: {source}"
        host, _ = host_and_port(source["url"])
        assert host in compose()["services"], f"datasource {source['uid']} targets {host}"
    types = {source["type"] for source in datasources()}
    assert {"prometheus", "jaeger"} <= types, f"provision Prometheus and Jaeger, not only {types}"


def test_grafana_loads_the_dashboards_of_this_repository() -> None:
    for path in PROVIDER_FILES:
        for provider in load(path)["providers"]:
            directory = host_file("grafana", provider["options"]["path"])
            assert directory == GRAFANA / "dashboards", f"{path.name}: loads {directory}"
    for path in DATASOURCE_FILES + PROVIDER_FILES:
        container_path = f"/etc/grafana/provisioning/{path.parent.name}/{path.name}"
        assert host_file("grafana", container_path) == path
    home = environment_of("grafana").get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert host_file("grafana", home).is_file(), f"home dashboard {home} is not mounted"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_dashboard_panels_query_provisioned_datasources(path: Path) -> None:
    dashboard = load(path)
    assert dashboard.get("uid") and dashboard.get("title"), f"{path.name}: no uid or title"
    uids = {source["uid"] for source in datasources()}
    panels = graph_panels(dashboard)
    assert panels, f"{path.name}: no panels"
    ids = [panel.get("id") for panel in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
    for panel in panels:
        title = panel.get("title")
        targets = panel.get("targets", [])
        assert targets, f"{path.name}: panel {title!r} has no targets"
        for item in [panel, *targets]:
            uid = (item.get("datasource") or {}).get("uid")
            assert uid in uids, f"{path.name}: panel {title!r} uses datasource {uid!r}"
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"panel {title!r}: target without expr"
    used = {
        name for query in queries() if path.name in query.where for name in metric_names(query.expr)
    }
    missing = REQUIRED_DASHBOARD_SERIES - used
    assert not missing, f"{path.name}: no panel shows {sorted(missing)}"


@pytest.mark.parametrize("query", queries(), ids=lambda query: query.where)
def test_queries_use_exported_metrics_and_their_labels(query: Query) -> None:
    known = known_metrics()
    names = metric_names(query.expr)
    unknown = names - set(known)
    assert not unknown, (
        f"{query.where}: {sorted(unknown)} not exported (exported series: {sorted(known)})"
    )
    text = QUOTED.sub('""', query.expr)
    for match in SELECTOR.finditer(text):
        metric = known[match[1]]
        allowed = (
            metric.labels | TARGET_LABELS | ({"le"} if match[1].endswith("_bucket") else set())
        )
        for label in MATCHER_LABEL.findall(match[2]):
            assert label in allowed, f"{query.where}: {match[1]} has no label {label}"
    labels_in_query = set(TARGET_LABELS).union(*(known[name].labels for name in names))
    if any(name.endswith("_bucket") for name in names):
        labels_in_query.add("le")
    for grouping in GROUPING.findall(text):
        for label in filter(None, (word.strip() for word in grouping.split(","))):
            assert label in labels_in_query, f"{query.where}: no metric here has label {label}"
    for name, label in LABEL_VALUES.findall(query.expr):
        assert label in known[name].labels, f"{query.where}: {name} has no label {label}"


def test_proposed_metrics_are_still_missing() -> None:
    used = {name for query in queries() for name in metric_names(query.expr)}
    for metric in PROPOSED_METRICS:
        landed = metric.series() & set(exported_metrics())
        assert not landed, (
            f"{metric.name} is exported now: remove it from PROPOSED_METRICS (and check that"
            f" its type and labels are what the dashboard and rules expect)"
        )
        assert metric.series() & used, f"{metric.name} is used nowhere: drop the proposal"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_config_and_the_rules(tmp_path: Path) -> None:
    # The config names the rule file by its container path: check a copy pointing here.
    config = prometheus() | {"rule_files": [str(ALERTS_FILE)]}
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config), encoding="utf-8")
    # promtool parses PromQL only in rules: each dashboard query, its Grafana variables
    # replaced by values, becomes a recording rule of a throwaway file.
    panel_queries = [query for query in queries() if "panel" in query.where]
    recordings = [
        {"record": f"dashboard:query_{index}", "expr": grafana_to_promql(query.expr)}
        for index, query in enumerate(panel_queries)
    ]
    dashboard_rules = tmp_path / "dashboard_queries.yml"
    dashboard_rules.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recordings}]}), encoding="utf-8"
    )
    for command in (
        ["check", "config", str(copy)],
        ["check", "rules", str(ALERTS_FILE)],
        ["check", "rules", str(dashboard_rules)],
    ):
        result = subprocess.run(
            ["promtool", *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_alert_rules_fire_on_their_scenarios(tmp_path: Path) -> None:
    # alerts_test.yml feeds series to the rules and says which alerts must fire, and when.
    # promtool compares annotations verbatim: the scenarios run on a copy without them.
    rules = load(ALERTS_FILE)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    tests = load(ALERTS_TEST_FILE)
    assert tests["rule_files"] == [ALERTS_FILE.name]
    (tmp_path / ALERTS_FILE.name).write_text(yaml.safe_dump(rules), encoding="utf-8")
    (tmp_path / ALERTS_TEST_FILE.name).write_text(yaml.safe_dump(tests), encoding="utf-8")
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    assert set(REQUIRED_ALERTS) <= tested, f"untested alerts: {set(REQUIRED_ALERTS) - tested}"
    result = subprocess.run(
        ["promtool", "test", "rules", ALERTS_TEST_FILE.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
