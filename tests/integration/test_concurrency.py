"""SPEC §6: many consumers at once, at-least-once delivery, out of order.

1,200 deliveries of 600 mixed events (ONU, Kaifa, call center, SCADA) on the same ONUs, feeders and
meters, in random order over 8 connections; every event is delivered twice, the copies on
different connections. Afterwards: no errors, one row per event, both copies answered with the
same id, at most one open outage per device, and every meter's power status is what its newest
event says, worked out in this file from the event times alone (expected_power), not from a replay
by the extension itself.
"""

import json
import random
import threading
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from conftest import CORRELATING, dsn, run

WORKERS = 8
BASE = datetime(2025, 10, 1, 8, 0, tzinfo=timezone.utc)
SCADA_SCOPE = "-c oms_correlation.scada_scope=topology -c TimeZone=UTC"

# Feeder A: 20 ONUs with 3 meters each, also known to the Kaifa head-end; SCADA alarms hit it.
# Feeder B: 30 Kaifa meters, no SCADA: their status is decided by their own events only.
STRESS_GRID = """
INSERT INTO network_substations (substation_id, name) VALUES ('SS-ST', 'Stress');
INSERT INTO network_feeders (feeder_id, substation_id, name)
SELECT code, (SELECT id FROM network_substations WHERE substation_id = 'SS-ST'), code
FROM (VALUES ('FD-ST-A'), ('FD-ST-B')) AS f(code);
INSERT INTO onus (id, onu_serial_no) SELECT 9100 + n, 'SER' || n FROM generate_series(0, 19) AS n;
INSERT INTO oms_meters (meter_number, asset_mrid, onu_id, feeder_id, substation_id, power_status,
                        communication_status, last_communication)
SELECT 'SA-' || o || '-' || k, 'SA-' || o || '-' || k, 9100 + o, f.id, f.substation_id, 'on', 'online',
       '2025-10-01 07:59:00+00'
FROM generate_series(0, 19) AS o, generate_series(0, 2) AS k, network_feeders f WHERE f.feeder_id = 'FD-ST-A';
INSERT INTO oms_meters (meter_number, asset_mrid, feeder_id, substation_id, power_status, communication_status,
                        last_communication)
SELECT 'SB-' || n, 'SB-' || n, f.id, f.substation_id, 'on', 'online', '2025-10-01 07:59:00+00'
FROM generate_series(0, 29) AS n, network_feeders f WHERE f.feeder_id = 'FD-ST-B';
"""

A_METERS = [f"SA-{o}-{k}" for o in range(20) for k in range(3)]
B_METERS = [f"SB-{n}" for n in range(30)]


def make_events(rng):
    """600 events with distinct times; each with the meters it sets and the power it sets them to."""
    kinds = ["onu"] * 250 + ["kaifa"] * 200 + ["callcenter"] * 80 + ["scada"] * 70
    rng.shuffle(kinds)
    events = []
    scada_so_far = 0
    for i, kind in enumerate(kinds):
        at = BASE + timedelta(seconds=7 * i)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "onu":
            onu = rng.randrange(20)
            kind_name = rng.choice(["ONU_LastGaspAlert"] * 9 + ["ONU_PowerRestored"] * 9 + ["ONU_LinkDown"] * 2)
            payload = {"eventId": f"ST-ONU-{i}", "type": kind_name, "onuId": 9100 + onu, "timestamp": stamp}
            power = {"ONU_LastGaspAlert": "off", "ONU_PowerRestored": "on"}.get(kind_name)
            meters = [f"SA-{onu}-{k}" for k in range(3)] if power else []
            key = ("onu", 9100 + onu, kind_name, stamp)
        elif kind == "kaifa":
            meter = rng.choice(A_METERS + B_METERS * 2)
            code, power = rng.choice([("3.26.0.85", "off"), ("3.26.0.216", "on"), ("3.26.0.47", "off"),
                                      ("3.26.0.49", "on")])
            header = {"message_id": f"ST-MSG-{i}"} if i % 2 else {"message_id": ""}
            payload = {"timestamp": stamp, "header": header,
                       "payload": {"event_id": f"ST-KF-{i}", "created_date_time": stamp,
                                   "event_type": {"@ref": code}, "assets": {"ns2:mRID": meter}}}
            meters = [meter]
            key = ("kaifa", i)
        elif kind == "callcenter":
            meter = rng.choice(A_METERS + B_METERS)
            payload = {"ticketId": f"ST-TC-{i}", "timestamp": stamp,
                       "customer": {"phone": f"+962-{i}", "meterNumber": meter}}
            power, meters = None, []
            key = ("callcenter", i)
        else:
            # The feeder trips and is restored in turn, as a feeder does; in topology scope each
            # trip takes every meter of feeder A, and each restoration gives them back.
            trip = scada_so_far % 2 == 0
            scada_so_far += 1
            payload = {"eventType": "breaker_trip" if trip else "MV_AlarmRestoration", "substationId": "SS-ST",
                       "feederId": "FD-ST-A", "alarmType": "fault" if trip else "Energized", "timestamp": stamp}
            power = "off" if trip else "on"
            meters = A_METERS
            key = ("scada", i)
        events.append({"i": i, "kind": kind, "payload": payload, "power": power, "meters": meters, "key": key,
                       "at": at})
    return events


def second_copy(event, rng):
    """The redelivery. A consumer that got an ONU message without an id invents a new one."""
    payload = json.loads(json.dumps(event["payload"]))
    if event["kind"] == "onu" and event["i"] % 10 == 0:
        payload["eventId"] = f"onu_{rng.randrange(10**12)}"
    return payload


def deliver_all(database, plan):
    results, errors = {}, []
    lock = threading.Lock()

    def work(deliveries):
        conn = psycopg2.connect(dsn(database), options=SCADA_SCOPE)
        try:
            for event, copy, payload in deliveries:
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"SELECT {CORRELATING[event['kind']]}(%s::jsonb)", (json.dumps(payload),))
                        value = cur.fetchone()[0]
                    conn.commit()
                    if isinstance(value, dict):
                        value = value["scada_event_id"]
                    with lock:
                        results[(event["i"], copy)] = value
                except psycopg2.Error as e:
                    conn.rollback()
                    with lock:
                        errors.append((event["i"], e.pgcode, e.pgerror))
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(plan[w],)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a session was still delivering after 10 minutes"
    return results, errors


def expected_power(events):
    """Every meter's power as its newest event says (SPEC §6, ordering): the newest, by event time,
    of the events naming it, whatever order they arrived in. Meters no event names stay on."""
    power = {m: "on" for m in A_METERS + B_METERS}
    for event in sorted(events, key=lambda e: e["at"]):
        for meter in event["meters"]:
            power[meter] = event["power"]
    return power


def power_by_meter(database):
    return dict(run(database, "SELECT meter_number, power_status FROM oms_meters WHERE meter_number LIKE 'S_-%'"))


@pytest.fixture
def stress_db(db):
    run(db, STRESS_GRID)
    return db


def test_concurrent_redelivered_out_of_order_storm(stress_db):
    rng = random.Random(20250930)
    events = make_events(rng)
    deliveries = [(e, 0, e["payload"]) for e in events] + [(e, 1, second_copy(e, rng)) for e in events]
    rng.shuffle(deliveries)
    # Each worker takes deliveries in the shuffled order; the two copies of an event never share one.
    plan = [[] for _ in range(WORKERS)]
    worker_of = {}
    for n, (event, copy, payload) in enumerate(deliveries):
        w = n % WORKERS
        if copy == 1 and worker_of.get(event["i"]) == w:
            w = (w + 1) % WORKERS
        worker_of.setdefault(event["i"], w)
        plan[w].append((event, copy, payload))
    assert len(deliveries) == 1200

    results, errors = deliver_all(stress_db, plan)
    assert errors == [], errors[:5]
    assert len(results) == len(deliveries)

    # Both copies of every event got the same answer: the original id.
    mismatched = [e["i"] for e in events if results[(e["i"], 0)] != results[(e["i"], 1)]]
    assert mismatched == []

    counts = {kind: sum(1 for e in events if e["kind"] == kind) for kind in CORRELATING}
    rows = run(stress_db, """SELECT (SELECT count(*) FROM onu_events WHERE onu_id >= 9100),
        (SELECT count(*) FROM kaifa_events), (SELECT count(*) FROM callcenter_tickets),
        (SELECT count(*) FROM scada_events WHERE substation_id = 'SS-ST'), (SELECT count(*) FROM oms_rejected_events)""")
    assert rows == [(counts["onu"], counts["kaifa"], counts["callcenter"], counts["scada"], 0)]
    # One status event per meter reached per event, never two.
    assert run(stress_db, """SELECT count(*) FROM (SELECT meter_id, source_event_id, event_type
        FROM oms_meter_status_events WHERE source_type <> 'scada'
        GROUP BY 1, 2, 3 HAVING count(*) > 1) AS twice""") == [(0,)]
    assert run(stress_db, """SELECT count(*) FROM (SELECT device_key
        FROM oms_outage_events WHERE status IN ('detected', 'confirmed', 'in_progress')
        GROUP BY 1 HAVING count(*) > 1) AS doubled""") == [(0,)]

    # The storm really was out of order and really did collide: late events were audited, not applied.
    late, = run(stress_db, "SELECT count(*) FROM oms_meter_status_events WHERE NOT applied AND source_type <> 'call_center'")[0]
    assert late > 0

    final = power_by_meter(stress_db)
    assert set(final.values()) == {"on", "off"}
    expected = expected_power(events)
    wrong = {m: (final[m], expected[m]) for m in expected if final[m] != expected[m]}
    assert wrong == {}, f"{len(wrong)} meters differ from their newest event (found, expected): {wrong}"


