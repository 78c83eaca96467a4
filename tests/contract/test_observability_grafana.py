"""Contract of Grafana's provisioning and dashboards (deploy/grafana/).

Nothing here needs Docker: the files are parsed and checked against docker-compose.yml.

- Grafana's datasources point at compose services; every datasource uid a panel uses is
  provisioned; every panel has targets with an expr, and the dashboard shows every series
  REQUIRED_DASHBOARD_SERIES names; the dashboard provider loads the directory compose mounts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.deployment import environment_of, services
from tests.contract.observability import (
    DASHBOARD_FILES,
    DATASOURCE_FILES,
    GRAFANA,
    PROVIDER_FILES,
    datasources,
    graph_panels,
    host_and_port,
    host_file,
    load,
    metric_names,
    panels_of,
    queries,
)

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


def test_datasources_point_at_compose_services() -> None:
    for source in datasources():
        assert source.get("uid") and source.get("type"), f"datasource without uid/type: {source}"
        host, _ = host_and_port(source["url"])
        assert host in services(), f"datasource {source['uid']} targets {host}"
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
