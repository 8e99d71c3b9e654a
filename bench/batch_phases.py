"""Where a correlator batch's time goes: a backlog of ONU signals queued once (kept as a template
database), then drained in a fresh copy of it, in one call of oms_correlate_pending(), with each
batch's phases (places, log, load, decide, write, announce) read from its DEBUG1 line. The same
backlog every time, so a change to the correlator can be measured against the last one.

    bench/run.sh --only scada --quick          # once: release build, bench cluster, grid (any part will do)
    python3 bench/batch_phases.py [--port 25433] [--signals 100000] [--batch-size 5000] [--again]

--again queues the backlog anew (after a change to ingest or to the grid). Prints the drain's
wall time, the phase totals over all batches, and the first and last batch.
"""

import argparse
import re
import sys
import time
from collections import Counter

import psycopg2

sys.path.insert(0, __import__("os").path.dirname(__file__))
import correlator  # noqa: E402
import run  # noqa: E402

SOURCE, TEMPLATE, COPY = "oms_phases_source", "oms_phases_template", "oms_phases"
LINE = re.compile(r"a batch of (\d+) signals \((\d+) inputs replayed\), ms: (.*)")


def admin(port):
    conn = psycopg2.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres")
    conn.autocommit = True
    return conn


def exists(cur, name):
    cur.execute("SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s)", (name,))
    return cur.fetchone()[0]


def make_template(port, signals):
    """The grid, then `signals` ONU signals queued while a session holds the correlator off; the
    worker is stopped before the hold is released, so the queue stays full."""
    bench = run.Bench(port, 10, False, db=SOURCE)
    bench.setup()
    hold = correlator.hold_correlator(bench.dsn)
    bench.pgbench(run.script("onu", live=True), 4, transactions=signals // 4)
    conn = admin(port)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'oms_correlation worker' AND datname = %s", (SOURCE,))
        hold.rollback()
        hold.close()
        for _ in range(50):
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (SOURCE,))
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.2)
        cur.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        cur.execute(f"CREATE DATABASE {TEMPLATE} TEMPLATE {SOURCE}")
        cur.execute(f"DROP DATABASE {SOURCE} WITH (FORCE)")
    conn.close()


def drain(port, batch_size):
    conn = admin(port)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {COPY} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {COPY} TEMPLATE {TEMPLATE}")
    conn.close()
    conn = psycopg2.connect(f"host=127.0.0.1 port={port} user=postgres dbname={COPY}")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
        cur.execute("SELECT count(*) FROM oms_correlation_queue")
        queued = cur.fetchone()[0]
        cur.execute("SET client_min_messages = debug1")
        cur.execute("SET oms_correlation.batch_size = %s", (batch_size,))
        started = time.monotonic()
        cur.execute("SELECT signals FROM oms_correlate_pending()")
        signals = cur.fetchone()[0]
        elapsed = time.monotonic() - started
    batches = []
    for notice in conn.notices:
        match = LINE.search(notice)
        if match:
            phases = {k.strip(): float(v) for k, v in re.findall(r"([a-z ]+) ([0-9.]+)", match.group(3))}
            batches.append((int(match.group(1)), phases))
    conn.close()
    return queued, signals, elapsed, batches


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=25433)
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--again", action="store_true", help="queue the backlog anew")
    args = parser.parse_args()
    conn = admin(args.port)
    with conn.cursor() as cur:
        have = exists(cur, TEMPLATE)
    conn.close()
    if args.again or not have:
        make_template(args.port, args.signals)
    queued, signals, elapsed, batches = drain(args.port, args.batch_size)
    totals = Counter()
    for _, phases in batches:
        totals.update(phases)
    print(f"{signals:,} of {queued:,} queued signals in {elapsed:.2f} s ({signals / elapsed:,.0f} signals/s), "
          f"{len(batches)} batches of up to {args.batch_size:,}")
    print("phase totals, ms: " + ", ".join(f"{k} {v:,.0f}" for k, v in totals.items()))
    for label, (size, phases) in (("first batch", batches[0]), ("last batch", batches[-1])) if batches else ():
        print(f"{label} ({size:,} signals), ms: " + ", ".join(f"{k} {v:,.1f}" for k, v in phases.items()))


if __name__ == "__main__":
    main()
