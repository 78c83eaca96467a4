"""Contract of Prometheus's config and alerting rules (deploy/prometheus/).

Nothing here needs Docker: the files are parsed and checked against docker-compose.yml and
the collector's config.

- Prometheus scrapes every Terrain service on the port and path it serves metrics on,
  under its compose name; its config and rule files are the ones compose mounts.
- Every alert rule has expr, for, labels.severity and summary/description annotations, and
  the alerts REQUIRED_ALERTS names exist. When promtool is installed (Debian package
  `prometheus`): `promtool check config`, `check rules` on the alerts and on every dashboard
  query (PromQL syntax), and `test rules` on deploy/prometheus/alerts_test.yml.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.contract.deployment import environment_of, services
from tests.contract.observability import (
    ALERTS_FILE,
    ALERTS_TEST_FILE,
    PROMETHEUS_FILE,
    SCRAPED_SERVICES,
    alert_rules,
    collector,
    flag,
    host_and_port,
    host_file,
    load,
    metric_names,
    prometheus,
    queries,
)

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
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def grafana_to_promql(expr: str) -> str:
    """A panel query with Grafana's variables replaced by plausible values."""
    values = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "market": ".*"}
    return re.sub(r"\$(\w+)", lambda match: values[match[1]], expr)


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
                assert host == "localhost" or host in services(), (
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
