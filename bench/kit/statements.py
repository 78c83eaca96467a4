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


@dataclass
class Watch:
    """The statements of one database from ``begin`` to ``end``; a server without
    pg_stat_statements gives the reason instead of a table, never an error."""

    admin_url: str
    database: str
    _before: Snapshot | str = ""
    moved: list[Statement] | str = "not read"  # or why not

    async def begin(self) -> None:
        self._before = await snapshot(self.admin_url, self.database)

    async def end(self) -> None:
        after = await snapshot(self.admin_url, self.database)
        before = self._before
        if isinstance(before, str) or isinstance(after, str):
            self.moved = str(before if isinstance(before, str) else after)
        else:
            self.moved = difference(before, after)

    def table(self, visits: int, own: Collection[str] = ()) -> list[str]:
        """``table`` of what moved, or why nothing could be read."""
        if isinstance(self.moved, str):
            return [self.moved]
        return table(self.moved, visits, own)


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


def table(statements: list[Statement], visits: int, own: Collection[str] = ()) -> list[str]:
    """The top statements by execution time: calls, rows, µs of execution per visit, mean
    ms and their share of the services' statements' time. Execution time is the backend's
    wall time: a wait for a lock or for the disk counts, so a statement whose µs per visit
    exceeds the backends' CPU per visit is mostly waiting. Statements whose text is in
    ``own`` are the benchmark's (its backend is not among the services'): shown, left out
    of the shares."""
    normalised = {" ".join(query.split()) for query in own}
    mine = {id(s) for s in statements if " ".join(s.query.split()) in normalised}
    total_ms = sum(s.exec_ms for s in statements if id(s) not in mine) or 1.0
    lines = [
        f"PostgreSQL statements of the run's database (pg_stat_statements, the profile's "
        f"window; the top {TOP} of {len(statements)} by execution time, "
        f"{total_ms / 1000:,.1f} s of it for the services' statements, waits included)",
        "",
        "| statement | calls | rows | exec µs per visit | mean ms | share of exec time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in statements[:TOP]:
        share = 0.0 if id(s) in mine else s.exec_ms / total_ms
        who = "(the bench) " if id(s) in mine else ""
        lines.append(
            f"| {who}`{_shown(s.query)}` | {s.calls:,} | {s.rows:,} | "
            f"{s.exec_ms * 1000 / max(visits, 1):,.1f} | {s.exec_ms / max(s.calls, 1):,.2f} | "
            f"{share:.0%} |"
        )
    rest = [s for s in statements[TOP:] if id(s) not in mine]
    if rest:
        ms = sum(s.exec_ms for s in rest)
        lines.append(
            f"| {len(rest)} more | {sum(s.calls for s in rest):,} | {sum(s.rows for s in rest):,}"
            f" | {ms * 1000 / max(visits, 1):,.1f} | | {ms / total_ms:.0%} |"
        )
    return lines
