"""Which statements a run's PostgreSQL backends spent their time on: ``pg_stat_statements``
(preloaded by ``deploy/local/postgres.sh``; the extension lives in the admin database,
where the counters of every database can be read) before and after the load, for the
run's throwaway database only, as a difference: no reset, so other runs are undisturbed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import asyncpg

TOP = 12

_READ = """
SELECT userid, queryid, query, calls, rows, total_exec_time, total_plan_time
FROM pg_stat_statements
WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = $1)
"""


@dataclass(frozen=True)
class Statement:
    """One normalised statement's counters (times in ms, as PostgreSQL keeps them)."""

    query: str
    calls: int
    rows: int
    exec_ms: float
    plan_ms: float


Snapshot = dict[tuple[int, int], Statement]


async def snapshot(admin_url: str, database: str) -> Snapshot | str:
    """The counters of ``database``'s statements now, or why they cannot be read."""
    try:
        connection = await asyncpg.connect(admin_url)
        try:
            rows = await connection.fetch(_READ, database)
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError) as error:
        return f"pg_stat_statements not readable: {type(error).__name__}: {error}"
    return {
        (int(r["userid"]), int(r["queryid"])): Statement(
            r["query"],
            int(r["calls"]),
            int(r["rows"]),
            float(r["total_exec_time"]),
            float(r["total_plan_time"]),
        )
        for r in rows
    }


def difference(before: Snapshot, after: Snapshot) -> list[Statement]:
    """What each statement did between the snapshots, most execution time first."""
    zero = Statement("", 0, 0, 0.0, 0.0)
    moved = []
    for key, now in after.items():
        was = before.get(key, zero)
        if now.calls > was.calls:
            moved.append(
                Statement(
                    now.query,
                    now.calls - was.calls,
                    now.rows - was.rows,
                    now.exec_ms - was.exec_ms,
                    now.plan_ms - was.plan_ms,
                )
            )
    return sorted(moved, key=lambda s: s.exec_ms, reverse=True)


def _shown(query: str, width: int = 110) -> str:
    one_line = " ".join(query.split()).replace("|", "\\|")
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def table(
    statements: list[Statement], visits: int, backends_us: float, own: Collection[str] = ()
) -> list[str]:
    """The top statements by execution time: calls, rows, µs of execution per visit, mean
    ms, and their share of the services' statements' time applied to the backends' CPU
    per visit (``backends_us``, from /proc). Statements whose text is in ``own`` are the
    benchmark's (its backend is not among the services'): shown, left out of the shares."""
    normalised = {" ".join(query.split()) for query in own}
    theirs = [s for s in statements if " ".join(s.query.split()) not in normalised]
    total_ms = sum(s.exec_ms for s in theirs) or 1.0
    lines = [
        f"PostgreSQL statements of the run's database (pg_stat_statements, top {TOP} by "
        f"execution time of {len(statements)}; {total_ms / 1000:,.1f} s executing for the "
        f"services; the backends' {backends_us:,.0f} µs CPU per visit shared by that time)",
        "",
        "| statement | calls | rows | exec µs per visit | mean ms | share | ≈ backend CPU µs "
        "per visit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    mine = {id(s) for s in statements} - {id(s) for s in theirs}
    for s in statements[:TOP]:
        share = 0.0 if id(s) in mine else s.exec_ms / total_ms
        who = "(the bench) " if id(s) in mine else ""
        lines.append(
            f"| {who}`{_shown(s.query)}` | {s.calls:,} | {s.rows:,} | "
            f"{s.exec_ms * 1000 / max(visits, 1):,.1f} | {s.exec_ms / max(s.calls, 1):,.2f} | "
            f"{share:.0%} | {share * backends_us:,.0f} |"
        )
    rest = [s for s in statements[TOP:] if id(s) not in mine]
    if rest:
        ms = sum(s.exec_ms for s in rest)
        lines.append(
            f"| {len(rest)} more | {sum(s.calls for s in rest):,} | {sum(s.rows for s in rest):,}"
            f" | {ms * 1000 / max(visits, 1):,.1f} | | {ms / total_ms:.0%} | "
            f"{ms / total_ms * backends_us:,.0f} |"
        )
    return lines
