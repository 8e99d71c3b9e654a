"""The worker keeps its areas' outage rows between batches (src/correlation/outage_cache.rs), and
lets them go when anyone else writes the outage tables: an operator's status, a SCADA alarm's own
call. A write that rolls back changes nothing, and they are kept. In deferred mode the later
signals of each test are decided by the worker, from what it keeps or, after such a write, from the
tables. Debug builds also check every area the worker answers from what it keeps against the
tables, and log any difference (conftest.py fails the run on it)."""

import psycopg2
import pytest

from conftest import dsn, query
from engine_grid import build_grid, kaifa, picture, play, scada


@pytest.fixture
def grid(pool):
    build_grid(pool, feeders=("A",), dps=1, meters_per_dp=10, onus={})
    return pool


def set_aside(pool):
    return query(pool, "SELECT count(*) FROM oms_correlation_set_aside")[0][0]


def dp_outages(pool):
    return [(row[0], row[2], row[8]) for row in picture(pool) if row[1] == "distribution_point"]


OFFS = [kaifa(f"E-A1-{n:02d}", "10:00") for n in (1, 2, 3, 4)]  # four of ten: DP-A1 rolls up


def test_an_outage_an_operator_closed_between_batches_takes_no_more_meters(grid):
    play(grid, OFFS)
    assert dp_outages(grid) == [("DP-A1", "confirmed", ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04"])]
    query(grid, "UPDATE oms_outage_events SET status = 'restored' WHERE scope = 'distribution_point'")
    # Kept as it was, DP-A1's outage would still be open, and the fifth meter would join it.
    play(grid, [kaifa("E-A1-05", "10:02")])
    assert dp_outages(grid) == [("DP-A1", "restored", ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04"])]
    assert [row[0] for row in picture(grid) if row[1] == "service" and row[7] is None] == ["E-A1-05"]
    assert set_aside(grid) == 0


def test_a_scada_alarms_own_call_between_batches_is_read_by_the_next(grid):
    """A SCADA alarm is applied in its own call, by the session that stores it: the worker did
    not write what it changed."""
    play(grid, OFFS)
    play(grid, [scada("A", "10:01")])
    feeder = [row for row in picture(grid) if row[1] == "feeder"]
    assert len(feeder) == 1 and feeder[0][8][:4] == ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04"]
    play(grid, [kaifa("E-A1-01", "10:30", restored=True)])
    assert set_aside(grid) == 0
    assert [row[1] for row in picture(grid)].count("feeder") == 1


def test_a_status_set_in_a_transaction_that_rolls_back_changes_nothing(db, grid):
    """Its row in oms_outage_writers rolls back with it: the worker goes on from what it keeps,
    and the fifth meter joins the outage that is still open."""
    play(grid, OFFS)
    operator = psycopg2.connect(dsn(db))
    try:
        with operator.cursor() as cur:
            cur.execute("UPDATE oms_outage_events SET status = 'restored' WHERE scope = 'distribution_point'")
        operator.rollback()
    finally:
        operator.close()
    play(grid, [kaifa("E-A1-05", "10:02")])
    assert dp_outages(grid) == [("DP-A1", "confirmed", ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04", "E-A1-05"])]
    assert set_aside(grid) == 0


def test_a_status_committed_while_the_worker_went_on_elsewhere_is_read_at_the_next_batch(db, pool):
    """The operator's change is still open while the worker decides another feeder: the worker
    keeps what it holds of feeder A then (nothing it could see had changed). Once the change
    commits, the next batch finds a writer it did not count, and reads feeder A again."""
    build_grid(pool, feeders=("A", "B"), dps=1, meters_per_dp=10, onus={})
    play(pool, OFFS)
    operator = psycopg2.connect(dsn(db))
    try:
        with operator.cursor() as cur:
            cur.execute("UPDATE oms_outage_events SET status = 'restored' WHERE scope = 'distribution_point'")
        play(pool, [kaifa("E-B1-01", "10:01")])
        operator.commit()
    finally:
        operator.close()
    play(pool, [kaifa("E-A1-05", "10:02")])
    assert dp_outages(pool) == [("DP-A1", "restored", ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04"])]
    assert set_aside(pool) == 0
