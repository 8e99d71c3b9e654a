#!/usr/bin/env python3
"""Replays the producers' sample payloads the way the real consumers deliver them.

Each payload goes through a psycopg2 connection pool as `SELECT fn(%s::jsonb)`, is committed, and
its result is logged in the consumers' style. Payloads are replayed in event-time order; then one
is delivered again (at-least-once delivery) and one broken payload is sent, to show what a
redelivery and bad input do. Finally a summary of the tables.

    demo/replay.py --dsn "host=127.0.0.1 port=25429 dbname=oms_demo user=postgres" [--examples DIR]
"""

import argparse
import json
import os
import sys
from datetime import datetime, timezone

import psycopg2
from psycopg2.pool import SimpleConnectionPool

# Which consumer delivers which sample, and through which function (SPEC §2).
CONSUMERS = {
    "scada": ("scada-consumer", "insert_scada_event_with_meter_check"),
    "onu": ("onu-consumer", "insert_onu_event_from_json_with_meter_sync"),
    "kaifa": ("kaifa-consumer", "insert_kaifa_event_from_json_with_meter_sync"),
    "callcenter": ("callcenter-consumer", "insert_callcenter_ticket_from_json_with_meter_link"),
}


def source_of(filename):
    return filename.split("_", 1)[0]


def event_time(source, payload):
    """When the event happened, by the rules of SPEC §4.3 for Kaifa; naive times read as UTC."""
    text = payload.get("timestamp")
    if source == "kaifa":
        body = payload.get("payload") or {}
        header = payload.get("header") or {}
        text = body.get("created_date_time") or header.get("timestamp") or text
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def deliver(pool, source, payload, note=""):
    consumer, function = CONSUMERS[source]
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            result = cur.fetchone()[0]
        conn.commit()
    except psycopg2.Error as e:
        # The real consumers commit their queue offset anyway: an ERROR loses the message.
        conn.rollback()
        print(f"    ERROR [{e.pgcode}] {e.pgerror.splitlines()[0] if e.pgerror else e}")
        result = None
    finally:
        for notice in conn.notices:
            print(f"    {notice.strip().splitlines()[0]}")
        del conn.notices[:]
        pool.putconn(conn)
    shown = json.dumps(result, sort_keys=True) if isinstance(result, dict) else repr(result)
    when = datetime.now(timezone.utc).strftime("%H:%M:%S")
    print(f"{when} INFO {consumer}: {function} -> {shown}{note}")
    return result


def summary(pool):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            print("\n== What the database now holds ==")
            for table in [
                "scada_events", "scada_event_affected_meters", "onu_events", "kaifa_events",
                "kaifa_event_assets", "callcenter_tickets", "oms_meter_status_events",
                "oms_outage_events", "oms_event_sources", "oms_event_timeline", "oms_rejected_events",
            ]:
                cur.execute(f"SELECT count(*) FROM {table}")
                print(f"  {table:<30} {cur.fetchone()[0]:>6} rows")
            print("\n== Meters by power and communication status (active meters) ==")
            cur.execute("""SELECT power_status, communication_status, count(*) FROM oms_meters
                           WHERE status = 'active' GROUP BY 1, 2 ORDER BY 1, 2""")
            for power, comm, n in cur.fetchall():
                print(f"  power {power:<8} communication {comm:<8} {n:>5}")
            print("\n== Outages ==")
            cur.execute("""SELECT o.event_id, o.status, o.affected_customers_count, o.confidence_score,
                                  o.first_detected_at, o.actual_restoration_time,
                                  (SELECT string_agg(DISTINCT source_type, ',') FROM oms_event_sources s
                                    WHERE s.outage_event_id = o.id)
                           FROM oms_outage_events o ORDER BY o.first_detected_at""")
            for row in cur.fetchall():
                print("  {} status={} customers={} confidence={} detected={} restored={} sources={}".format(*row))
            print("\n== Timeline ==")
            cur.execute("""SELECT t."timestamp", t.event_type, t.description FROM oms_event_timeline t
                           ORDER BY t."timestamp", t.created_at""")
            for ts, kind, description in cur.fetchall():
                print(f"  {ts:%Y-%m-%d %H:%M:%S} {kind:<16} {description}")
            print("\n== Audit trail for the ONU building (meters behind ONU 3230316) ==")
            cur.execute("""SELECT m.meter_number, e.event_type, e.source_type, e.previous_status, e.new_status,
                                  e.event_timestamp, e.confidence_score, e.applied
                           FROM oms_meter_status_events e JOIN oms_meters m ON m.id = e.meter_id
                           WHERE m.onu_id = 3230316 ORDER BY e.event_timestamp, m.meter_number""")
            for number, kind, source, before, after, ts, confidence, applied in cur.fetchall():
                flag = "" if applied else "  (not applied)"
                print(f"  {ts:%H:%M:%S} {number} {kind:<10} {source:<12} {before} -> {after} @ {confidence}{flag}")
            print("\n== Rejected payloads ==")
            cur.execute("SELECT source, function_name, sqlstate, field_path, message FROM oms_rejected_events")
            for row in cur.fetchall():
                print("  {} {} [{}] {}: {}".format(*row))
        conn.rollback()
    finally:
        pool.putconn(conn)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--examples", default=os.path.join(here, "..", "..", "shared", "examples"))
    args = parser.parse_args()

    samples = []
    for name in sorted(os.listdir(args.examples)):
        source = source_of(name)
        if name.endswith(".json") and source in CONSUMERS:
            with open(os.path.join(args.examples, name)) as f:
                payload = json.load(f)
            samples.append((event_time(source, payload), name, source, payload))
    samples.sort(key=lambda s: (s[0], s[1]))
    if not samples:
        sys.exit(f"no sample payloads found in {args.examples}")

    pool = SimpleConnectionPool(1, 2, args.dsn, options="-c TimeZone=UTC")
    print(f"== Replaying {len(samples)} sample payloads from {os.path.normpath(args.examples)} in event-time order ==")
    for when, name, source, payload in samples:
        print(f"\n[{when:%Y-%m-%d %H:%M:%S%z}] {name}")
        deliver(pool, source, payload)

    print("\n== At-least-once delivery: the first sample again ==")
    _, name, source, payload = samples[0]
    print(f"[redelivery] {name}")
    deliver(pool, source, payload, "  (same id: nothing written twice)")

    print("\n== Bad input: an ONU alarm whose onuId is not a number ==")
    deliver(pool, "onu", {"eventId": "ONU_BAD_1", "type": "ONU_LastGaspAlert", "onuId": "ONU-7",
                          "timestamp": "2025-09-30T10:06:00Z"})

    summary(pool)
    pool.closeall()


if __name__ == "__main__":
    main()
