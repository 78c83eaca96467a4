"""Contract between the PromQL in deploy/ and the metrics the code declares.

Nothing here needs Docker, a broker or a database: the rules and dashboards are parsed, the
services' metrics modules imported (tests/contract/observability.py: what counts as
exported, and the PROPOSED_METRICS that do not exist yet).

- Every metric name a PromQL expression (rule, panel, dashboard variable) uses is a series
  the services export, with labels the metric has.
- Every proposed metric is still missing from the code, and used by a rule or a panel.
"""

from __future__ import annotations

import re

import pytest

from tests.contract.observability import (
    PROPOSED_METRICS,
    QUOTED,
    TARGET_LABELS,
    Query,
    exported_metrics,
    known_metrics,
    metric_names,
    queries,
)

SELECTOR = re.compile(r"(?<![A-Za-z0-9_:$])(terrain_[A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)")


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
