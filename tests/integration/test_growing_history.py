"""What the correlator reads is kept for good and grows for as long as the database lives: its
input log (oms_correlation_inputs), the meters' status history (oms_meter_status_events), the
momentary interruptions, and the outages with their memberships, sources and customers. A batch
must read what it needs of them by key: an area's log from its replay's start, the history of the
meters going off, the interruptions and outages over since the look-back. A plan that reads one of
them whole costs every batch more each day: on a benchmark database holding 200,000 logged inputs,
each batch spent 61-110 ms scanning the log for no row (docs/benchmarks.md, fourteenth session).

Checked with the plans PostgreSQL makes after ANALYZE, custom and then generic (the plan cache
tries five custom plans first): each batch runs in the test's own session (immediate mode, in one
transaction with its ingest call), so that pg_stat_xact_user_tables shows what it read."""

import json

import psycopg2

from conftest import dsn, query
from engine_grid import DAY, build_grid, kaifa

HISTORY = 60_000
OUTAGES = 20_000


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

    batches_read_by_key(db, ("oms_correlation_inputs", "oms_meter_status_events", "oms_momentary_interruptions"))
    # Each was correlated: an outage of its own for each meter (two of ten on each DP: no roll-up).
    assert query(pool, "SELECT count(*) FROM oms_correlation_inputs WHERE source_event_id LIKE 'KF-%'")[0][0] == 8
    assert query(pool, """SELECT count(*) FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number LIKE 'E-%'""")[0][0] == 8


def test_a_batch_reads_the_outage_history_by_key(db, pool):
    """Outages, their memberships, sources and customers are kept for good too: a batch reads
    those of its areas that are open or ended within the look-back, never the history."""
    build_grid(pool, feeders=("A", "B"), dps=4, meters_per_dp=10, onus={})
    query(pool, """
        INSERT INTO oms_outage_events (event_id, status, scope, device_key, substation_id, feeder_id, dp_id,
                                       first_detected_at, opened_at, actual_restoration_time,
                                       affected_customers_count, customers_out, placement)
        SELECT 'HISTORY-' || n, 'restored', 'service', 'service:meter:' || m.id, m.substation_id, m.feeder_id, m.dp_id,
               %s::timestamptz - n * interval '7 min', %s::timestamptz - n * interval '7 min',
               %s::timestamptz - n * interval '7 min' + interval '1 h', 1, 0, 'service'
        FROM generate_series(1, %s) AS n
        JOIN (SELECT id, substation_id, feeder_id, dp_id, row_number() OVER (ORDER BY id) - 1 AS k FROM oms_meters
              WHERE feeder_id IS NOT NULL) AS m
          ON m.k = n %% (SELECT count(*) FROM oms_meters WHERE feeder_id IS NOT NULL)""",
          (f"{DAY} 00:00:00+00",) * 3 + (OUTAGES,))
    query(pool, """
        INSERT INTO oms_outage_meters (outage_id, meter_id, off_at, on_at, customer_key, customer_id, dp_id,
                                       feeder_id, substation_id, first_source, first_source_event_id, origin_outage_id)
        SELECT o.id, m.id, o.first_detected_at, o.actual_restoration_time, coalesce(m.customer_id, m.id),
               m.customer_id, o.dp_id, o.feeder_id, o.substation_id, 'kaifa', o.event_id, o.id
        FROM oms_outage_events o JOIN oms_meters m ON o.device_key = 'service:meter:' || m.id""")
    query(pool, """
        INSERT INTO oms_event_sources (outage_event_id, source_type, source_event_id, event_timestamp,
                                       correlation_weight, confidence_weight, origin_outage_id)
        SELECT o.id, 'kaifa', o.event_id, o.first_detected_at, 0.8, 0.8, o.id FROM oms_outage_events o""")
    query(pool, """
        INSERT INTO oms_outage_customers (outage_id, customer_id, linked_at, restored_at)
        SELECT o.id, m.customer_id, o.first_detected_at, o.actual_restoration_time
        FROM oms_outage_events o JOIN oms_meters m ON o.device_key = 'service:meter:' || m.id
        WHERE m.customer_id IS NOT NULL""")
    query(pool, "ANALYZE")
    batches_read_by_key(db, ("oms_outage_events", "oms_outage_meters", "oms_event_sources", "oms_outage_customers"))
    assert query(pool, """SELECT count(*) FROM oms_outage_events o JOIN network_substations s ON s.id = o.substation_id
                          WHERE s.substation_id = 'SS-ENG' AND o.event_id NOT LIKE 'HISTORY-%'""")[0][0] == 8


def batches_read_by_key(db, tables):
    """Eight meters of feeder A go off, one call each, each correlated in its call (immediate mode)
    by this session: no scan of a whole table of `tables`, and a few rows read of each, where the
    tables hold tens of thousands. What each batch read is the change of pg_stat_xact_user_tables
    over its transaction (a backend reports its counts only between transactions)."""
    counts = """SELECT relname, seq_scan, seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables
                WHERE relname = ANY (%s) ORDER BY relname"""
    conn = psycopg2.connect(dsn(db), options="-c TimeZone=UTC")
    try:
        for n in range(1, 9):
            function, payload = kaifa(f"E-A{1 + n % 4}-{n:02d}", f"10:{n:02d}")
            with conn.cursor() as cur:
                cur.execute(counts, (list(tables),))
                before = {name: (scans, rows) for name, scans, rows in cur.fetchall()}
                cur.execute("SET LOCAL oms_correlation.correlate = 'immediate'")
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
                cur.execute(counts, (list(tables),))
                read = {name: (scans - before.get(name, (0, 0))[0], rows - before.get(name, (0, 0))[1])
                        for name, scans, rows in cur.fetchall()}
            conn.commit()
            assert {name: scans for name, (scans, _) in read.items() if scans} == {}, \
                f"batch {n} read a growing table whole: {read}"
            assert {name: rows for name, (_, rows) in read.items() if rows > 50} == {}, \
                f"batch {n} read too much: {read}"
    finally:
        conn.close()
