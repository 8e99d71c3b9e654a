#!/usr/bin/env python3
"""A small storm on the demo grid's feeder FD001, after the samples (SPEC §5): meter and customer
signals predict outages, the outages roll up to their DPs and then the feeder, and the meters come
back step by step. A second connection LISTENs on channel oms_outage, as a dashboard would, and
prints each notification as it arrives.

    demo/storm.py --dsn "host=127.0.0.1 port=25429 dbname=oms_demo user=postgres"
"""

import argparse
import json
import select

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
    ("A last gasp from M-FD001-005 (DP-FD001-02): a predicted service outage", [kaifa("M-FD001-005", "12:00")]),
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


def drain(listener, known):
    while select.select([listener], [], [], 0.3) != ([], [], []):
        listener.poll()
        while listener.notifies:
            n = json.loads(listener.notifies.pop(0).payload)
            print(f"    NOTIFY {n['change']:<18} {n['scope']:<18} {label(n['device_key'], known):<16} "
                  f"{n['status']:<9} affected={n['affected_customers_count']} out={n['customers_out']} "
                  f"confidence={n['confidence']}")


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
        drain(listener, known)

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
    conn.close()
    listener.close()


if __name__ == "__main__":
    main()
