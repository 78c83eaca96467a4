"""pg_stat_statements read twice: what each statement did in between, the bench's own
statements shown but left out of the backends' shares."""

from bench.kit.statements import Statement, difference, table

BEFORE = {
    (1, 10): Statement("INSERT INTO terrain.submissions ...", 5, 500, 100.0, 1.0),
    (1, 20): Statement("SELECT 1", 3, 3, 1.0, 0.0),
}
AFTER = {
    (1, 10): Statement("INSERT INTO terrain.submissions ...", 15, 1500, 400.0, 2.0),
    (1, 20): Statement("SELECT 1", 3, 3, 1.0, 0.0),  # not run in between
    (1, 30): Statement("SELECT  count(*)\n FROM t", 10, 10, 100.0, 0.0),  # new
}


def test_the_difference_keeps_what_ran_most_time_first() -> None:
    moved = difference(BEFORE, AFTER)

    assert [(s.calls, s.rows, s.exec_ms) for s in moved] == [(10, 1000, 300.0), (10, 10, 100.0)]


def test_the_bench_s_own_statements_are_out_of_the_shares() -> None:
    lines = table(difference(BEFORE, AFTER), visits=1000, own=["SELECT count(*) FROM t"])

    insert = next(line for line in lines if "INSERT" in line)
    mine = next(line for line in lines if "count(*)" in line)
    assert insert.endswith("| 10 | 1,000 | 300.0 | 30.00 | 100% |")
    assert mine.startswith("| (the bench) ") and mine.endswith("| 0% |")
