#!/usr/bin/env python3
"""The benchmark suite: see bench/README.md. Prints a markdown report on stdout.

    bench/run.py --port 25433 [--quick]

Expects the extension installed (bench/run.sh does that, in release mode) and a running cluster.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pgbench"))
from templates import FUNCTIONS, plain_insert, script  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import correlated_storm  # noqa: E402
import correlator  # noqa: E402
import feeder_storm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DB = "oms_bench"
PLANS_FILE = os.path.join(tempfile.gettempdir(), "oms_bench_plans.log")
SIZES = [("F150", 150, 15), ("F1K", 1000, 9), ("F10K", 10000, 5), ("F100K", 100000, 3)]


def log(message):
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, port, seconds, quick, version=None, db=DB, plan_cache_mode=None, ab_hold_worker=False):
        self.port = port
        self.seconds = seconds
        self.quick = quick
        self.version = version
        self.db = db
        self.dsn = f"host=127.0.0.1 port={port} user=postgres dbname={db}"
        self.plan_cache_mode = plan_cache_mode
        self.ab_hold_worker = ab_hold_worker

    def admin(self, sql):
        conn = psycopg2.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.close()

    def connect(self):
        conn = psycopg2.connect(self.dsn, options="-c TimeZone=UTC")
        conn.autocommit = True
        return conn

    def setup(self):
        # WITH (FORCE): the correlator's worker may still be connected from the last run.
        self.admin(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        self.admin(f"CREATE DATABASE {self.db}")
        # The disk flushes about 300 times a second; with synchronous_commit on, that caps every
        # workload alike. fsync stays on.
        self.admin(f"ALTER DATABASE {self.db} SET synchronous_commit = off")
        if self.plan_cache_mode:
            # force_generic_plan: every prepared statement on the plan it would settle on after
            # many calls, from the first call (the plans to check for quadratic turns).
            self.admin(f"ALTER DATABASE {self.db} SET plan_cache_mode = {self.plan_cache_mode}")
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION oms_correlation" + (f" VERSION '{self.version}'" if self.version else ""))
            started = time.monotonic()
            cur.execute(open(os.path.join(HERE, "grid.sql")).read())
            log(f"grid loaded in {time.monotonic() - started:.1f} s")
            cur.execute(open(os.path.join(HERE, "reference", "plpgsql.sql")).read())
            if not self.version:
                cur.execute(open(os.path.join(HERE, "reference", "engine_floor.sql")).read())
                cur.execute(open(os.path.join(HERE, "reference", "correlator_floor.sql")).read())
            cur.execute("SELECT count(*), count(DISTINCT onu_id), count(DISTINCT feeder_id) FROM oms_meters")
            self.grid = cur.fetchone()
        conn.close()

    def history(self, rows):
        """Weeks of service before the measurement: `rows` logged inputs, as many power changes in
        the status history and a tenth as many restored outages, spread over the 60 days before
        yesterday, then ANALYZE. All are kept for good, so a batch must read them by key."""
        conn = self.connect()
        with conn.cursor() as cur:
            started = time.monotonic()
            spread = "pg_catalog.now() - interval '61 days' + n * (interval '60 days' / %(rows)s)"
            meters = "(SELECT id, feeder_id, row_number() OVER (ORDER BY id) AS k FROM oms_meters) AS m"
            cur.execute(f"""
                INSERT INTO oms_correlation_inputs (area, at, kind, source_type, source_event_id, meters)
                SELECT 'feeder:' || m.feeder_id, {spread}, CASE n %% 2 WHEN 0 THEN 'off' ELSE 'on' END, 'onu',
                       'HISTORY-' || n, ARRAY[m.id]
                FROM generate_series(1, %(rows)s) AS n
                JOIN {meters} ON m.k = 1 + n %% (SELECT count(*) FROM oms_meters)
                WHERE m.feeder_id IS NOT NULL""", {"rows": rows})
            cur.execute(f"""
                INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, event_timestamp)
                SELECT m.id, CASE n %% 2 WHEN 0 THEN 'power_off' ELSE 'power_on' END, 'onu', {spread}
                FROM generate_series(1, %(rows)s) AS n
                JOIN {meters} ON m.k = 1 + n %% (SELECT count(*) FROM oms_meters)""", {"rows": rows})
            # A tenth as many service outages of the past, restored, each with its meter's span and
            # its source.
            cur.execute(f"""
                INSERT INTO oms_outage_events (event_id, status, scope, device_key, substation_id, feeder_id,
                                               dp_id, first_detected_at, opened_at, actual_restoration_time,
                                               affected_customers_count, customers_out, placement)
                SELECT 'HISTORY-' || n, 'restored', 'service', 'service:meter:' || m.id, m.substation_id,
                       m.feeder_id, m.dp_id, {spread}, {spread}, {spread} + interval '1 hour', 1, 0, 'service'
                FROM generate_series(1, %(outages)s) AS n
                JOIN (SELECT id, substation_id, feeder_id, dp_id, row_number() OVER (ORDER BY id) AS k
                      FROM oms_meters) AS m ON m.k = 1 + (n * 7) %% (SELECT count(*) FROM oms_meters)""",
                        {"rows": rows // 10, "outages": rows // 10})
            cur.execute("""
                INSERT INTO oms_outage_meters (outage_id, meter_id, off_at, on_at, customer_key, customer_id, dp_id,
                                               feeder_id, substation_id, first_source, first_source_event_id,
                                               origin_outage_id)
                SELECT o.id, m.id, o.first_detected_at, o.actual_restoration_time, coalesce(m.customer_id, m.id),
                       m.customer_id, o.dp_id, o.feeder_id, o.substation_id, 'onu', o.event_id, o.id
                FROM oms_outage_events o JOIN oms_meters m ON o.device_key = 'service:meter:' || m.id
                WHERE o.event_id LIKE 'HISTORY-%%'""")
            cur.execute("""
                INSERT INTO oms_event_sources (outage_event_id, source_type, source_event_id, event_timestamp,
                                               correlation_weight, confidence_weight, origin_outage_id)
                SELECT o.id, 'onu', o.event_id, o.first_detected_at, 0.6, 0.6, o.id
                FROM oms_outage_events o WHERE o.event_id LIKE 'HISTORY-%%'""")
            for table in ("oms_correlation_inputs", "oms_meter_status_events", "oms_outage_events",
                          "oms_outage_meters", "oms_event_sources"):
                cur.execute(f"ANALYZE {table}")
            log(f"history: {rows:,} logged inputs, {rows:,} status events and {rows // 10:,} restored outages "
                f"over 60 days, in {time.monotonic() - started:.1f} s")
        conn.close()

    # -- SCADA latency --------------------------------------------------------------------------
    def scada_latency(self):
        rows = []
        conn = self.connect()
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        for feeder, size, reps in SIZES:
            if self.quick and size > 10000:
                continue
            for state in ("fresh", "stale"):
                for schema in ("public", "reference"):
                    timings = []
                    for _ in range(reps):
                        at += timedelta(minutes=10)
                        with conn.cursor() as cur:
                            cur.execute("SELECT bench_set_feeder_state(%s, %s, %s)", (feeder, state, at))
                            cur.execute("VACUUM oms_meters")
                            payload = {"eventType": "breaker_trip", "substationId": "BSS1", "feederId": feeder,
                                       "alarmType": "fault", "timestamp": at.isoformat(), "severity": "critical"}
                            started = time.monotonic()
                            cur.execute(f"SELECT {schema}.insert_scada_event_with_meter_check(%s::jsonb)",
                                        (json.dumps(payload),))
                            result = cur.fetchone()[0]
                            timings.append((time.monotonic() - started) * 1000)
                        expected_offline = size if state == "stale" else 0
                        if result["total_meters"] != size or result["offline_meters"] != expected_offline:
                            raise SystemExit(f"{schema} {feeder} {state}: unexpected result {result}")
                    rows.append((feeder, size, state, schema, statistics.median(timings)))
                    log(f"SCADA {schema:<9} {feeder:<6} {state:<5} median {statistics.median(timings):9.1f} ms")
                if state == "stale" and size >= 10000:
                    # The floor of a stale trip's writes (reference/correlator_floor.sql), on the same
                    # state, rolled back.
                    timings = []
                    for _ in range(reps):
                        at += timedelta(minutes=10)
                        with conn.cursor() as cur:
                            cur.execute("SELECT bench_set_feeder_state(%s, %s, %s)", (feeder, state, at))
                            cur.execute("VACUUM oms_meters")
                            cur.execute("BEGIN")
                            started = time.monotonic()
                            cur.execute("SELECT floor.scada_trip(%s, %s)", (feeder, at))
                            timings.append((time.monotonic() - started) * 1000)
                            cur.execute("ROLLBACK")
                    rows.append((feeder, size, state, "floor", statistics.median(timings)))
                    log(f"SCADA floor     {feeder:<6} {state:<5} median {statistics.median(timings):9.1f} ms")
            # Leave the feeder on and its outages closed (as an operator closes them): the parts
            # that follow measure per-event work, not joins into this part's 100,000-meter outage.
            with conn.cursor() as cur:
                cur.execute("SELECT bench_set_feeder_state(%s, 'fresh', %s)", (feeder, at + timedelta(minutes=10)))
        conn.close()
        return rows

    # -- pgbench throughput -----------------------------------------------------------------------
    def pgbench(self, body, clients, transactions=None):
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(body)
            path = f.name
        limit = ["-t", str(transactions)] if transactions else ["-T", str(self.seconds)]
        env = dict(os.environ, PGOPTIONS="-c TimeZone=UTC")
        run = subprocess.run(["pgbench", "-n", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-c", str(clients), "-j", str(clients), *limit, "-f", path, self.db],
                             capture_output=True, text=True, env=env)
        os.unlink(path)
        if run.returncode != 0:
            raise SystemExit(f"pgbench failed: {run.stderr}\n{run.stdout}")
        tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", run.stdout).group(1))
        failed = re.search(r"number of failed transactions: (\d+)", run.stdout)
        latency = re.search(r"latency average = ([0-9.]+) ms", run.stdout)
        return tps, int(failed.group(1)) if failed else 0, float(latency.group(1)) if latency else None

    def throughput(self):
        # Warm-up: the generic plans the functions keep (and the foreign-key checks' plans) are made
        # on first use; made on the just-created empty tables they would be measured, not production.
        # The reference writes this release's tables: an earlier release is measured alone.
        schemas = ("public",) if self.version else ("public", "reference")

        def schemas_of(source):
            # The floor under an engine's cost (reference/engine_floor.sql) is for meter signals.
            return schemas + ("floor",) if source != "scada" and not self.version else schemas

        for source in ("onu", "callcenter", "kaifa", "scada"):
            for schema in schemas_of(source):
                self.pgbench(script(source, schema), 1, transactions=200)
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        conn.close()
        results = {}
        for clients in (1, 4):
            plain = []
            for source in ("onu", "callcenter", "kaifa", "scada"):
                plain.append(self.pgbench(plain_insert(source), clients)[0])
                for schema in schemas_of(source):
                    if self.quick and schema != "public" and clients == 4:
                        continue
                    tps, failed, latency = self.pgbench(script(source, schema), clients)
                    results[(source, schema, clients)] = (tps, failed, latency, plain[-1])
                    log(f"TPS {source:<10} {schema:<9} {clients} client(s): {tps:8.1f} (plain INSERT {plain[-1]:8.1f})")
        return results

    # -- storm ----------------------------------------------------------------------------------
    def storm(self, events, live=True, worker=True):
        """ONU last gasps and restorations from 4 clients; `live`: stamped as they are sent (a storm
        as it arrives), else at random times over 2025 (every signal a late one). Without `worker`,
        the worker is kept away while the clients run: ingest alone, the bound of the storm's rate
        with correlation on."""
        samples = {}
        stop = threading.Event()

        def sample():
            conn = self.connect()
            while not stop.is_set():
                with conn.cursor() as cur:
                    cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND pid <> pg_backend_pid()")
                    for (pid,) in cur.fetchall():
                        try:
                            # RssAnon: the backend's private memory (VmRSS also counts shared buffers touched).
                            with open(f"/proc/{pid}/status") as f:
                                rss = int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1))
                            samples.setdefault(pid, []).append(rss)
                        except (OSError, AttributeError):
                            pass
                time.sleep(0.5)
            conn.close()

        sampler = threading.Thread(target=sample)
        sampler.start()
        kept_away = correlator.worker_off(self.dsn) if not worker and not self.version else None
        watch = correlator.Watch(self.dsn) if not self.version and worker else None
        if watch:
            watch.__enter__()
        started = time.monotonic()
        try:
            tps, failed, latency = self.pgbench(script("onu", live=live), 4, transactions=events // 4)
        finally:
            if kept_away:
                kept_away.close()
        ingested = time.monotonic() - started
        drain = correlator.wait_drained(self.dsn) if watch else 0.0
        elapsed = time.monotonic() - started
        if watch:
            watch.__exit__(None, None, None)
        stop.set()
        sampler.join()
        memory = []
        for pid, rss in samples.items():
            if len(rss) >= 4:
                quarter = len(rss) // 4
                memory.append((rss[quarter], rss[-1], max(rss)))
        conn = self.connect()
        lag, unseen, signals = None, 0, 0
        with conn.cursor() as cur:
            # A payload the extension could not store is quarantined, not failed: count those too.
            cur.execute("SELECT count(*) FROM oms_rejected_events")
            rejected = cur.fetchone()[0]
            # Releases before the engine (0.2.0) have no outage scope: their outages are not summed.
            outages = []
            # Every stored ONU event is a power signal on metered ONUs here: one without an input
            # row was never correlated. Named, with where it is, so that a run that reports fewer
            # signals than events can be explained.
            uncorrelated = []
            if watch:
                cur.execute("""SELECT o.event_id, o.event_type, o."timestamp"::text,
                                      EXISTS (SELECT FROM oms_correlation_queue q
                                              WHERE q.source_type = 'onu' AND q.source_event_id = o.event_id),
                                      EXISTS (SELECT FROM oms_correlation_set_aside a
                                              WHERE a.source_type = 'onu' AND a.source_event_id = o.event_id)
                               FROM onu_events o
                               WHERE NOT EXISTS (SELECT FROM oms_correlation_inputs i
                                                 WHERE i.source_type = 'onu' AND i.source_event_id = o.event_id)""")
                uncorrelated = cur.fetchall()
                cur.execute("SELECT scope, count(*) FILTER (WHERE status <> 'merged'), "
                            "count(*) FILTER (WHERE status = 'merged') FROM oms_outage_events GROUP BY 1 ORDER BY 1")
                outages = cur.fetchall()
        conn.close()
        if watch:
            lags, unseen = watch.lags()
            lag, signals = correlator.distribution(lags), len(lags) + unseen
        return {"events": events, "tps": tps, "failed": failed, "elapsed": elapsed, "ingested": ingested,
                "drain": drain, "memory": memory, "rejected": rejected, "outages": outages, "live": live,
                "lag": lag, "unseen": unseen, "signals": signals, "uncorrelated": uncorrelated,
                "notifications": watch.notifications if watch else None, "worker": kept_away is None}

    # -- the correlator's capacity: a backlog drained with ingest paused -------------------------
    def backlog(self, events):
        """`events` ONU signals queued while a session holds the correlator off, then drained by the
        worker alone: signals per second."""
        hold = correlator.hold_correlator(self.dsn)
        # The storm replay's ingest with no correlator beside it: what the storm's rate is bounded by.
        ingest_tps = self.pgbench(script("onu", live=True), 4, transactions=events // 4)[0]
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT source_event_id) FROM oms_correlation_queue")
            queued, distinct = cur.fetchone()
        conn.close()
        with correlator.Watch(self.dsn) as watch:
            hold.rollback()
            hold.close()
            elapsed = correlator.wait_drained(self.dsn)
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT batches, last_batch_signals, last_batch_ms FROM oms_correlation_state")
            state = cur.fetchone()
        conn.close()
        log(f"backlog: {queued:,} signals drained in {elapsed:.2f} s: {queued / elapsed:,.0f} signals/s")
        return {"queued": queued, "distinct": distinct, "elapsed": elapsed, "rate": queued / elapsed,
                "batches": len(watch.seen), "state": state, "ingest_tps": ingest_tps}

    # -- the correlator against the floor of its writes ---------------------------------------------
    def capacity(self, events, rounds=2):
        """`events` ONU signals queued, then drained in one transaction by the correlator and, on the
        same state, by the floor of its writes (reference/correlator_floor.sql), alternately, each
        rolled back: how far the engine is from the writes alone."""
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(open(os.path.join(HERE, "reference", "correlator_floor.sql")).read())
        conn.close()
        hold = correlator.hold_correlator(self.dsn)
        self.pgbench(script("onu", live=True), 4, transactions=events // 4)
        counts_sql = """SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables
                        WHERE schemaname = 'public'"""
        runs = []
        with hold.cursor() as cur:
            for _ in range(rounds):
                cur.execute("SAVEPOINT engine")
                cur.execute(counts_sql)
                before = {r[0]: r[1:] for r in cur.fetchall()}
                started = time.monotonic()
                cur.execute("SELECT signals FROM oms_correlate_pending()")
                signals = cur.fetchone()[0]
                engine = time.monotonic() - started
                cur.execute(counts_sql)
                after = {r[0]: r[1:] for r in cur.fetchall()}
                cur.execute("ROLLBACK TO SAVEPOINT engine")

                def delta(table, k):
                    return after.get(table, (0, 0, 0))[k] - before.get(table, (0, 0, 0))[k]

                writes = [delta("oms_correlation_queue", 2), delta("oms_correlation_inputs", 0),
                          delta("oms_outage_events", 0), delta("oms_outage_events", 1), delta("oms_outage_meters", 0),
                          delta("oms_outage_meters", 1), delta("oms_event_sources", 0), delta("oms_event_timeline", 0),
                          delta("oms_outage_customers", 0)]
                cur.execute("SAVEPOINT floor")
                started = time.monotonic()
                cur.execute("SELECT floor.correlator_batch(%s, %s, %s, %s, %s, %s, %s, %s, %s)", writes)
                floor = time.monotonic() - started
                cur.execute("ROLLBACK TO SAVEPOINT floor")
                runs.append((signals, engine, floor, writes))
                log(f"capacity: {signals} signals, engine {engine:.2f} s ({signals / engine:,.0f}/s), floor of its "
                    f"writes {floor:.2f} s ({signals / floor:,.0f}/s): {engine / floor:.2f}x")
        hold.rollback()
        hold.close()
        return runs

    # -- A/B against an earlier release ------------------------------------------------------------
    def ab(self, version, rounds=2):
        """Each meter-signal function's TPS here (the worker correlating behind it) and in a database
        on `version`, alternating, `rounds` times each, events stamped as sent."""
        base = Bench(self.port, self.seconds, self.quick, version, db=f"{DB}_base",
                     plan_cache_mode=self.plan_cache_mode)
        base.setup()
        for source in ("onu", "callcenter", "kaifa"):
            for bench in (self, base):
                bench.pgbench(script(source, live=True), 1, transactions=200)
        correlator.wait_drained(self.dsn)
        for bench in (self, base):
            conn = bench.connect()
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
            conn.close()
        results = {}
        for clients in (1, 4):
            for source in ("onu", "callcenter", "kaifa"):
                for _ in range(rounds):
                    # --ab-hold-worker: ingest's own cost, with the worker kept away while the
                    # clients run (on 2 cores the worker otherwise takes one of them throughout).
                    # Not by holding the correlator's row: that transaction would hold back the
                    # vacuum horizon, and ingest would pay for row versions it could prune.
                    hold = correlator.worker_off(self.dsn) if self.ab_hold_worker else None
                    try:
                        here = self.pgbench(script(source, live=True), clients)[0]
                    finally:
                        if hold is not None:
                            hold.close()
                    # What the worker still had to do when the clients stopped (kept away: what
                    # was queued, correlated by this session).
                    drain = correlator.drain_now(self.dsn) if hold else correlator.wait_drained(self.dsn)
                    there = base.pgbench(script(source, live=True), clients)[0]
                    results.setdefault((source, clients), []).append((here, there, drain))
                    log(f"A/B {source:<10} {clients} client(s): {here:8.1f} against {version} {there:8.1f} "
                        f"({here / there:.2f}); queue drained {drain * 1000:.0f} ms after")
        return results

    # -- reliability indices on a year of history ------------------------------------------------
    def indices(self):
        self.admin("DROP DATABASE IF EXISTS oms_history WITH (FORCE)")
        self.admin("CREATE DATABASE oms_history")
        conn = psycopg2.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=oms_history",
                                options="-c TimeZone=UTC")
        conn.autocommit = True
        timings = []
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION oms_correlation")
            cur.execute(open(os.path.join(HERE, "grid.sql")).read())
            started = time.monotonic()
            cur.execute(open(os.path.join(HERE, "indices_history.sql")).read())
            log(f"indices: a year of history loaded in {time.monotonic() - started:.1f} s")
            cur.execute("SELECT (SELECT count(*) FROM oms_outage_events), (SELECT count(*) FROM oms_outage_meters), "
                        "(SELECT count(*) FROM oms_meter_status_events)")
            sizes = cur.fetchone()
            for level, exclude in (("system", False), ("feeder", False), ("substation", False), ("system", True)):
                runs = []
                for _ in range(3):
                    started = time.monotonic()
                    cur.execute("SELECT * FROM oms_reliability_indices('2025-01-01+00', '2026-01-01+00', %s, 3, 8, %s)",
                                (level, exclude))
                    rows = cur.fetchall()
                    runs.append(time.monotonic() - started)
                timings.append((level, exclude, len(rows), statistics.median(runs), rows[0]))
                log(f"indices {level} exclude_med={exclude}: {statistics.median(runs) * 1000:.0f} ms, {len(rows)} rows")
        conn.close()
        return {"sizes": sizes, "timings": timings}

    # -- correlated storm -----------------------------------------------------------------------
    def feeder_storm(self):
        log("feeder storm: one big feeder's trip, last gasps and restorations (bench/feeder_storm.py)")
        return feeder_storm.run(f"host=127.0.0.1 port={self.port} user=postgres dbname={DB}",
                                "F1K" if self.quick else "F10K")

    def correlated(self):
        """The replay twice: storm mode switching by itself, then kept off."""
        results = []
        for storm_handling in (True, False):
            log(f"correlated storm (storm handling {'on' if storm_handling else 'off'}): grid and ground truth of "
                "bench/correlated_storm.py")
            result = correlated_storm.run(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                                          f"host=127.0.0.1 port={self.port} user=postgres dbname={correlated_storm.DB}",
                                          storm_handling=storm_handling, log=log)
            log(f"correlated storm: {result['rate']:.0f} events/s, {len(result['errors'])} errors")
            results.append(result)
        return results

    # -- plans ----------------------------------------------------------------------------------
    def plans(self):
        """The plan of every statement one call of each function runs, via auto_explain, as notices."""
        conn = self.connect()
        conn.notices = []
        with conn.cursor() as cur:
            cur.execute("LOAD 'auto_explain'")
            cur.execute("SET auto_explain.log_min_duration = 0")
            cur.execute("SET auto_explain.log_nested_statements = on")
            cur.execute("SET auto_explain.log_level = notice")
            cur.execute("SET client_min_messages = notice")
            values = {"onu": "1000007", "meter": "4242", "e": "77", "sec": "86400"}
            for source in ("onu", "kaifa", "callcenter"):
                body = "SELECT " + script(source).split("SELECT ", 1)[1]
                cur.execute(re.sub(r":(onu|meter|e|sec)\b", lambda m: values[m.group(1)], body))
            cur.execute("SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(
                {"eventType": "breaker_trip", "substationId": "BSS1", "feederId": "F10K",
                 "timestamp": "2026-06-01T00:00:00Z"}),))
        conn.close()
        return "\n".join(conn.notices)


def report(bench, latency, tps, storm):
    out = []
    meters, onus, feeders = bench.grid
    out.append(f"Grid: {meters:,} meters on {feeders} feeders, {onus:,} ONUs (4 meters a building).\n")
    out.append(scada_report(latency))
    out.append("\n### Throughput (pgbench, random ONUs, meters and tickets, unique event ids)\n")
    out.append("| function | clients | TPS | plain INSERT TPS | ratio to plain INSERT | PL/pgSQL reference TPS | reference ratio |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for source in ("onu", "callcenter", "kaifa", "scada"):
        for clients in (1, 4):
            tps_e, failed, _, plain = tps[(source, "public", clients)]
            ref = tps.get((source, "reference", clients))
            ref_text = f"{ref[0]:.0f} | {ref[0] / ref[3]:.2f}" if ref else "- | -"
            out.append(f"| {FUNCTIONS[source]} | {clients} | {tps_e:.0f} | {plain:.0f} | {tps_e / plain:.2f} | {ref_text} |")
    floors = [(source, clients, tps[(source, "floor", clients)][0], tps[(source, "public", clients)][0],
               tps.get((source, "reference", clients)))
              for source in ("onu", "callcenter", "kaifa") for clients in (1, 4) if (source, "floor", clients) in tps]
    if floors:
        out.append("\nThe floor under any engine's cost (`reference/engine_floor.sql`: the reference plus the least "
                   "writes of an outage record per signal, with no engine logic):\n")
        out.append("| function | clients | floor TPS | floor / reference | extension / floor |")
        out.append("|---|---:|---:|---:|---:|")
        for source, clients, floor, ext, ref in floors:
            ref_text = f"{floor / ref[0]:.2f}" if ref else "-"
            out.append(f"| {FUNCTIONS[source]} | {clients} | {floor:.0f} | {ref_text} | {ext / floor:.2f} |")
    out.append(storm_report(storm))
    if storm["memory"]:
        out.append("Backend private memory (RssAnon, kB) during the storm, per backend: after the first quarter -> at the end (max):")
        for first, last, peak in storm["memory"]:
            out.append(f"- {first:,} -> {last:,} (max {peak:,})")
    return "\n".join(out)


def scada_report(latency):
    out = []
    out.append("### SCADA check latency (end to end: call, check, writes, commit), median\n")
    out.append("| feeder | meters | state | extension (ms) | PL/pgSQL reference (ms) | speedup | floor of its writes (ms) | extension / floor |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|")
    by = {(f, st, sc): ms for f, _, st, sc, ms in latency}
    for feeder, size, _ in SIZES:
        for state in ("fresh", "stale"):
            if (feeder, state, "public") in by:
                ext, ref = by[(feeder, state, "public")], by[(feeder, state, "reference")]
                label = "all fresh and on" if state == "fresh" else "all stale/offline"
                floor = by.get((feeder, state, "floor"))
                floor_text = f"{floor:.1f} | {ext / floor:.2f}" if floor else "- | -"
                out.append(f"| {feeder} | {size:,} | {label} | {ext:.1f} | {ref:.1f} | {ref / ext:.1f}x | {floor_text} |")
    return "\n".join(out)


def storm_report(storm):
    out = ["\n### Storm replay\n"]
    stamped = "stamped as sent" if storm["live"] else "at random times over 2025"
    alone = "" if storm.get("worker", True) else ", the worker kept away (ingest alone)"
    out.append(f"{storm['events']:,} ONU last gasps and restorations ({stamped}) from 4 clients{alone}: ingest "
               f"**{storm['tps']:.0f} events/s**, {storm['failed']} failed, {storm['rejected']} quarantined.")
    if storm["lag"] is not None:
        out.append(f"With correlation: the queue was empty {storm['drain'] * 1000:.0f} ms after the last ingest, "
                   f"**{storm['events'] / storm['elapsed']:.0f} events/s** from the first ingest to the last "
                   f"signal correlated ({storm['elapsed']:.1f} s).")
        out.append(f"Lag, from a signal's ingest to its batch's commit: {correlator.describe(storm['lag'])}"
                   + (f"; {storm['unseen']} not seen" if storm["unseen"] else "") + ".")
        if storm["uncorrelated"]:
            out.append(f"**{len(storm['uncorrelated'])} stored events have no input row** (event id, type, time, "
                       f"still queued, set aside): {storm['uncorrelated'][:5]}.")
        out.append(f"Notifications on `oms_outage`: {storm['notifications']:,}, "
                   f"{storm['notifications'] / storm['events']:.3f} per event.\n")
        out.append("Outages it left, by scope (not merged / merged): " + ", ".join(
            f"{scope} {kept} / {merged}" for scope, kept, merged in storm["outages"]) + ".\n")
    return "\n".join(out)


def backlog_report(result):
    batches, size, ms = result["state"]
    return (f"\n### The correlator's capacity\n\n{result['queued']:,} queued signals ({result['distinct']:,} source "
            f"events; ONU last gasps and restorations queued while a session held the correlator off) drained by "
            f"the worker in {result['elapsed']:.2f} s: **{result['rate']:,.0f} signals/s**, "
            f"{result['batches']} batches (the last: {size} signals, {ms:.0f} ms). They were ingested from 4 "
            f"clients at {result['ingest_tps']:,.0f} events/s with the correlator held off.")


def capacity_report(runs):
    out = ["\n### The correlator against the floor of its writes\n",
           "ONU signals queued with the correlator held off, then drained in one transaction (batches of up to `oms_correlation.batch_size`, default 50,000) "
           "and, on the same state, written by `reference/correlator_floor.sql` (the same rows per table by bare "
           "statements, no correlation), each rolled back:\n",
           "| signals | engine (s) | engine signals/s | floor (s) | floor signals/s | engine / floor | rows written "
           "(queue taken, inputs, outages new / changed, spans new / ended, sources, timeline, customers) |",
           "|---:|---:|---:|---:|---:|---:|---|"]
    for signals, engine, floor, writes in runs:
        out.append(f"| {signals:,} | {engine:.2f} | {signals / engine:,.0f} | {floor:.2f} | {signals / floor:,.0f} | "
                   f"{engine / floor:.2f} | {', '.join(str(w) for w in writes)} |")
    return "\n".join(out)


def ab_report(result, version, held=False):
    how = "the worker kept away while the clients run" if held else "the worker correlating behind ingest"
    drained = ("what they queued, correlated by one call after (ms)" if held
               else "queue empty after the clients stopped (ms)")
    out = [f"\n### A/B against {version} ({how}; events stamped as sent)\n",
           f"| function | clients | TPS here, each round | TPS {version}, each round | ratio, each round | "
           f"{drained} |", "|---|---:|---|---|---|---|"]
    for (source, clients), rounds in result.items():
        out.append(f"| {FUNCTIONS[source]} | {clients} | " + ", ".join(f"{h:.0f}" for h, _, _ in rounds) + " | "
                   + ", ".join(f"{t:.0f}" for _, t, _ in rounds) + " | "
                   + ", ".join(f"{h / t:.2f}" for h, t, _ in rounds) + " | "
                   + ", ".join(f"{d * 1000:.0f}" for _, _, d in rounds) + " |")
    return "\n".join(out)


def indices_report(result):
    outages, memberships, events = result["sizes"]
    out = ["### Reliability indices on a year of history (bench/indices_history.sql)\n",
           f"{outages:,} outages, {memberships:,} outage memberships, {events:,} status events over 2025. "
           "`oms_reliability_indices` for the whole year, median of 3:\n",
           "| level | major event days excluded | rows | time (ms) |", "|---|---|---:|---:|"]
    for level, exclude, rows, seconds, _ in result["timings"]:
        out.append(f"| {level} | {'yes' if exclude else 'no'} | {rows} | {seconds * 1000:.0f} |")
    system = result["timings"][0][4]
    out.append(f"\nSystem, 2025: SAIFI {system[5]}, SAIDI {system[6]} min, CAIDI {system[7]} min, MAIFI_E {system[8]}.")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=25433)
    parser.add_argument("--seconds", type=int, default=15, help="pgbench duration per measurement")
    parser.add_argument("--storm-events", type=int, default=100000)
    parser.add_argument("--storm-worker-off", action="store_true",
                        help="in the storm part, keep the worker away while the clients run (ingest alone)")
    parser.add_argument("--quick", action="store_true", help="small feeders only, shorter runs (for a smoke test)")
    parser.add_argument("--only", choices=["scada", "throughput", "storm", "feeder", "correlated", "indices",
                                           "backlog", "ab", "capacity"],
                        help="run one part (for profiling)")
    parser.add_argument("--storm-stamps", choices=["live", "random"], default="live",
                        help="storm events stamped as sent (default) or at random times over 2025")
    parser.add_argument("--backlog-events", type=int, default=100000)
    parser.add_argument("--baseline", default="0.2.0", help="the release the A/B part measures against (installed "
                                                            "by bench/run.sh with scripts/previous_release.sh)")
    parser.add_argument("--extension-version", help="measure an installed earlier release (a baseline on the same "
                                                     "machine, e.g. 0.2.0 with --only throughput)")
    parser.add_argument("--plan-cache-mode", choices=["auto", "force_generic_plan", "force_custom_plan"],
                        help="plan_cache_mode for the bench database (default: the server's, auto)")
    parser.add_argument("--history", type=int, default=0,
                        help="before the part, fill the input log and the status history with this many rows "
                             "each, and a tenth as many restored outages, over the 60 days before yesterday "
                             "(weeks of service; not for --only correlated or indices, which use their own "
                             "databases)")
    parser.add_argument("--ab-hold-worker", action="store_true",
                        help="in the A/B, keep the worker away while the clients run (ingest's own cost)")
    args = parser.parse_args()
    bench = Bench(args.port, 3 if args.quick else args.seconds, args.quick, args.extension_version,
                  plan_cache_mode=args.plan_cache_mode, ab_hold_worker=args.ab_hold_worker)
    if args.only == "correlated":
        print(correlated_storm.report(*bench.correlated()))
        return
    if args.only == "indices":
        print(indices_report(bench.indices()))
        return
    bench.setup()
    if args.history:
        bench.history(args.history)
    if args.only:
        if args.only == "feeder":
            # As in the full suite, the storm meets outage tables that already hold rows. grid.sql
            # analyzes the whole database, outage tables empty: plans made while the statistics say
            # "empty" read those tables whole until autovacuum analyzes them again.
            bench.storm(400)
            print(feeder_storm.report(bench.feeder_storm()))
            return
        if args.only == "storm":
            print(storm_report(bench.storm(args.storm_events, live=args.storm_stamps == "live",
                                           worker=not args.storm_worker_off)))
        elif args.only == "backlog":
            print(backlog_report(bench.backlog(args.backlog_events)))
        elif args.only == "capacity":
            print(capacity_report(bench.capacity(args.backlog_events)))
        elif args.only == "ab":
            print(ab_report(bench.ab(args.baseline), args.baseline, args.ab_hold_worker))
        elif args.only == "scada":
            print(scada_report(bench.scada_latency()))
        else:
            print(bench.throughput())
        return
    latency = bench.scada_latency()
    tps = bench.throughput()
    storm = bench.storm(4000 if args.quick else args.storm_events, live=args.storm_stamps == "live")
    print(report(bench, latency, tps, storm))
    print(backlog_report(bench.backlog(4000 if args.quick else args.backlog_events)))
    print(capacity_report(bench.capacity(4000 if args.quick else 20000)))
    print(ab_report(bench.ab(args.baseline), args.baseline, args.ab_hold_worker))
    print()
    print(feeder_storm.report(bench.feeder_storm()))
    print()
    print(correlated_storm.report(*bench.correlated()))
    print()
    print(indices_report(bench.indices()))
    plans = bench.plans()
    seq = sorted(set(re.findall(r"Seq Scan on (\w+)", plans)))
    indexes = sorted(set(re.findall(r"Index (?:Only )?Scan using (\w+)", plans)))
    print(f"\n### Plans\n\nauto_explain of one call of each function (plans in {PLANS_FILE}):")
    print(f"- sequential scans: {', '.join(seq) or 'none'}")
    print(f"- indexes used: {', '.join(indexes)}")
    with open(PLANS_FILE, "w") as f:
        f.write(plans)


if __name__ == "__main__":
    main()
