"""What the correlator adds to a benchmark (issue 21, SPEC §5): how long each signal waits from its
ingest to its batch being visible, how fast a backlog drains, and how many notifications reach a
dashboard.

Lag, exactly and without touching the signals' path: each signal's row in oms_correlation_inputs
holds when ingest queued it (`enqueued_at`, the server's clock inside the ingest call, so a little
before its commit) and the number of the batch that took it in (`batch`). A watcher polls
oms_correlation_state every few milliseconds and notes the server time at which each batch number
was first seen committed. A signal's lag is that time minus its `enqueued_at`: from a little before
its commit to at most one poll after its batch's commit (both on the server's clock).
"""

import select
import statistics
import threading
import time

import psycopg2


class Watch:
    """Polls the correlator's state and listens on `oms_outage` while a workload runs."""

    def __init__(self, dsn, period=0.005):
        self.dsn = dsn
        self.period = period
        self.seen = {}  # batch number -> server time (epoch seconds) it was first seen committed
        self.notifications = 0
        self.notification_bytes = []
        self._stop = threading.Event()
        self._threads = []

    def __enter__(self):
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT batches FROM oms_correlation_state")
            self.first_batch = cur.fetchone()[0] + 1
        conn.close()
        self._threads = [threading.Thread(target=self._poll), threading.Thread(target=self._listen)]
        for t in self._threads:
            t.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        time.sleep(0.05)
        self._stop.set()
        for t in self._threads:
            t.join()

    def _poll(self):
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        last = self.first_batch - 1
        with conn.cursor() as cur:
            while not self._stop.is_set():
                cur.execute("SELECT batches, extract(epoch FROM clock_timestamp())::float8 FROM oms_correlation_state")
                batches, at = cur.fetchone()
                for number in range(last + 1, batches + 1):
                    self.seen[number] = at
                last = max(last, batches)
                time.sleep(self.period)
        conn.close()

    def _listen(self):
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("LISTEN oms_outage")
        while not self._stop.is_set():
            if select.select([conn], [], [], 0.05)[0]:
                conn.poll()
                while conn.notifies:
                    self.notifications += 1
                    self.notification_bytes.append(len(conn.notifies.pop(0).payload.encode()))
        conn.close()

    def lags(self):
        """Each signal's lag in seconds (a signal in several areas counts once), and how many
        signals' batches the watcher never saw (it stopped first)."""
        conn = psycopg2.connect(self.dsn)
        with conn.cursor() as cur:
            cur.execute("""SELECT min(batch), extract(epoch FROM min(enqueued_at))::float8
                           FROM oms_correlation_inputs WHERE batch >= %s AND enqueued_at IS NOT NULL
                           GROUP BY source_type, source_event_id, kind""", (self.first_batch,))
            rows = cur.fetchall()
        conn.close()
        lags = [self.seen[batch] - enqueued for batch, enqueued in rows if batch in self.seen]
        return lags, len(rows) - len(lags)


def wait_drained(dsn, timeout=600, period=0.01):
    """Seconds until the queue is empty (each batch deletes what it took when it commits).

    It asks whether any row is left through the queue's primary key, never `count(*)`: counting
    a queue of 100,000 rows every few milliseconds took about 13 ms a time, most of a core on this
    2-core machine, and the worker it was timing ran slower for it."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    started = time.monotonic()
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT EXISTS (SELECT FROM oms_correlation_queue ORDER BY id LIMIT 1)")
            if not cur.fetchone()[0]:
                break
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the queue did not drain within {timeout} s")
            time.sleep(period)
    conn.close()
    return time.monotonic() - started


# The advisory lock a database's worker holds for as long as it runs (`WORKER_LOCK_CLASS` in
# src/correlation/worker.rs): a worker that cannot take it leaves at once.
WORKER_LOCK = (1869440369, 0)


def worker_off(dsn):
    """A session keeping the database's worker away: it stops the running worker and holds the lock
    every worker takes first, at session level, in no transaction. So, unlike `hold_correlator`, it
    holds back no vacuum horizon. Workers that ingest calls register meanwhile (each client session
    looks every 5 s) leave at once. Close the connection to let a worker run again; one starts with
    the next ingest call. A worker started with the server (preload) that finds the lock taken
    leaves for good, until the server restarts."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for _ in range(100):
            cur.execute("""SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
                           WHERE datname = current_database() AND application_name = 'oms_correlation worker'""")
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", WORKER_LOCK)
            if cur.fetchone()[0]:
                return conn
            time.sleep(0.1)
    raise SystemExit("could not keep the worker away")


def drain_now(dsn):
    """Seconds `oms_correlate_pending()` takes to correlate what is queued, in this session (after
    `worker_off`, no worker runs until an ingest call registers one)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute("SELECT signals FROM oms_correlate_pending()")
    conn.close()
    return time.monotonic() - started


def hold_correlator(dsn):
    """A session holding the single-writer row: no batch runs until it is closed (a backlog builds).
    Its transaction holds back the vacuum horizon while it is open: ingest beside it ran 13-17 %
    slower than with `worker_off` (docs/benchmarks.md, thirteenth session)."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM oms_correlation_state WHERE id = 1 FOR UPDATE")
    return conn


def distribution(values):
    """p50, p90, p99 and max, in milliseconds."""
    if not values:
        return None
    values = sorted(values)

    def at(q):
        return values[min(len(values) - 1, int(len(values) * q))] * 1000

    return {"n": len(values), "p50": statistics.median(values) * 1000, "p90": at(0.90), "p99": at(0.99),
            "max": values[-1] * 1000}


def describe(d):
    if not d:
        return "none measured"
    return (f"p50 {d['p50']:.0f} ms, p90 {d['p90']:.0f} ms, p99 {d['p99']:.0f} ms, max {d['max']:.0f} ms "
            f"({d['n']:,} signals)")
