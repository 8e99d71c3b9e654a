"""The correlator's worker through its life (issue 21): started with the server under preload, and
dynamically by an ingest call without it; back after pg_terminate_backend; stopped by DROP
EXTENSION. Every wait is on a condition (pg_stat_activity, oms_correlation_status), with a deadline."""

import json
import os
import subprocess
import time

import pytest

from conftest import CORRELATING, PORT, REPO, example, settle_database
from test_library import CLUSTER, PRELOAD_PORT, connect, create_database, one, preload_cluster  # noqa: F401

pytestmark = pytest.mark.fresh_only  # clusters and databases of its own

WORKER = """SELECT pid FROM pg_stat_activity
            WHERE application_name = 'oms_correlation worker' AND datname = current_database()"""


def wait_for(conn, sql, predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while True:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        if predicate(rows):
            return rows
        assert time.monotonic() < deadline, f"{what}: still {rows} after {seconds} s"
        time.sleep(0.05)


def worker_pids(conn):
    with conn.cursor() as cur:
        cur.execute(WORKER)
        return {pid for (pid,) in cur.fetchall()}


def gasp(conn, n):
    """An ONU last gasp of the demo grid's ONU, queued (deferred): the worker has to take it in."""
    payload = dict(example("onu_last_gasp.json"), eventId=f"WORKER-LIFE-{n}",
                   timestamp=f"2025-09-30T10:{n:02d}:00Z")
    with conn.cursor() as cur:
        cur.execute("SET oms_correlation.correlate = 'deferred'")
        cur.execute(f"SELECT {CORRELATING['onu']}(%s::jsonb)", (json.dumps(payload),))


def with_extension_and_grid(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
        with open(os.path.join(REPO, "demo", "grid.sql")) as f:
            cur.execute(f.read())


def test_without_preload_an_ingest_call_starts_the_worker_and_again_after_it_is_terminated(new_database):
    database = new_database("oms_it_worker_")
    conn = connect(PORT, database)
    with_extension_and_grid(conn)
    assert worker_pids(conn) == set()
    assert one(conn, "SELECT worker_pid, worker_state FROM oms_correlation_status") == (None, None)
    gasp(conn, 1)
    first = wait_for(conn, WORKER, lambda rows: len(rows) == 1, 10, "a worker for the database")[0][0]
    settle_database(database, 20)
    # Terminated: ingest calls look for it again every few seconds and register another.
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (first,))
    wait_for(conn, WORKER, lambda rows: first not in {pid for (pid,) in rows}, 10, "the terminated worker gone")
    deadline = time.monotonic() + 20
    n = 2
    while not worker_pids(conn) - {first}:
        assert time.monotonic() < deadline, "no worker came back"
        gasp(conn, n)
        n += 1
        time.sleep(0.5)
    settle_database(database, 20)
    # DROP EXTENSION stops it, and nothing starts another.
    with conn.cursor() as cur:
        cur.execute("SET oms_correlation.allow_drop_with_data = on")  # the guard's own switch
        cur.execute("DROP EXTENSION oms_correlation")
    wait_for(conn, WORKER, lambda rows: rows == [], 10, "the worker after DROP EXTENSION")
    time.sleep(1)
    assert worker_pids(conn) == set()
    conn.close()


def test_a_terminated_worker_stops_mid_batch_and_its_batch_is_correlated_later_once(new_database):
    """pg_terminate_backend (and DROP DATABASE ... WITH (FORCE), a fast shutdown: the same signal)
    stops the worker where it is, here waiting for a lock in the middle of a batch, as it stops any
    backend: the batch is rolled back, its signal stays queued, and it is correlated once later."""
    database = new_database("oms_it_worker_")
    conn = connect(PORT, database)
    with_extension_and_grid(conn)
    gasp(conn, 1)
    worker = wait_for(conn, WORKER, lambda rows: len(rows) == 1, 10, "a worker for the database")[0][0]
    settle_database(database, 20)
    # A session holds the log of inputs against writes: the next batch waits for it.
    holder = connect(PORT, database)
    holder.autocommit = False
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE oms_correlation_inputs IN SHARE MODE")
        gasp(conn, 2)
        wait_for(conn, f"SELECT wait_event_type FROM pg_stat_activity WHERE pid = {worker}",
                 lambda rows: rows == [("Lock",)], 10, "the worker waiting for the lock")
        # True: gone within 5 s (a worker that only flagged the signal waits on for the lock).
        assert one(conn, "SELECT pg_terminate_backend(%s, 5000)", (worker,)) == (True,)
        assert one(conn, "SELECT queue_depth FROM oms_correlation_status") == (1,)
    finally:
        holder.rollback()
        holder.close()
    with conn.cursor() as cur:
        cur.execute("SELECT signals FROM oms_correlate_pending()")
        assert cur.fetchone() == (1,)
    assert one(conn, "SELECT count(*) FROM oms_correlation_inputs WHERE source_event_id = 'WORKER-LIFE-2'") == (1,)
    assert one(conn, "SELECT queue_depth FROM oms_correlation_status") == (0,)
    conn.close()


def served_by_the_preloaded_worker(database):
    """The preload cluster started again with its worker serving `database`, made here with the
    extension and the demo grid: a connection to it."""
    admin = connect(PRELOAD_PORT, "postgres")
    with admin.cursor() as cur:
        cur.execute(f"ALTER SYSTEM SET oms_correlation.database = '{database}'")
        # Each lone last gasp here must show as an outage once correlated, not a minute later
        # (the declaration delay, issue 22, has its own tests).
        cur.execute("ALTER SYSTEM SET oms_correlation.declaration_delay = 0")
    admin.close()
    subprocess.run([CLUSTER, "stop", "preload"], check=True)
    started = subprocess.run([CLUSTER, "start", "preload", str(PRELOAD_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    create_database(database)
    conn = connect(PRELOAD_PORT, database)
    with_extension_and_grid(conn)
    return conn


def test_with_preload_the_worker_serves_its_database_through_terminate_and_drop(preload_cluster):
    database = "oms_worker_life"
    conn = served_by_the_preloaded_worker(database)
    # Started with the server (the postmaster retries until the database exists), it waits for the
    # extension, then drains without any ingest call registering it.
    first = wait_for(conn, WORKER, lambda rows: len(rows) == 1, 30, "the preloaded worker")[0][0]
    gasp(conn, 1)
    settle_database(database, 20, PRELOAD_PORT)
    # Terminated: the postmaster starts it again.
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (first,))
    second = wait_for(conn, WORKER, lambda rows: len(rows) == 1 and rows[0][0] != first, 20,
                      "the preloaded worker back")[0][0]
    gasp(conn, 2)
    settle_database(database, 20, PRELOAD_PORT)
    # DROP EXTENSION stops it from correlating; created again, the extension is served again.
    with conn.cursor() as cur:
        cur.execute("SET oms_correlation.allow_drop_with_data = on")  # the guard's own switch
        cur.execute("DROP EXTENSION oms_correlation")
    wait_for(conn, WORKER, lambda rows: second not in {pid for (pid,) in rows}, 10, "the worker after DROP")
    with_extension_and_grid(conn)
    gasp(conn, 3)
    settle_database(database, 30, PRELOAD_PORT)
    assert one(conn, "SELECT count(*) FROM oms_outage_events")[0] == 1
    conn.close()


# The advisory lock a database's worker takes first (WORKER_LOCK_CLASS in src/correlation/worker.rs).
WORKER_LOCK = (1869440369, 0)


def test_with_preload_the_worker_started_again_waits_for_the_lock_and_then_serves(preload_cluster):
    """The postmaster starts the server's worker again a second after it dies. If another worker
    holds the database's lock by then (one an ingest call registered in that second), the server's
    worker must wait for it, then serve the database: not leave, as a worker that exits with code 0
    is never started again. A session holds the lock here in the other worker's place."""
    database = "oms_worker_race"
    conn = served_by_the_preloaded_worker(database)
    first = wait_for(conn, WORKER, lambda rows: len(rows) == 1, 30, "the preloaded worker")[0][0]
    holder = connect(PRELOAD_PORT, database)
    with holder.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
        # Queued for the lock as the worker lets go of it: taken before the worker started again
        # a second later can try for it.
        cur.execute("SELECT pg_advisory_lock(%s, %s)", WORKER_LOCK)
    again = wait_for(conn, WORKER, lambda rows: len(rows) == 1 and rows[0][0] != first, 20,
                     "the preloaded worker started again")[0][0]
    time.sleep(3)
    assert worker_pids(conn) == {again}, "the worker started again left while the lock was held"
    # Operators see that it does not serve yet.
    assert one(conn, "SELECT worker_pid, worker_state FROM oms_correlation_status") == (again, "waiting for the lock")
    holder.close()
    # It takes the lock and serves: a signal queued now is correlated by it, and no other worker
    # is registered (an ingest call registers one only when none is listed).
    ingest = connect(PRELOAD_PORT, database)
    gasp(ingest, 1)
    ingest.close()
    settle_database(database, 20, PRELOAD_PORT)
    assert one(conn, "SELECT count(*) FROM oms_outage_events")[0] == 1
    assert worker_pids(conn) == {again}
    pid, state = one(conn, "SELECT worker_pid, worker_state FROM oms_correlation_status")
    assert pid == again and state != "waiting for the lock", state
    with conn.cursor() as cur:
        cur.execute("""SELECT l.pid FROM pg_locks l
                       WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted
                         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
                    WORKER_LOCK)
        assert [pid for (pid,) in cur.fetchall()] == [again]
    conn.close()
