"""The correlator's input log (oms_correlation_inputs), the meters' status history
(oms_meter_status_events) and the momentary interruptions are kept, and grow for as long as the
database lives. A batch reads what it needs of them by key: the log from each area's replay
start, the history of the meters going off, the interruptions over since the look-back. A plan that reads either whole costs every batch more each day: before 0.4.0's
LATERAL reads, a batch of a benchmark with 200,000 logged inputs spent 60-110 ms scanning the log
alone, for no row.

Checked with the plans PostgreSQL makes after ANALYZE, custom and then generic (the plan cache
tries five custom plans first): each batch here runs in the test's own session (immediate mode,
in one transaction with its ingest call), so that pg_stat_xact_user_tables counts its scans."""

import json

import psycopg2

from conftest import CORRELATING, dsn, query
from engine_grid import DAY, build_grid, kaifa

HISTORY = 60_000


def test_a_batch_reads_the_input_log_and_the_status_history_by_key(db, pool):
    build_grid(pool, feeders=("A", "B"), dps=4, meters_per_dp=10, onus={})
    # Days of history before the grid's day: logged inputs of both feeders, and power changes of
    # every meter.
    query(pool, """
        INSERT INTO oms_correlation_inputs (area, at, kind, source_type, source_event_id, meters)
        SELECT 'feeder:' || f.id, %s::timestamptz - n * interval '7 s', 'on', 'kaifa', 'HISTORY-' || n, '{}'
        FROM generate_series(1, %s) AS n
        JOIN network_feeders f ON f.feeder_id = CASE n %% 2 WHEN 0 THEN 'F-A' ELSE 'F-B' END""",
          (f"{DAY} 00:00:00+00", HISTORY))
    query(pool, """
        INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, event_timestamp)
        SELECT m.id, CASE n %% 2 WHEN 0 THEN 'power_on' ELSE 'power_off' END, 'kaifa',
               %s::timestamptz - n * interval '11 s'
        FROM generate_series(1, %s) AS n
        JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM oms_meters) AS m
          ON m.k = n %% (SELECT count(*) FROM oms_meters)""",
          (f"{DAY} 00:00:00+00", HISTORY))
    query(pool, """
        INSERT INTO oms_momentary_interruptions (meter_id, feeder_id, area, interrupted_at, restored_at,
                                                 source_type, source_event_id)
        SELECT m.id, m.feeder_id, 'feeder:' || m.feeder_id, %s::timestamptz - n * interval '13 s',
               %s::timestamptz - n * interval '13 s' + interval '20 s', 'onu', 'HISTORY-' || n
        FROM generate_series(1, %s) AS n
        JOIN (SELECT id, feeder_id, row_number() OVER (ORDER BY id) - 1 AS k FROM oms_meters
              WHERE feeder_id IS NOT NULL) AS m
          ON m.k = n %% (SELECT count(*) FROM oms_meters WHERE feeder_id IS NOT NULL)""",
          (f"{DAY} 00:00:00+00", f"{DAY} 00:00:00+00", HISTORY))
    query(pool, "ANALYZE")

    conn = psycopg2.connect(dsn(db), options="-c TimeZone=UTC")
    try:
        for n in range(1, 9):
            function, payload = kaifa(f"E-A{1 + n % 4}-{n:02d}", f"10:{n:02d}")
            assert function == CORRELATING["kaifa"]
            with conn.cursor() as cur:
                cur.execute("SET LOCAL oms_correlation.correlate = 'immediate'")
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
                cur.execute("""SELECT relname, seq_scan, seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables
                               WHERE relname IN ('oms_correlation_inputs', 'oms_meter_status_events',
                                                 'oms_momentary_interruptions')
                               ORDER BY relname""")
                scans = cur.fetchall()
            conn.commit()
            # (relname, seq_scan, seq_tup_read, idx_tup_fetch), counted since the session began:
            # no scan of a whole table, and a few rows read, where the tables hold 60,000 each.
            assert [s for s in scans if s[1] > 0] == [], f"batch {n} read a growing table whole: {scans}"
            assert [s for s in scans if s[2] + s[3] > 50 * n] == [], f"batch {n} read too much: {scans}"
    finally:
        conn.close()
    # Each was correlated: one outage per meter that went off (one a DP, none rolled up).
    assert query(pool, "SELECT count(*) FROM oms_correlation_inputs WHERE source_event_id LIKE 'KF-%'")[0][0] == 8
    assert query(pool, "SELECT count(*) FROM oms_outage_meters")[0][0] == 8
