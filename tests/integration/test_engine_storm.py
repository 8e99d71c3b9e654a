"""A storm across many DPs of two feeders (issue 11): 8 sessions, every event delivered twice (the
copies on different sessions), in random order. It must end with no error, one open outage per
device, exactly the roll-ups the rules give, and every outage's counts equal to a recount.

The ground truth, from the grid (engine_grid.py with ten DPs of ten meters per feeder) and the
defaults, worked out here by hand:
- F-X: seven DPs lose four meters each (DP-X1 through ONU 9201's building and two Kaifa meters).
  Each DP rolls up (three meters within five minutes); two DP outages roll F-X up. 28 of its 100
  meters stay below 30 %. Whatever the order, one feeder outage ends with all 28 meters.
- F-Y: DP-Y1 loses three meters (a DP outage); ONU 9202's building, two meters of DP-Y2, stays a
  service outage (2 < 3, 2 of 10 < 50 %); DP-Y3 to DP-Y6 each have one meter reported by a call or
  a Kaifa message: four service outages, except that a Kaifa meter gone in the same minute as
  DP-Y1's first is in DP-Y1's outage, suspected mis-mapped (issue 22). One DP outage does not roll
  the feeder up; 9 of 100 meters is below 30 %.
Every signal is between 10:00 and 10:04, so every window holds them all. Extra calls about meters
already out add sources, never meters.
"""

import json
import random
import threading

import psycopg2
import pytest

from conftest import dsn, query, settle
from engine_grid import assert_counts_are_recounts, build_grid, kaifa, onu, picture, ticket

WORKERS = 8


def storm(rng):
    """The events, each with its time, and the meters each outage of the ground truth must hold."""
    minute = lambda: f"10:0{rng.randrange(5)}"  # noqa: E731
    events = []
    x_meters, y1, services = [], [], {}
    for d in range(1, 8):
        dp_meters = [f"E-X{d}-{n:02d}" for n in range(1, 5)]
        x_meters += dp_meters
        if d == 1:
            events.append(onu(9201, minute()))
            events += [kaifa(m, minute()) for m in dp_meters[2:]]
        else:
            events += [kaifa(m, minute()) for m in dp_meters]
        events.append(ticket(rng.choice(dp_meters), minute()))  # a customer calls about a meter already out
    y1 = [f"E-Y1-{n:02d}" for n in range(1, 4)]
    events += [kaifa(m, minute()) for m in y1]
    events.append(onu(9202, minute()))
    services["onu:9202"] = ["E-Y2-01", "E-Y2-02"]
    for d in range(3, 7):
        meter = f"E-Y{d}-01"
        events.append(ticket(meter, minute()) if d % 2 else kaifa(meter, minute()))
        services[meter] = [meter]
    return events, sorted(x_meters), y1, services


def deliver(database, plan):
    errors = []
    lock = threading.Lock()

    def work(deliveries):
        conn = psycopg2.connect(dsn(database), options="-c TimeZone=UTC")
        try:
            for function, payload in deliveries:
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
                    conn.commit()
                except psycopg2.Error as e:
                    conn.rollback()
                    with lock:
                        errors.append((function, e.pgcode, e.pgerror))
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(deliveries,)) for deliveries in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a session was still delivering after 10 minutes"
    return errors


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_storm_from_eight_sessions_ends_with_exactly_the_rules_outages(pool, db, seed):
    build_grid(pool, feeders=("X", "Y"), dps=10, meters_per_dp=10,
               onus={9201: ["E-X1-01", "E-X1-02"], 9202: ["E-Y2-01", "E-Y2-02"]})
    rng = random.Random(seed)
    events, x_meters, y1, services = storm(rng)
    deliveries = [(n, e) for n, e in enumerate(events)] * 2
    rng.shuffle(deliveries)
    plan = [[] for _ in range(WORKERS)]
    worker_of = {}
    for k, (n, event) in enumerate(deliveries):
        w = k % WORKERS
        if worker_of.get(n) == w:
            w = (w + 1) % WORKERS
        worker_of.setdefault(n, w)
        plan[w].append(event)
    assert deliver(db, plan) == []
    settle(pool)

    assert_counts_are_recounts(pool)
    assert query(pool, """SELECT device_key FROM oms_outage_events WHERE status IN ('detected', 'confirmed', 'in_progress')
                          GROUP BY 1 HAVING count(*) > 1""") == []
    start = {}  # each meter's earliest signal: an outage starts at its earliest meter's
    for function, payload in events:
        meter_of = payload.get("payload", {}).get("assets", {}).get("ns2:mRID") or \
            payload.get("customer", {}).get("meterNumber")
        names = [meter_of] if meter_of else {9201: ["E-X1-01", "E-X1-02"], 9202: ["E-Y2-01", "E-Y2-02"]}[payload["onuId"]]
        hhmm = (payload.get("timestamp") or "")[11:16]
        for name in names:
            start[name] = min(start.get(name, "99:99"), hhmm)
    first = lambda ms: min(start[m] for m in ms)  # noqa: E731
    # Suspected mis-mapping (issue 22): a lone meter reported by a Kaifa last gasp (E-Y4-01, E-Y6-01;
    # the calls are not in step by nature) within mismap_window (10 s) of DP-Y1's outage start is out
    # in DP-Y1's outage. Times here are whole minutes, so: in the same minute as DP-Y1's first meter.
    taken_in = sorted(m for m in ("E-Y4-01", "E-Y6-01") if start[m] == first(y1))
    services = {device: ms for device, ms in services.items() if device not in taken_in}
    y1_out = sorted(y1 + taken_in)
    y1_confidence = "0.99" if not taken_in else "1.00"  # 1 - 0.2^3; with a fourth Kaifa source 1 - 0.2^4
    y_services = [(device, "service", "confirmed" if device.startswith("E-Y4") or device.startswith("E-Y6") else
                   "detected", len(ms), len(ms), {"onu:9202": "0.60", "E-Y3-01": "0.40", "E-Y4-01": "0.80",
                                                   "E-Y5-01": "0.40", "E-Y6-01": "0.80"}[device],
                   first(ms), None, ms, None) for device, ms in services.items()]
    expected = sorted([("DP-Y1", "distribution_point", "confirmed", len(y1_out), len(y1_out), y1_confidence, first(y1),
                        None, y1_out, None),
                       ("F-X", "feeder", "confirmed", 28, 28, "1.00", first(x_meters), None, x_meters, None)]
                      + y_services, key=lambda row: (row[0], row[6]))
    assert picture(pool) == expected
    # Exactly the roll-ups: one feeder outage ever on F-X and none on F-Y; one DP outage on F-Y. Every
    # DP outage of F-X went into the feeder's.
    assert query(pool, """SELECT count(*) FROM oms_outage_events o JOIN network_feeders f ON f.id = o.feeder_id
                          WHERE f.feeder_id = 'F-X' AND o.scope <> 'feeder' AND o.status <> 'merged'""") == [(0,)]
    assert query(pool, """SELECT f.feeder_id, o.scope, count(*) FROM oms_outage_events o
                          JOIN network_feeders f ON f.id = o.feeder_id
                          WHERE o.scope IN ('feeder', 'distribution_point') AND (o.scope = 'feeder' OR f.feeder_id = 'F-Y')
                          GROUP BY 1, 2 ORDER BY 1, 2""") == [("F-X", "feeder", 1), ("F-Y", "distribution_point", 1)]
    # Every signal reached the registry once: one status event per meter and source event.
    assert query(pool, """SELECT count(*) FROM (SELECT meter_id, source_event_id FROM oms_meter_status_events
                          GROUP BY 1, 2 HAVING count(*) > 1) AS twice""") == [(0,)]
