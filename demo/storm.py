#!/usr/bin/env python3
"""A small storm on the demo grid's feeder FD001, after the samples (SPEC §5): meter and customer
signals predict outages, the outages roll up to their DPs and then the feeder, and the meters come
back step by step. A second connection LISTENs on channel oms_outage, as a dashboard would, and
prints each notification as it arrives. Ingest only queues each signal; the correlator's background
worker takes it in, and each step shows how long that took.

Then a burst: a feeder of 1,000 meters (250 buildings) is added, every building's last gasp comes
from four consumers at once, and oms_correlation_status is sampled while the worker drains them.

    demo/storm.py --dsn "host=127.0.0.1 port=25429 dbname=oms_demo user=postgres"
"""

import argparse
import json
import select
import threading
import time
import uuid

import psycopg2

ONU = "insert_onu_event_from_json_with_meter_sync"
KAIFA = "insert_kaifa_event_from_json_with_meter_sync"
CALL = "insert_callcenter_ticket_from_json_with_meter_link"


def kaifa(meter, hhmm, restored=False):
    body = {"event_id": f"STORM-{meter}-{hhmm}", "assets": {"ns2:mRID": meter}}
    body.update({"event_type": {"@ref": "3.26.0.216"}} if restored else {"severity": "critical"})
    return KAIFA, {"message_type": "EndDeviceEvent", "timestamp": f"2025-09-30T{hhmm}:00Z", "payload": body}


def onu(hhmm, restored=False):
    return ONU, {"eventId": f"STORM-ONU-{hhmm}", "type": "ONU_PowerRestored" if restored else "ONU_LastGaspAlert",
                 "onuId": 3230316, "timestamp": f"2025-09-30T{hhmm}:00Z"}


def call(meter, hhmm):
    return CALL, {"ticketId": f"STORM-TC-{meter}", "timestamp": f"2025-09-30T{hhmm}:00Z",
                  "customer": {"phone": "+962-7-5555-0000", "meterNumber": meter}}


STORM = [
    ("A last gasp from M-FD001-005 (DP-FD001-02): a service outage held for the declaration delay (a minute;\n"
     "a meter's blip is never an outage), so nothing is announced yet", [kaifa("M-FD001-005", "12:00")]),
    ("M-FD001-006 too: half of DP-FD001-02's four meters, so the DP rolls up", [kaifa("M-FD001-006", "12:01")]),
    ("A customer calls about M-FD001-009 (DP-FD001-03): a service outage at 0.40", [call("M-FD001-009", "12:02")]),
    ("M-FD001-010's last gasp rolls DP-FD001-03 up, and two DP outages roll FD001 up",
     [kaifa("M-FD001-010", "12:03")]),
    ("ONU 3230316's building goes dark: its meters join the feeder outage", [onu("12:04")]),
    ("DP-FD001-02's meters come back: a step restoration",
     [kaifa("M-FD001-005", "12:20", True), kaifa("M-FD001-006", "12:20", True)]),
    ("The building is back", [onu("12:25", True)]),
    ("The last meters are back: the feeder outage is restored",
     [kaifa("M-FD001-009", "12:30", True), kaifa("M-FD001-010", "12:30", True)]),
]


def names(conn):
    """Device keys' ids by code, for printing."""
    with conn.cursor() as cur:
        cur.execute("""SELECT 'dp:' || id, dp_id FROM network_distribution_points
                       UNION ALL SELECT 'feeder:' || id, feeder_id FROM network_feeders
                       UNION ALL SELECT 'substation:' || id, substation_id FROM network_substations
                       UNION ALL SELECT 'service:meter:' || id, meter_number FROM oms_meters""")
        found = dict(cur.fetchall())
    conn.commit()
    return found


def label(device_key, known):
    if device_key and device_key.startswith("service:onu:"):
        return "ONU " + device_key.rsplit(":", 1)[1]
    return known.get(device_key, device_key)


def settled(conn):
    """Seconds until the correlator has taken in every committed signal (the queue is empty)."""
    started = time.monotonic()
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT queue_depth FROM oms_correlation_status")
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.002)
    conn.commit()
    return time.monotonic() - started


def drain(listener, conn, known, quiet=False):
    """Prints every notification so far (a sentinel sent after them marks the end); how many."""
    nonce = uuid.uuid4().hex
    with conn.cursor() as cur:
        cur.execute("SELECT pg_notify('oms_outage', %s)", (json.dumps({"sentinel": nonce}),))
    conn.commit()
    count = 0
    while True:
        select.select([listener], [], [], 1.0)
        listener.poll()
        while listener.notifies:
            n = json.loads(listener.notifies.pop(0).payload)
            if n.get("sentinel") == nonce:
                return count
            count += 1
            if not quiet:
                print(f"    NOTIFY {n['change']:<18} {n['scope']:<18} {label(n['device_key'], known):<16} "
                  f"{n['status']:<9} affected={n['affected_customers_count']} out={n['customers_out']} "
                  f"confidence={n['confidence']} changes={','.join(n['changes'])}")


BURST_GRID = """
INSERT INTO network_feeders (feeder_id, substation_id, name)
SELECT 'FD-BURST', id, 'Burst 11 kV' FROM network_substations WHERE substation_id = 'SS002';
INSERT INTO network_distribution_points (dp_id, feeder_id, name)
SELECT 'DP-BURST-' || lpad(d::text, 2, '0'), f.id, 'Burst DP ' || d
FROM network_feeders f, generate_series(1, 20) AS d WHERE f.feeder_id = 'FD-BURST';
INSERT INTO onus (id, name) SELECT 9000000 + n, 'Burst building ' || n FROM generate_series(1, 250) AS n;
INSERT INTO oms_meters (meter_number, substation_id, feeder_id, dp_id, onu_id, power_status, communication_status,
                        last_communication)
SELECT 'M-BURST-' || lpad(n::text, 4, '0'), f.substation_id, f.id, dp.id, 9000000 + (n - 1) / 4 + 1, 'on', 'online',
       '2025-09-30 13:59:00+00'
FROM generate_series(1, 1000) AS n
JOIN network_feeders f ON f.feeder_id = 'FD-BURST'
JOIN network_distribution_points dp ON dp.dp_id = 'DP-BURST-' || lpad((1 + (n - 1) / 50)::text, 2, '0');
"""


def burst(dsn, conn, listener, known):
    with conn.cursor() as cur:
        cur.execute(BURST_GRID)
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("SELECT batches, signals FROM oms_correlation_state")
        batches_before, signals_before = cur.fetchone()
    conn.commit()
    buildings = list(range(9000001, 9000251))

    def consumer(mine):
        c = psycopg2.connect(dsn, options="-c TimeZone=UTC")
        c.autocommit = True
        with c.cursor() as cur:
            for onu_id in mine:
                second = onu_id - 9000001
                cur.execute(f"SELECT {ONU}(%s::jsonb)", (json.dumps(
                    {"eventId": f"BURST-{onu_id}", "type": "ONU_LastGaspAlert", "onuId": onu_id,
                     "timestamp": f"2025-09-30T14:00:{second // 10:02d}.{second % 10}Z"}),))
        c.close()

    samples = []
    done = threading.Event()

    def sample():
        c = psycopg2.connect(dsn)
        c.autocommit = True
        with c.cursor() as cur:
            while True:
                cur.execute("""SELECT queue_depth, last_batch_signals, round(last_batch_ms::numeric, 1),
                                      round(last_batch_lag_ms::numeric, 1), worker_pid FROM oms_correlation_status""")
                samples.append((time.monotonic(),) + cur.fetchone())
                if done.is_set() and samples[-1][1] == 0:
                    break
                time.sleep(0.02)
        c.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    threads = [threading.Thread(target=consumer, args=(buildings[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = time.monotonic() - started
    done.set()
    sampler.join()
    drained = samples[-1][0] - started
    print(f"  250 last gasps (1,000 meters) sent by 4 consumers in {sent * 1000:.0f} ms; the queue was empty "
          f"{max(0.0, drained - sent) * 1000:.0f} ms after the last one")
    print("  oms_correlation_status while it drained (sampled every 20 ms; a line at each new batch):")
    print("     t (ms)  queue_depth  last_batch_signals  last_batch_ms  last_batch_lag_ms  worker_pid")
    shown = None
    for at, depth, size, ms, lag, pid in samples:
        if (size, ms, lag) != shown:
            print(f"    {(at - started) * 1000:7.0f}  {depth:11}  {size or 0:18}  {ms or 0:13}  {lag or 0:17}  {pid}")
            shown = (size, ms, lag)
    with conn.cursor() as cur:
        cur.execute("SELECT batches, signals FROM oms_correlation_state")
        batches, signals = cur.fetchone()
        cur.execute("""SELECT o.scope, o.status, o.affected_customers_count, count(*) OVER ()
                       FROM oms_outage_events o JOIN network_feeders f ON f.id = o.feeder_id
                       WHERE f.feeder_id = 'FD-BURST' AND o.status <> 'merged'""")
        outages = cur.fetchall()
    conn.commit()
    heard = drain(listener, conn, known, quiet=True)
    print(f"  {signals - signals_before} signals in {batches - batches_before} batches; FD-BURST's outages now: "
          + ", ".join(f"{scope} {status} ({affected} customers)" for scope, status, affected, _ in outages)
          + f"; {heard} notifications for 250 signals")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    listener = psycopg2.connect(args.dsn)
    listener.autocommit = True
    with listener.cursor() as cur:
        cur.execute("LISTEN oms_outage")
    conn = psycopg2.connect(args.dsn, options="-c TimeZone=UTC")
    known = names(conn)

    print("== A storm on FD001, with a dashboard LISTENing on oms_outage ==")
    for what, deliveries in STORM:
        print(f"\n{what}")
        for function, payload in deliveries:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            conn.commit()
        print(f"    (queued; the worker took it in within {settled(conn) * 1000:.0f} ms)")
        drain(listener, conn, known)

    print("\n== FD001's outages: every one the storm opened, the merged ones pointing where they went ==")
    with conn.cursor() as cur:
        cur.execute("""SELECT o.event_id, o.scope, o.device_key, o.status, o.affected_customers_count,
                              o.customers_out, o.confidence_score,
                              to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI'),
                              to_char(o.actual_restoration_time AT TIME ZONE 'UTC', 'HH24:MI'),
                              (SELECT m.event_id FROM oms_outage_events m WHERE m.id = o.merged_into)
                       FROM oms_outage_events o JOIN network_feeders f ON f.id = o.feeder_id
                       WHERE f.feeder_id = 'FD001' AND o.first_detected_at >= '2025-09-30 12:00+00'
                       ORDER BY o.created_at""")
        for event_id, scope, key, status, affected, out, confidence, start, end, into in cur.fetchall():
            where = f" -> {into}" if into else ""
            print(f"  {event_id:<42} {scope:<18} {label(key, known):<14} {status:<9} affected={affected} "
                  f"out={out} conf={confidence} {start}-{end or ''}{where}")
        cur.execute("""SELECT to_char(t."timestamp" AT TIME ZONE 'UTC', 'HH24:MI'), t.event_type, t.description
                       FROM oms_event_timeline t JOIN oms_outage_events o ON o.id = t.outage_event_id
                       WHERE o.scope = 'feeder' AND o.feeder_id = (SELECT id FROM network_feeders WHERE feeder_id = 'FD001')
                       ORDER BY t."timestamp", t.created_at""")
        print("\n== The feeder outage's timeline ==")
        for at, kind, description in cur.fetchall():
            print(f"  {at} {kind:<20} {description}")
    print("\n== A burst: every building of a 1,000-meter feeder loses power at once ==")
    drain(listener, conn, known)
    burst(args.dsn, conn, listener, known)
    conn.close()
    listener.close()


if __name__ == "__main__":
    main()
