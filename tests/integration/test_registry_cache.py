"""What the correlator reads of the registry (where meters hang, SPEC §5.1; the active meters a
roll-up weighs, §5.3) is kept between batches (src/correlation/registry_cache.rs) and read again
whenever the registry changes it: a DBA's change takes effect at the next batch, committed or not
at all."""

import json

import psycopg2
import pytest

from conftest import dsn, query
from engine_grid import build_grid, kaifa, picture, play

# DP-A1 of forty meters: three off are under a quarter of them (rollup_dp_min_share 0.25), no
# roll-up; four off of ten active are.
METERS = 40


@pytest.fixture
def grid(pool):
    build_grid(pool, feeders=("A",), dps=1, meters_per_dp=METERS, onus={})
    return pool


def dp_rows(pool):
    return [(row[0], row[1], row[8]) for row in picture(pool) if row[1] == "distribution_point"]


def test_a_dp_made_smaller_between_batches_is_weighed_at_its_new_size(grid):
    play(grid, [kaifa(f"E-A1-{n:02d}", "10:00") for n in (1, 2, 3)])
    assert dp_rows(grid) == []  # 3 of 40: no DP fault
    # Thirty meters leave service: DP-A1 has ten active. The correlator counted forty last batch.
    query(grid, "UPDATE oms_meters SET status = 'inactive' WHERE meter_number > 'E-A1-10' AND meter_number LIKE 'E-A1-%'")
    play(grid, [kaifa("E-A1-04", "10:01")])
    assert dp_rows(grid) == [("DP-A1", "distribution_point", ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04"])]


def test_a_count_taken_in_a_transaction_that_rolls_back_is_not_kept(db, grid):
    """Inside a transaction, thirty meters leave service and four go off: DP-A1 rolls up (four of
    ten). It all rolls back. The same four, sent again, are four of forty: no roll-up, although
    the registry's generation has not moved since the count of ten was taken."""
    conn = psycopg2.connect(dsn(db), options="-c TimeZone=UTC -c oms_correlation.correlate=immediate")
    offs = [kaifa(f"E-A1-{n:02d}", "10:00", event_id=f"KF-E-A1-{n:02d}") for n in (1, 2, 3, 4)]
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE oms_meters SET status = 'inactive' "
                        "WHERE meter_number > 'E-A1-10' AND meter_number LIKE 'E-A1-%'")
            for function, payload in offs:
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            cur.execute("SELECT count(*) FROM oms_outage_events o JOIN network_distribution_points dp ON dp.id = o.dp_id "
                        "WHERE o.scope = 'distribution_point' AND dp.dp_id = 'DP-A1' AND o.status <> 'merged'")
            assert cur.fetchone() == (1,)
        conn.rollback()
        with conn.cursor() as cur:
            for function, payload in offs:
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
        conn.commit()
    finally:
        conn.close()
    assert dp_rows(grid) == []
    assert [row[1] for row in picture(grid)] == ["service"] * 4


def test_a_meter_given_another_customer_between_batches_is_counted_for_it(db, pool):
    build_grid(pool, feeders=("A",), dps=2, meters_per_dp=10, onus={})
    play(pool, [kaifa("E-A1-05", "10:00"), kaifa("E-A1-05", "10:01", restored=True)])
    query(pool, "UPDATE oms_meters SET customer_id = (SELECT id FROM oms_customers WHERE customer_id = 'CE-A2-09') "
                "WHERE meter_number = 'E-A1-05'")
    play(pool, [kaifa("E-A1-05", "10:30")])
    assert query(pool, """SELECT c.customer_id FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          JOIN oms_customers c ON c.id = om.customer_id
                          WHERE m.meter_number = 'E-A1-05' AND om.on_at IS NULL""") == [("CE-A2-09",)]


def test_a_change_committed_after_a_batch_counted_is_counted_at_the_next(db, grid):
    """A DBA's change is read once it commits, even when a batch counted while it was pending:
    the generation moves when the change commits, not when its statement ran."""
    dba = psycopg2.connect(dsn(db))
    try:
        with dba.cursor() as cur:
            cur.execute("UPDATE oms_meters SET status = 'inactive' "
                        "WHERE meter_number > 'E-A1-10' AND meter_number LIKE 'E-A1-%'")
        play(grid, [kaifa(f"E-A1-{n:02d}", "10:00") for n in (1, 2, 3)])
        assert dp_rows(grid) == []  # counted while the change was pending: 3 of 40
        dba.commit()
    finally:
        dba.close()
    play(grid, [kaifa("E-A1-04", "10:01")])
    assert dp_rows(grid) == [("DP-A1", "distribution_point", ["E-A1-01", "E-A1-02", "E-A1-03", "E-A1-04"])]
