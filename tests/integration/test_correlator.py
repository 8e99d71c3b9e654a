"""The correlator (issue 21, SPEC §5): the queue loses nothing and correlates nothing twice, a batch
never writes what it opened and merged, a signal that cannot be correlated is set aside while the
rest go through, a transaction that commits late is correlated once it does, and a crash in the
middle of a batch leaves every committed signal correlated exactly once after the restart."""

import json
import subprocess
import threading
import time

import psycopg2
import pytest

from conftest import (BASE, CORRELATE, CORRELATING, REPO, call, dsn, heard, install_with_grid, listen, query, scalar,
                      settle)
from engine_grid import build_grid, kaifa, picture, scada, ticket

BIN = "/usr/lib/postgresql/15/bin"
CLUSTER = f"{REPO}/scripts/cluster.sh"


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def ingest_together(database, events, settings=()):
    """The events in one transaction of one session: they commit together."""
    conn = psycopg2.connect(dsn(database), options="-c TimeZone=UTC")
    with conn.cursor() as cur:
        for setting in settings:
            cur.execute(setting)
        for function, payload in events:
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            assert cur.fetchone()[0] is not None
    conn.commit()
    conn.close()


def status(pool):
    return query(pool, "SELECT queue_depth, set_aside FROM oms_correlation_status")[0]


def test_a_batch_never_writes_or_announces_what_it_opened_and_merged(grid, db):
    # Three meters of DP-A2 committed together are one batch: each opens its service outage and the
    # third rolls them up. Only the DP outage is written and announced (SPEC §5.8).
    listener = listen(db)
    ingest_together(db, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01"), ticket("E-A2-03", "10:02")],
                    ["SET oms_correlation.correlate = 'deferred'"])
    settle(grid)
    assert scalar(grid, "SELECT count(*) FROM oms_outage_events") == 1
    assert query(grid, "SELECT scope, status, affected_customers_count FROM oms_outage_events") == [
        ("distribution_point", "confirmed", 3)]
    # Its timeline: opened by the third signal's batch, nothing about outages that never existed.
    assert query(grid, "SELECT event_type FROM oms_event_timeline ORDER BY \"timestamp\", event_type") == [
        ("outage_detected",)]
    notes = [json.loads(m.payload) for m in heard(listener, db)]
    listener.close()
    assert [(n["scope"], n["changes"]) for n in notes] == [("distribution_point", ["opened", "confirmed"])]


def test_a_redelivered_signal_is_queued_and_correlated_once(grid):
    event = kaifa("E-B3-01", "10:00", event_id="KF-TWICE")
    for _ in range(3):
        conn = grid.getconn()
        with conn.cursor() as cur:
            cur.execute(f"SELECT {event[0]}(%s::jsonb)", (json.dumps(event[1]),))
        conn.commit()
        grid.putconn(conn)
    settle(grid)
    assert query(grid, "SELECT count(*) FROM oms_correlation_inputs WHERE source_event_id = 'KF-TWICE'") == [(1,)]
    assert query(grid, "SELECT count(*) FROM oms_event_sources WHERE source_event_id = 'KF-TWICE'") == [(1,)]
    assert query(grid, "SELECT count(*) FROM oms_meter_status_events WHERE source_event_id = 'KF-TWICE'") == [(1,)]


def test_a_signal_that_cannot_be_correlated_is_set_aside_and_the_rest_go_through(grid, db):
    # A DBA's trigger refuses the outage a poisoned ticket would open. Committed with two good
    # signals, in one batch: the batch is tried again in halves, the poisoned signal is set aside with
    # its error, and the others are correlated.
    query(grid, """CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                       IF NEW.description LIKE '%TC-POISON%' THEN
                           RAISE EXCEPTION 'refused by the DBA' USING ERRCODE = 'P0001';
                       END IF;
                       RETURN NEW;
                   END $$""")
    query(grid, "CREATE TRIGGER refuse_poison BEFORE INSERT ON public.oms_outage_events "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
    ingest_together(db, [kaifa("E-A1-05", "10:00"), ticket("E-B2-01", "10:00", ticket_id="TC-POISON"),
                         kaifa("E-B4-02", "10:01")], ["SET oms_correlation.correlate = 'deferred'"])
    if CORRELATE == "deferred":
        settle(grid)
    else:
        query(grid, "SELECT oms_correlate_pending()")
    assert status(grid) == (0, 1)
    assert query(grid, "SELECT source_type, source_event_id, sqlstate, error LIKE '%refused by the DBA%' "
                       "FROM oms_correlation_set_aside") == [("call_center", "TC-POISON", "P0001", True)]
    assert [row[:2] for row in picture(grid)] == [("E-A1-05", "service"), ("E-B4-02", "service")]
    # Fixed, it goes back on the queue and through.
    query(grid, "DROP TRIGGER refuse_poison ON public.oms_outage_events")
    assert scalar(grid, "SELECT oms_correlation_retry()") == 1
    query(grid, "SELECT oms_correlate_pending()")
    assert status(grid) == (0, 0)
    assert [row[:2] for row in picture(grid)] == [("E-A1-05", "service"), ("E-B2-01", "service"),
                                                  ("E-B4-02", "service")]


def test_a_long_transaction_s_signal_is_correlated_once_it_commits(grid, db):
    # A session holds the first of three meters of DP-A3 (10:00) in an open transaction while the
    # other two (10:01, 10:02) commit and are correlated: two service outages, no roll-up. When it
    # commits, its signal is taken in by its time: the DP rolls up, from 10:00 (a queue read as a
    # position would have skipped it, having read past it).
    long = psycopg2.connect(dsn(db), options="-c TimeZone=UTC")
    with long.cursor() as cur:
        cur.execute("SET oms_correlation.correlate = 'deferred'")
        function, payload = kaifa("E-A3-01", "10:00")
        cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
    ingest_together(db, [kaifa("E-A3-02", "10:01")], ["SET oms_correlation.correlate = 'deferred'"])
    ingest_together(db, [kaifa("E-A3-03", "10:02")], ["SET oms_correlation.correlate = 'deferred'"])
    query(grid, "SELECT oms_correlate_pending()")
    assert [row[:2] for row in picture(grid)] == [("E-A3-02", "service"), ("E-A3-03", "service")]
    long.commit()
    long.close()
    query(grid, "SELECT oms_correlate_pending()")
    assert [row[:4] + row[6:7] for row in picture(grid)] == [("DP-A3", "distribution_point", "confirmed", 3, "10:00")]


def test_the_status_view_shows_the_lag_and_the_last_batch(grid, db):
    ingest_together(db, [kaifa("E-A4-01", "10:00")], ["SET oms_correlation.correlate = 'deferred'"])
    settle(grid)
    row = query(grid, """SELECT queue_depth, oldest_pending_age IS NULL, last_batch_signals >= 1, last_batch_ms >= 0,
                                signals_correlated >= 1, set_aside, to_char(newest_event_at AT TIME ZONE 'UTC', 'HH24:MI')
                         FROM oms_correlation_status""")
    assert row == [(0, True, True, True, True, 0, "10:00")]


# -- a crash in the middle of a batch ---------------------------------------------------------------

CRASH_PORT = 25435


def crash_dsn(database="oms_crash"):
    return f"host=127.0.0.1 port={CRASH_PORT} user=postgres dbname={database}"


@pytest.fixture
def crash_cluster():
    subprocess.run([CLUSTER, "destroy", "crashbatch"], check=True)
    started = subprocess.run([CLUSTER, "start", "crashbatch", str(CRASH_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    conn = psycopg2.connect(crash_dsn("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE oms_crash")
    conn.close()
    install_with_grid(crash_dsn(), BASE)
    yield
    subprocess.run([CLUSTER, "destroy", "crashbatch"], check=True)


# 2,000 buildings, each the only building of its DP (four meters behind one ONU), 100 DPs a feeder:
# when every last gasp is in, each feeder is wholly out and its outage carries its 100 buildings.
CRASH_GRID = """
INSERT INTO network_substations (substation_id) VALUES ('CRASH-S');
INSERT INTO network_feeders (feeder_id, substation_id)
SELECT 'CRASH-F' || f, s.id FROM network_substations s, generate_series(1, 20) AS f WHERE s.substation_id = 'CRASH-S';
INSERT INTO network_distribution_points (dp_id, feeder_id)
SELECT 'CRASH-DP' || n, (SELECT id FROM network_feeders WHERE feeder_id = 'CRASH-F' || (1 + n % 20))
FROM generate_series(1, 2000) AS n;
INSERT INTO onus (id) SELECT 700000 + n FROM generate_series(1, 2000) AS n;
INSERT INTO oms_meters (meter_number, dp_id, feeder_id, onu_id, power_status, communication_status)
SELECT 'CRASH-M' || n || '-' || k, dp.id, dp.feeder_id, 700000 + n, 'on', 'online'
FROM generate_series(1, 2000) AS n CROSS JOIN generate_series(1, 4) AS k
JOIN network_distribution_points dp ON dp.dp_id = 'CRASH-DP' || n;
"""


def test_a_crash_in_the_middle_of_a_batch_correlates_every_committed_signal_exactly_once(crash_cluster):
    conn = psycopg2.connect(crash_dsn(), options="-c TimeZone=UTC")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(CRASH_GRID)
        # One transaction of 2,000 last gasps: the correlator takes them as one batch, and the
        # server stops the hard way while it works on it.
        cur.execute("SET oms_correlation.correlate = 'deferred'")
        cur.execute("BEGIN")
        cur.execute(f"""SELECT count({CORRELATING['onu']}(jsonb_build_object(
                            'eventId', 'CRASH-' || n, 'type', 'ONU_LastGaspAlert', 'onuId', 700000 + n,
                            'timestamp', '2025-10-01T10:00:00Z')))
                        FROM generate_series(1, 2000) AS n""")
        cur.execute("COMMIT")
        # Wait until a batch is on it: the worker has the queue's rows locked, deleted, uncommitted.
        deadline = time.monotonic() + 30
        while True:
            cur.execute("""SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                           WHERE a.application_name = 'oms_correlation worker'
                             AND l.relation = 'oms_correlation_queue'::regclass""")
            if cur.fetchone()[0] > 0:
                break
            assert time.monotonic() < deadline, "no batch took the queue"
            time.sleep(0.002)
    conn.close()
    subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN}/pg_ctl", "-D", "/tmp/oms_correlation/crashbatch/data",
                    "-m", "immediate", "stop"], check=True, capture_output=True)
    started = subprocess.run([CLUSTER, "start", "crashbatch", str(CRASH_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    conn = psycopg2.connect(crash_dsn(), options="-c TimeZone=UTC")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM oms_correlate_pending()")
        cur.execute("SELECT queue_depth, set_aside FROM oms_correlation_status")
        assert cur.fetchone() == (0, 0)
        # Twenty feeder outages of 400 customers; across them each last gasp is one source and each
        # meter one span: no signal missing and none twice. Nothing else on these feeders is open or merged.
        cur.execute("""SELECT o.scope, o.status, count(*), count(*) FILTER (WHERE o.affected_customers_count = 400
                                                                          AND o.customers_out = 400),
                              sum((SELECT count(*) FROM oms_event_sources es WHERE es.outage_event_id = o.id)),
                              sum((SELECT count(*) FROM oms_outage_meters om WHERE om.outage_id = o.id))
                       FROM oms_outage_events o JOIN network_feeders f ON f.id = o.feeder_id
                       WHERE f.feeder_id LIKE 'CRASH-F%' GROUP BY 1, 2""")
        assert cur.fetchall() == [("feeder", "confirmed", 20, 20, 2000, 8000)]
        cur.execute("""SELECT count(*), count(DISTINCT source_event_id) FROM oms_correlation_inputs
                       WHERE source_event_id LIKE 'CRASH-%'""")
        assert cur.fetchone() == (2000, 2000)
    conn.close()


def test_an_outage_of_thousands_of_meters_is_announced_within_notify_s_8000_bytes(pool, db):
    # One feeder of 3,000 meters (60 DPs of 50) that a SCADA trip takes out whole (topology scope:
    # every meter in scope is affected); then a last gasp from every meter, in one transaction, joins
    # it in one batch. A message that listed the outage's meters (or their customers, or its sources)
    # would pass 8000 bytes and fail the NOTIFY, and with it the batch: the counts travel, not lists.
    build_grid(pool, feeders=("A",), dps=60, meters_per_dp=50, onus={})
    listener = listen(db)
    result = call(pool, CORRELATING["scada"], scada("A", "10:00")[1], {"oms_correlation.scada_scope": "topology"})
    assert (result["affected_meters"], result["outage_created"]) == (3000, True)
    ingest_together(db, [kaifa(f"E-A{d}-{n:02d}", "10:00:30", event_id=f"KF-BIG-{d}-{n}")
                         for d in range(1, 61) for n in range(1, 51)],
                    ["SET oms_correlation.correlate = 'deferred'"])
    query(pool, "SELECT oms_correlate_pending()")
    settle(pool)
    notes = heard(listener, db)
    listener.close()
    assert max(len(n.payload.encode()) for n in notes) < 8000
    feeder = [json.loads(n.payload) for n in notes if json.loads(n.payload).get("scope") == "feeder"]
    assert [(n["changes"][0], n["affected_customers_count"]) for n in feeder][0] == ("opened", 3000)
    assert scalar(pool, "SELECT count(*) FROM oms_event_sources WHERE source_event_id LIKE 'KF-BIG-%'") == 3000


def test_two_kaifa_messages_with_one_id_are_logged_once_and_set_nothing_aside(grid):
    """One message keyed by its header's message_id, another by its event_id, the same text: both
    are stored (their delivery keys differ) and both queue a power-off with the same source id. The
    second finds the first in the correlation log and adds nothing; nothing is set aside."""
    function, first = kaifa("E-A1-05", "10:00", event_id="SHARED-ID")
    first["header"] = {"message_id": "SHARED-ID"}
    first["payload"]["event_id"] = "OTHER-EVENT"
    _, second = kaifa("E-A1-05", "10:00", event_id="SHARED-ID")
    for payload in (first, second):
        assert call(grid, function, payload) is not None
    assert scalar(grid, "SELECT count(*) FROM kaifa_events WHERE delivery_key LIKE '%SHARED-ID'") == 2
    assert scalar(grid, "SELECT count(*) FROM oms_correlation_set_aside") == 0
    assert scalar(grid, "SELECT count(*) FROM oms_correlation_inputs WHERE source_event_id = 'SHARED-ID'") == 1
