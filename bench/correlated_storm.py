"""The correlated storm (issue 11): a grid where whole feeders, single DPs and single meters go out,
every signal delivered through the ingest functions from 4 clients, against a written ground truth.

Grid (database oms_storm): substation CS1, 60 feeders CF01..CF60 of 20 DPs of 20 meters; every
four meters are a building behind one ONU; each meter's asset mRID is its number, and has no
customer (each meter counts as one customer).

Ground truth, under the default settings:
- feeders CF01..CF20 go out whole: every ONU sends a last gasp and every meter a Kaifa last gasp.
  Each DP rolls up (its meters pass 3), two DP outages roll the feeder up: 20 feeder outages of
  400 customers each.
- feeders CF21..CF50 lose their first DP: its five ONUs and twenty meters as above. 20 of 400
  meters (5 %) and one DP outage do not roll a feeder up: 30 DP outages of 20 customers.
- feeders CF51..CF60: a customer calls about one meter in every DP: one meter of 20 is no DP
  roll-up: 200 service outages of 1 customer, at the call center's 0.40.
All signals fall within four minutes, interleaved across feeders, so every window holds them.
"""

import random
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg2

import correlator

DB = "oms_storm"
FEEDERS, DPS, METERS = 60, 20, 20
WHOLE, ONE_DP = range(1, 21), range(21, 51)
CALLS = range(51, 61)
FUNCTIONS = {"onu": "insert_onu_event_from_json_with_meter_sync",
             "kaifa": "insert_kaifa_event_from_json_with_meter_sync",
             "call": "insert_callcenter_ticket_from_json_with_meter_link"}

GRID = f"""
INSERT INTO network_substations (substation_id, name) VALUES ('CS1', 'Correlated storm');
INSERT INTO network_feeders (feeder_id, substation_id, name)
SELECT 'CF' || lpad(f::text, 2, '0'), s.id, 'Feeder ' || f FROM generate_series(1, {FEEDERS}) AS f, network_substations s;
INSERT INTO network_distribution_points (dp_id, feeder_id, name)
SELECT f.feeder_id || '-D' || lpad(d::text, 2, '0'), f.id, 'DP ' || d FROM network_feeders f, generate_series(1, {DPS}) AS d;
INSERT INTO onus (id, name)
SELECT n, 'Building ' || n FROM generate_series(1, {FEEDERS * DPS * METERS // 4}) AS n;
INSERT INTO oms_meters (meter_number, asset_mrid, substation_id, feeder_id, dp_id, onu_id, power_status,
                        communication_status, last_communication)
SELECT dp.dp_id || '-' || lpad(n::text, 2, '0'), dp.dp_id || '-' || lpad(n::text, 2, '0'), f.substation_id, f.id, dp.id,
       (row_number() OVER (ORDER BY dp.dp_id, n) - 1) / 4 + 1, 'on', 'online', '2026-06-01 09:59:00+00'
FROM network_distribution_points dp JOIN network_feeders f ON f.id = dp.feeder_id, generate_series(1, {METERS}) AS n;
ANALYZE;
"""


def feeder(f):
    return f"CF{f:02d}"


def dp(f, d):
    return f"{feeder(f)}-D{d:02d}"


def meter(f, d, n):
    return f"{dp(f, d)}-{n:02d}"


def onu_of(f, d, n):
    return (((f - 1) * DPS + (d - 1)) * METERS + (n - 1)) // 4 + 1


def signals():
    """(kind, key, meters, dp, feeder) in a fixed order; times are given when they are delivered."""
    out = []

    def whole_dp(f, d):
        for first in range(1, METERS + 1, 4):
            out.append(("onu", onu_of(f, d, first), [meter(f, d, first + k) for k in range(4)], dp(f, d), feeder(f)))
        for n in range(1, METERS + 1):
            out.append(("kaifa", meter(f, d, n), [meter(f, d, n)], dp(f, d), feeder(f)))

    for f in WHOLE:
        for d in range(1, DPS + 1):
            whole_dp(f, d)
    for f in ONE_DP:
        whole_dp(f, 1)
    for f in CALLS:
        for d in range(1, DPS + 1):
            out.append(("call", meter(f, d, 1 + d % METERS), [meter(f, d, 1 + d % METERS)], dp(f, d), feeder(f)))
    return out


def payload(kind, key, at, n):
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "onu":
        return {"eventId": f"CS-ONU-{n}", "type": "ONU_LastGaspAlert", "onuId": key, "timestamp": stamp}
    if kind == "kaifa":
        return {"timestamp": stamp, "payload": {"event_id": f"CS-KF-{n}", "severity": "critical",
                                                "assets": {"ns2:mRID": key}}}
    return {"ticketId": f"CS-TC-{n}", "timestamp": stamp, "customer": {"phone": "+962-7-0000-0000", "meterNumber": key}}


def run(admin_dsn, dsn, clients=4, storm_handling=True, log=print):
    """One replay. With storm_handling off, storm mode's activation threshold is out of reach, so the
    engine runs at its normal windows and every repeated signal takes the full path."""
    import json

    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
        cur.execute(f"ALTER DATABASE {DB} SET synchronous_commit = off")
    conn.close()
    conn = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
        cur.execute(GRID)
        if not storm_handling:
            cur.execute("UPDATE oms_storm_mode_config SET auto_activation_threshold = 2147483647 "
                        "WHERE config_name = 'default'")
        cur.execute("SELECT 'dp:' || id, dp_id FROM network_distribution_points UNION ALL "
                    "SELECT 'feeder:' || id, feeder_id FROM network_feeders")
        device_names = dict(cur.fetchall())
    conn.close()

    events = signals()
    # A storm hits every feeder at once: the signals of all feeders interleave in time.
    random.Random(20261129).shuffle(events)
    base = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)
    span = timedelta(minutes=4)
    # Event time order, each client taking every fourth: the way a partitioned queue delivers.
    timed = [(base + span * i / len(events), e) for i, e in enumerate(events)]
    plans = [timed[c::clients] for c in range(clients)]
    done = {}  # meter -> first wall time a committed signal named it
    errors = []
    lock = threading.Lock()
    seen = {}
    stop = threading.Event()

    def deliver(plan, c):
        conn = psycopg2.connect(dsn, options="-c TimeZone=UTC")
        try:
            for n, (at, (kind, key, meters, _, _)) in enumerate(plan):
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"SELECT {FUNCTIONS[kind]}(%s::jsonb)", (json.dumps(payload(kind, key, at, f"{c}-{n}")),))
                    conn.commit()
                    now = time.monotonic()
                    with lock:
                        for m in meters:
                            done.setdefault(m, now)
                except psycopg2.Error as e:
                    conn.rollback()
                    with lock:
                        errors.append(e.pgerror)
        finally:
            conn.close()

    def watch():
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT device_key FROM oms_outage_events "
                            "WHERE scope IN ('distribution_point', 'feeder') AND status <> 'merged'")
                now = time.monotonic()
                for (key,) in cur.fetchall():
                    seen.setdefault(device_names.get(key, key), now)
                time.sleep(0.01)
        conn.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=deliver, args=(plans[c], c)) for c in range(clients)]
    with correlator.Watch(dsn) as batches:
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        drain = correlator.wait_drained(dsn)
        correlated = time.monotonic() - started
    time.sleep(0.1)
    stop.set()
    watcher.join()
    lags, unseen = batches.lags()

    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("""SELECT scope, count(*) FILTER (WHERE status <> 'merged'), count(*) FILTER (WHERE status = 'merged'),
                              count(*), sum(affected_customers_count) FILTER (WHERE status <> 'merged')
                       FROM oms_outage_events GROUP BY 1 ORDER BY 1""")
        by_scope = {scope: (final, merged, opened, customers) for scope, final, merged, opened, customers in cur.fetchall()}
        cur.execute("""SELECT scope, affected_customers_count, count(*) FROM oms_outage_events WHERE status <> 'merged'
                       GROUP BY 1, 2 ORDER BY 1, 2""")
        shapes = cur.fetchall()
        cur.execute("SELECT count(*) FILTER (WHERE active), min(switched_at) FILTER (WHERE active) FROM oms_storm_mode_log")
        switched_on, first_on = cur.fetchone()
    conn.close()

    # When each roll-up became due: a DP when its third distinct meter's signal had committed, a
    # feeder when its second DP was due.
    dp_meters, feeder_dps = {}, {}
    for kind, key, meters, d, f in events:
        dp_meters.setdefault(d, set()).update(meters)
        feeder_dps.setdefault(f, set()).add(d)

    def due_dp(d):
        times = sorted(done[m] for m in dp_meters[d] if m in done)
        return times[2] if len(times) >= 3 else None

    lag_dp = [seen[dp(f, 1)] - due_dp(dp(f, 1)) for f in ONE_DP if dp(f, 1) in seen and due_dp(dp(f, 1))]
    lag_feeder = []
    for f in WHOLE:
        dues = sorted(t for t in (due_dp(d) for d in feeder_dps[feeder(f)]) if t is not None)
        if len(dues) >= 2 and feeder(f) in seen:
            lag_feeder.append(seen[feeder(f)] - dues[1])
    truth = [("feeder", len(WHOLE), 400), ("distribution_point", len(ONE_DP), 20), ("service", len(CALLS) * DPS, 1)]
    return {"events": len(events), "elapsed": elapsed, "rate": len(events) / elapsed, "errors": errors,
            "drain": drain, "correlated_rate": len(events) / correlated, "lag": correlator.distribution(lags),
            "unseen": unseen, "notifications": batches.notifications,
            "largest_notification": max(batches.notification_bytes, default=0),
            "by_scope": by_scope, "shapes": shapes, "truth": truth, "lag_dp": lag_dp, "lag_feeder": lag_feeder,
            "storm_handling": storm_handling, "storm_switched_on": switched_on}


def final_outages(result):
    return sorted((scope, final) for scope, (final, _, _, _) in result["by_scope"].items()), result["shapes"]


def ms(values):
    if not values:
        return "none measured"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms"


def report(result, without_storm_handling=None):
    out = ["### Correlated storm (bench/correlated_storm.py)\n",
           f"{result['events']:,} ONU, Kaifa and call-center signals over 60 feeders from 4 clients, storm mode "
           f"switching by itself (switched on {result['storm_switched_on']} time(s)): "
           f"ingest **{result['rate']:.0f} events/s**, {len(result['errors'])} errors, {result['elapsed']:.1f} s; the "
           f"queue was empty {result['drain'] * 1000:.0f} ms after the last ingest: **{result['correlated_rate']:.0f} "
           "events/s** from the first ingest to the last signal correlated.\n",
           f"Lag, from a signal's ingest to its batch's commit: {correlator.describe(result['lag'])}"
           + (f"; {result['unseen']} not seen" if result["unseen"] else "") + ".\n",
           f"Notifications on `oms_outage`: {result['notifications']:,}, "
           f"{result['notifications'] / result['events']:.3f} per signal; the largest {result['largest_notification']:,} "
           "bytes.\n"]
    if without_storm_handling:
        other = without_storm_handling
        out.append(f"The same replay with storm mode kept off (activation threshold out of reach; switched on "
                   f"{other['storm_switched_on']} time(s)): ingest **{other['rate']:.0f} events/s**, "
                   f"{other['correlated_rate']:.0f} events/s to the last signal correlated, {len(other['errors'])} "
                   f"errors; lag {correlator.describe(other['lag'])}; with storm handling / without: "
                   f"{result['correlated_rate'] / other['correlated_rate']:.2f}x. "
                   f"Final outages {'match' if final_outages(other) == final_outages(result) else '**DIFFER**'} "
                   "between the two runs.\n")
    out += [
           "| scope | final outages | ground truth | customers each (final) | merged | opened |",
           "|---|---:|---:|---|---:|---:|"]
    for scope, count, customers in result["truth"]:
        final, merged, opened, _ = result["by_scope"].get(scope, (0, 0, 0, 0))
        each = ", ".join(f"{n}x{c}" for s, c, n in result["shapes"] if s == scope)
        match = "" if final == count and each == f"{count}x{customers}" else " **MISMATCH**"
        out.append(f"| {scope} | {final} | {count} ({count}x{customers}){match} | {each} | {merged} | {opened} |")
    out.append("")
    out.append(f"From the signal that made a DP roll-up due to the DP outage being visible to a reader polling every "
               f"10 ms: {ms(result['lag_dp'])} ({len(result['lag_dp'])} DPs).")
    out.append(f"From the second DP of a feeder being due to the feeder outage being visible: {ms(result['lag_feeder'])} "
               f"({len(result['lag_feeder'])} feeders).")
    if result["errors"]:
        out.append(f"\nFirst error: {result['errors'][0]}")
    return "\n".join(out)
