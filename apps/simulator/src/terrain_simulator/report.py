"""The campaign report: one self-contained HTML page a country team can open at its
hackathon (charts are inline SVG made with matplotlib, no network needed to view it)."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import datetime
from importlib import resources
from typing import Any

import asyncpg
import matplotlib
from jinja2 import Environment, select_autoescape

from terrain_contracts.markets import MARKETS, Market

matplotlib.use("Agg")  # no display: render to SVG only
import matplotlib.pyplot as plt  # the backend is chosen just above

_TEMPLATE = resources.files(__package__).joinpath("report.html.j2").read_text("utf-8")


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _nps(scores: list[int]) -> str:
    if not scores:
        return "–"
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return f"{100 * (promoters - detractors) / len(scores):+.0f}"


async def build_report(connection: asyncpg.Connection, *, campaign: str, since: datetime) -> str:
    rows = await connection.fetch(
        """SELECT agent_market, city, satisfaction, nps, topics, signals, urgent,
                  extract(epoch FROM received_at - collected_at) AS outbox_s
           FROM analytics.submissions WHERE campaign_id = $1 AND received_at >= $2""",
        campaign,
        since,
    )
    alerts = await connection.fetch(
        """SELECT a.market, a.severity,
                  extract(epoch FROM a.delivered_at - a.received_at) AS latency_s
           FROM terrain.alerts a JOIN terrain.submissions s USING (submission_id)
           WHERE s.campaign_id = $1 AND s.received_at >= $2 AND a.status = 'delivered'""",
        campaign,
        since,
    )
    by_market: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_market[row["agent_market"].strip()].append(row)
    alerts_by_market: dict[str, int] = defaultdict(int)
    for alert in alerts:
        alerts_by_market[alert["market"].strip()] += 1

    markets = [
        {
            "name": f"{MARKETS[Market(code)].name} ({code})",
            "visits": len(items),
            "satisfaction": f"{sum(r['satisfaction'] for r in items) / len(items):.2f}",
            "nps": _nps([r["nps"] for r in items if r["nps"] is not None]),
            "urgent": sum(1 for r in items if r["urgent"]),
            "alerts": alerts_by_market.get(code, 0),
        }
        for code, items in sorted(by_market.items())
    ]
    charts = []

    codes = sorted(by_market)
    figure, axis = plt.subplots(figsize=(10, 3.5))
    means = [sum(r["satisfaction"] for r in by_market[c]) / len(by_market[c]) for c in codes]
    axis.bar(codes, means, color="#ff7900")
    axis.set_ylim(1, 5)
    axis.set_ylabel("mean satisfaction (1-5)")
    charts.append({"title": "Satisfaction by market", "svg": _svg(figure)})

    by_city: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row["city"]:
            by_city[f"{row['city']} ({row['agent_market'].strip()})"].append(row["satisfaction"])
    busiest = sorted(by_city, key=lambda c: -len(by_city[c]))[:25]
    if busiest:
        figure, axis = plt.subplots(figsize=(10, 0.3 * len(busiest) + 1))
        axis.barh(
            busiest[::-1],
            [sum(by_city[c]) / len(by_city[c]) for c in busiest[::-1]],
            color="#4bb4e6",
        )
        axis.set_xlim(1, 5)
        axis.set_xlabel("mean satisfaction, 25 busiest cities")
        charts.append({"title": "Satisfaction by city", "svg": _svg(figure)})

    topics = sorted({t for r in rows for t in r["topics"]})
    if topics and codes:
        matrix = [[sum(1 for r in by_market[c] if t in r["topics"]) for c in codes] for t in topics]
        figure, axis = plt.subplots(figsize=(10, 0.35 * len(topics) + 1.5))
        image = axis.imshow(matrix, cmap="Oranges", aspect="auto")
        axis.set_xticks(range(len(codes)), codes)
        axis.set_yticks(range(len(topics)), topics)
        figure.colorbar(image, ax=axis, label="visits")
        charts.append({"title": "Topics by market", "svg": _svg(figure)})

    signal_counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["urgent"] or row["signals"]:
            for signal in row["signals"] or ["agent_marked_urgent"]:
                signal_counts[signal] += 1
    if signal_counts:
        figure, axis = plt.subplots(figsize=(8, 3))
        names = sorted(signal_counts, key=lambda s: -signal_counts[s])
        axis.bar(names, [signal_counts[n] for n in names], color="#cd3c14")
        axis.tick_params(axis="x", rotation=30)
        axis.set_ylabel("visits")
        charts.append({"title": "Urgent complaints and signals", "svg": _svg(figure)})

    latencies = [float(a["latency_s"]) for a in alerts if a["latency_s"] is not None]
    if latencies:
        figure, axis = plt.subplots(figsize=(8, 3))
        axis.hist(latencies, bins=40, color="#50be87")
        axis.axvline(1.0, color="#cd3c14", linestyle="--", label="1 s target")
        axis.set_xlabel("seconds from ingest to the manager")
        axis.legend()
        charts.append({"title": "Alert latency", "svg": _svg(figure)})

    delays = [float(r["outbox_s"]) / 3600 for r in rows if r["outbox_s"] is not None]
    if delays:
        figure, axis = plt.subplots(figsize=(8, 3))
        axis.hist(delays, bins=40, color="#a885d8")
        axis.set_xlabel("hours between the visit and its arrival (offline outboxes)")
        charts.append({"title": "Outbox delays", "svg": _svg(figure)})

    latencies.sort()
    kpis = [
        ("visits stored", f"{len(rows):,}"),
        ("markets", str(len(by_market))),
        ("urgent complaints", f"{sum(1 for r in rows if r['urgent']):,}"),
        ("alerts delivered", f"{len(alerts):,}"),
        ("alert p50", f"{latencies[len(latencies) // 2]:.2f} s" if latencies else "–"),
        ("alert p99", f"{latencies[int(len(latencies) * 0.99)]:.2f} s" if latencies else "–"),
    ]
    environment = Environment(autoescape=select_autoescape(default=True))
    return environment.from_string(_TEMPLATE).render(
        title="My Customer, My Boss — field day report",
        campaign=campaign,
        generated=datetime.now().strftime("%Y-%m-%d %H:%M"),
        kpis=kpis,
        markets=markets,
        charts=charts,
    )
