#!/usr/bin/env python3
"""The noisy storm (issue 22, "prediction accuracy under real-world noise"): a storm on a small grid,
with the noise real signals carry, against a written ground truth, scored on the outages the engine
ends with. Today it measures the current engine as a baseline.

    /usr/bin/python3 bench/noisy_storm.py --port 25436 [--seeds 1,2,3] [--wrong-dp 0.15] ...

Grid (database oms_noisy, recreated per seed): substation NS1, 12 feeders NF01..NF12 of 8 DPs
(NF01-D1..) of 16 meters (NF01-D1-01..), 1,536 meters, each its own customer (C-<meter>). In every
second DP (D2, D4, D6, D8) the meters are buildings of 4 behind one ONU; elsewhere each meter reports
through Kaifa only. All meters are on, online, last heard from a minute before the storm.

Faults per seed (random.Random(seed), so a seed always gives the same storm):
- 10 DP faults: a few feeders get 2-4 of them, the rest one each; 3 of them are momentary (restored
  after 20-60 s), the others last 20-90 min. Every meter truly under the DP goes out.
- 2 feeder faults, on feeders with no DP fault: every meter of the feeder goes out for 30-120 min.
  Each has a SCADA breaker trip (insert_scada_event_with_meter_check), arriving before, among or after
  the fault's last gasps (a different case per fault), and a SCADA restoration at its end.
All faults begin within the storm's first 12 minutes (so a trip finds comm data within
comm_fresh_window of the alarm, as in a real network where meters report every few minutes).

Noise (flags, defaults as given):
- --wrong-dp: share of meters the registry puts under a wrong DP of the same feeder. The ground truth
  keeps their true DP.
- --gasp-rate: share of affected meters whose last gasp is heard: a Kaifa power-off for a meter of
  its own, or the ONU's last gasp for a building (4 meters together). Each heard gasp is sent 1 to
  --max-repeats times; a repeat is the device retrying (new event id, event time 1 s later per
  repeat), not the consumer redelivering the same message.
- --call-rate: share of affected customers who call (insert_callcenter_ticket_from_json_with_meter_link),
  1-20 minutes into the fault, while still out.
- --restore-skew: each meter's (or building's) power-restored is dated 0..skew s after the true
  restoration; --restore-rate is the share of them heard (1.0: all).
- --delay: every signal arrives 0..delay s after its event time (uniform); signals are sent in arrival
  order, so they are reordered within that delay. Event times stay true.
- --flappers: meters on feeders without faults that flap (Kaifa off, back on 5-60 s later)
  --flap-pairs times within the storm's first hour. Note: 10 pairs are 20 changes an hour, which is
  not more than flap_threshold (20): the engine does not call them flapping.
- --stray-calls: customers who call with no AMI signal and no fault (their own breaker, say).
- --monitored: share of feeders whose breakers report to SCADA, marked in network_feeders
  (default 1.0: feeder breakers at a substation usually are; 0 is the grid of the baseline).
- --declaration-delay: oms_correlation.declaration_delay (seconds) for the storm's database; by
  default the extension's own (60 s).
- --report-interval: every Kaifa meter (not behind an ONU) that has power reports (a communication
  event, power unchanged) every this many seconds, from a random phase, over the storm's span; a
  meter truly out, in a fault or a flap, sends nothing. 0: meters never report (the grid before the
  meter-report veto). --report-rate is the share of those reports heard.
- --call-verify-window: oms_correlation.call_verify_window (seconds) for the storm's database; by
  default the extension's own (900 s).
- --rollup-dp-min-share: oms_correlation.rollup_dp_min_share for the storm's database; by default the
  extension's own.

Delivery: one client, in arrival order, with oms_correlation.correlate = 'immediate' for the session.
Why immediate rather than the worker and a drain at the end: each ingest call then returns only once
the engine has taken it in, so after every call the outage tables show what the engine knew at that
signal's (simulated) arrival time. That is what lets this script measure when an outage became
visible in storm time, without depending on the worker's wall-clock lag on a shared 2-core machine.
The engine's outcome does not depend on batching (SPEC §5), so the final outages are the same as with
the worker. A `SELECT * FROM oms_correlate_pending()` loop at the end checks that nothing was left.

Scoring, on the final oms_outage_events rows that are not 'merged' (nor 'cancelled'):
1. faults that end as an outage at the right device (scope and dp/feeder, overlapping the fault in
   time), first visible (the simulated arrival time of the signal after which that row first showed)
   at most 60 s after the arrival of the fault's last automatic power-off signal (AMI last gasp or
   SCADA trip; calls are left out, they come minutes later by nature);
2. sustained false outages as a share of sustained rows: sustained = restored more than 5 min after
   first_detected_at, or still open; false = no fault at that device (a service outage is never the
   device of a DP or feeder fault; a feeder outage over a feeder with only DP faults is false). False
   rows are broken down into those whose meters truly sat in a fault ("in a fault's area": the right
   event at the wrong level) and the rest ("clean");
3. momentary rows (restored within 5 min) at devices with no fault, and how many hold a flapping meter;
4. detection delay of each fault with a right-device row: from the event time of the fault's first
   signal to the row becoming visible (simulated arrival time, see above), median and p95; and, in
   event time, from the fault's true start to the row's first_detected_at.
"""

import argparse
import json
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg2

DB = "oms_noisy"
SUBSTATION = "NS1"
FEEDERS, DPS, METERS = 12, 8, 16
ONU_SIZE = 4
ONU_DPS = (2, 4, 6, 8)  # DPs whose meters are buildings of 4 behind an ONU
DP_FAULTS, MOMENTARY, FEEDER_FAULTS = 10, 3, 2
BASE = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)
SUSTAINED = timedelta(minutes=5)  # momentary_window's default (IEEE 1366)
FUNCTIONS = {"onu": "insert_onu_event_from_json_with_meter_sync",
             "kaifa": "insert_kaifa_event_from_json_with_meter_sync",
             "call": "insert_callcenter_ticket_from_json_with_meter_link",
             "scada": "insert_scada_event_with_meter_check"}


def feeder(f):
    return f"NF{f:02d}"


def dp(f, d):
    return f"{feeder(f)}-D{d}"


def meter(f, d, n):
    return f"{dp(f, d)}-{n:02d}"


def stamp(at):
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Storm:
    """One seed's grid, faults, noise and signals: everything the ground truth knows."""

    def __init__(self, seed, args):
        rng = random.Random(seed)
        self.seed = seed
        self.declaration_delay = args.declaration_delay
        self.call_verify_window = args.call_verify_window
        self.rollup_dp_min_share = args.rollup_dp_min_share
        # Feeders whose breakers report to SCADA (network_feeders.scada_monitored), drawn apart from
        # the storm so that --monitored changes nothing else.
        marked = random.Random(f"monitored-{seed}").sample(range(1, FEEDERS + 1), round(args.monitored * FEEDERS))
        self.monitored = sorted(feeder(f) for f in marked)
        # The grid as it is (true DP of each meter), and as the registry has it.
        self.true_dp, self.true_feeder, self.onu_of = {}, {}, {}
        self.registered_dp = {}
        onu = 0
        for f in range(1, FEEDERS + 1):
            for d in range(1, DPS + 1):
                for n in range(1, METERS + 1):
                    m = meter(f, d, n)
                    self.true_dp[m], self.true_feeder[m] = dp(f, d), feeder(f)
                    if d in ONU_DPS:
                        if (n - 1) % ONU_SIZE == 0:
                            onu += 1
                        self.onu_of[m] = onu
                    wrong = rng.random() < args.wrong_dp
                    self.registered_dp[m] = dp(f, rng.choice([x for x in range(1, DPS + 1) if x != d])) if wrong else dp(f, d)
        self.meters_of_onu = {}
        for m, o in self.onu_of.items():
            self.meters_of_onu.setdefault(o, []).append(m)
        self.wrong = sum(1 for m in self.true_dp if self.registered_dp[m] != self.true_dp[m])

        # Faults: two feeders out whole; the 10 DP faults on the other ten, a few feeders taking 2-4.
        feeders = list(range(1, FEEDERS + 1))
        rng.shuffle(feeders)
        feeder_faulted, others = feeders[:FEEDER_FAULTS], feeders[FEEDER_FAULTS:]
        counts, left = [], DP_FAULTS
        while left > 0 and len(counts) < 3:
            k = min(left, rng.choice([2, 3, 4]))
            counts.append(k)
            left -= k
        counts += [1] * left
        self.faults = []
        for f, k in zip(others, counts):
            for d in sorted(rng.sample(range(1, DPS + 1), k)):
                self.faults.append({"scope": "distribution_point", "device": dp(f, d), "feeder": feeder(f),
                                    "meters": [meter(f, d, n) for n in range(1, METERS + 1)]})
        for i in rng.sample(range(len(self.faults)), MOMENTARY):
            self.faults[i]["momentary"] = True
        for f in feeder_faulted:
            self.faults.append({"scope": "feeder", "device": feeder(f), "feeder": feeder(f),
                                "meters": [meter(f, d, n) for d in range(1, DPS + 1) for n in range(1, METERS + 1)]})
        trip_cases = rng.sample(["before", "among", "after"], FEEDER_FAULTS)
        for i, fault in enumerate(self.faults):
            fault["n"] = i
            fault["start"] = BASE + timedelta(seconds=rng.uniform(60, 12 * 60))
            if fault.get("momentary"):
                length = rng.uniform(20, 60)
            elif fault["scope"] == "feeder":
                length = rng.uniform(30 * 60, 120 * 60)
            else:
                length = rng.uniform(20 * 60, 90 * 60)
            fault["momentary"] = fault.get("momentary", False)
            fault["end"] = fault["start"] + timedelta(seconds=length)
        self.faulted_meters = {m for fault in self.faults for m in fault["meters"]}
        self.faulted_feeders = {fault["feeder"] for fault in self.faults}

        # Signals: (kind, key, event time, payload extras, fault number or None, tag)
        self.signals = []
        ids = iter(range(1, 10 ** 9))

        def add(kind, key, at, fault, tag, **extra):
            arrival = at + timedelta(seconds=rng.uniform(0, args.delay))
            self.signals.append({"kind": kind, "key": key, "at": at, "arrival": arrival, "fault": fault,
                                 "tag": tag, "id": f"NS{seed}-{next(ids)}", **extra})

        for fault in self.faults:
            n = fault["n"]
            onus = sorted({self.onu_of[m] for m in fault["meters"] if m in self.onu_of})
            units = [("onu", o) for o in onus] + [("kaifa", m) for m in fault["meters"] if m not in self.onu_of]
            for kind, key in units:
                off = fault["start"] + timedelta(seconds=rng.uniform(0, 2))
                if rng.random() < args.gasp_rate:
                    for r in range(rng.randint(1, args.max_repeats)):
                        add(kind, key, off + timedelta(seconds=r), n, "gasp", restored=False)
                if rng.random() < args.restore_rate:
                    add(kind, key, fault["end"] + timedelta(seconds=rng.uniform(0, args.restore_skew)), n,
                        "restore", restored=True)
            for m in fault["meters"]:
                if rng.random() < args.call_rate:
                    latest = min(fault["end"], fault["start"] + timedelta(minutes=20))
                    earliest = fault["start"] + timedelta(minutes=1)
                    if latest > earliest:
                        add("call", m, earliest + (latest - earliest) * rng.random(), n, "call")
            if fault["scope"] == "feeder":
                add("scada", fault["device"], fault["start"], n, "trip", restored=False)
                add("scada", fault["device"], fault["end"], n, "scada_restore", restored=True)
        # The trip's arrival, against its meters' last gasps: first, in their midst, or after them all.
        for case, fault in zip(trip_cases, [f for f in self.faults if f["scope"] == "feeder"]):
            fault["trip_case"] = case
            trip = next(s for s in self.signals if s["fault"] == fault["n"] and s["tag"] == "trip")
            gasps = sorted(s["arrival"] for s in self.signals if s["fault"] == fault["n"] and s["tag"] == "gasp")
            if case == "before" or not gasps:
                trip["arrival"] = trip["at"] + timedelta(milliseconds=200)
            elif case == "among":
                trip["arrival"] = gasps[len(gasps) // 2]
            else:
                trip["arrival"] = gasps[-1] + timedelta(seconds=rng.uniform(5, 30))

        # Noise with no fault behind it: flapping meters and stray calls, on feeders without faults
        # when there are any (else in DPs without faults), never behind an ONU (a flap is one meter).
        quiet = [m for m in self.true_dp if m not in self.faulted_meters and m not in self.onu_of
                 and self.true_feeder[m] not in self.faulted_feeders]
        if len(quiet) < args.flappers + args.stray_calls:
            quiet = [m for m in self.true_dp if m not in self.faulted_meters and m not in self.onu_of]
        chosen = rng.sample(quiet, args.flappers + args.stray_calls)
        self.flappers, self.stray = chosen[:args.flappers], chosen[args.flappers:]
        for m in self.flappers:
            slots = sorted(rng.sample(range(60), args.flap_pairs))  # one pair per minute slot
            for s in slots:
                off = BASE + timedelta(minutes=s, seconds=rng.uniform(0, 50))
                add("kaifa", m, off, None, "flap", restored=False)
                add("kaifa", m, off + timedelta(seconds=rng.uniform(5, 60)), None, "flap", restored=True)
        for m in self.stray:
            add("call", m, BASE + timedelta(seconds=rng.uniform(60, 60 * 60)), None, "stray")

        # Meters with power report now and then (their own rng, so that the storm above is the same
        # storm whatever --report-interval is). Out when truly out: a fault, or a flap until it is back.
        if args.report_interval > 0:
            reports = random.Random(f"reports-{seed}")
            out = {}
            for fault in self.faults:
                for m in fault["meters"]:
                    out.setdefault(m, []).append((fault["start"], fault["end"] + timedelta(seconds=args.restore_skew)))
            flaps = sorted((s for s in self.signals if s["tag"] == "flap"), key=lambda s: s["at"])
            for s in flaps:
                if not s["restored"]:
                    out.setdefault(s["key"], []).append([s["at"], None])
                elif out.get(s["key"]) and out[s["key"]][-1][1] is None:
                    out[s["key"]][-1][1] = s["at"]
            horizon = max(s["at"] for s in self.signals)
            every = timedelta(seconds=args.report_interval)
            for m in sorted(self.true_dp):
                if m in self.onu_of:
                    continue
                t = BASE + every * reports.random()
                while t <= horizon:
                    if reports.random() < args.report_rate and not any(
                            a <= t <= (b or a) for a, b in out.get(m, [])):
                        arrival = t + timedelta(seconds=reports.uniform(0, args.delay))
                        self.signals.append({"kind": "kaifa", "key": m, "at": t, "arrival": arrival, "fault": None,
                                             "tag": "report", "id": f"NS{seed}-r{next(ids)}", "report": True,
                                             "restored": False})
                    t += every

        self.signals.sort(key=lambda s: (s["arrival"], s["id"]))
        for fault in self.faults:
            mine = [s for s in self.signals if s["fault"] == fault["n"]]
            offs = [s for s in mine if s["tag"] in ("gasp", "trip", "call")]
            auto = [s for s in offs if s["tag"] != "call"] or offs
            fault["first_signal"] = min((s["at"] for s in offs), default=None)
            fault["last_auto_arrival"] = max((s["arrival"] for s in auto), default=None)
            fault["heard"] = len({m for s in mine if s["tag"] == "gasp"
                                  for m in (self.meters_of_onu[s["key"]] if s["kind"] == "onu" else [s["key"]])})

    def payload(self, s):
        at, kind, key = stamp(s["at"]), s["kind"], s["key"]
        if kind == "onu":
            return {"eventId": s["id"], "type": "ONU_PowerRestored" if s["restored"] else "ONU_LastGaspAlert",
                    "onuId": key, "timestamp": at, "associatedMeters": []}
        if kind == "kaifa":
            body = {"event_id": s["id"], "created_date_time": at, "assets": {"ns2:mRID": key}}
            if s.get("report"):
                # IEC 61968-9 communication domain: the meter spoke, power unchanged.
                body.update(event_type={"@ref": "3.23.0.79"}, severity="low", reason="Meter read")
            elif s["restored"]:
                body.update(event_type={"@ref": "3.26.0.216"}, severity="low", reason="Power restored")
            else:
                body.update(severity="critical", reason="Last gasp signal detected")
            # The top-level timestamp is when the consumer handled it (its arrival); the meter's own
            # time is created_date_time, which dates the event (SPEC §4.3).
            return {"message_type": "EndDeviceEvent", "timestamp": stamp(s["arrival"]), "payload": body}
        if kind == "call":
            return {"ticketId": s["id"], "timestamp": at,
                    "customer": {"phone": "+962-7-0000-0000", "meterNumber": key}}
        if s["restored"]:
            return {"eventType": "MV_AlarmRestoration", "alarmType": "Energized", "substationId": SUBSTATION,
                    "feederId": key, "timestamp": at, "severity": "High", "reason": "Breaker closed"}
        return {"eventType": "breaker_trip", "alarmType": "fault", "substationId": SUBSTATION, "feederId": key,
                "timestamp": at, "severity": "critical", "reason": "Overcurrent detected"}


def build(admin_dsn, dsn, storm):
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
        cur.execute(f"ALTER DATABASE {DB} SET synchronous_commit = off")
        if storm.declaration_delay is not None:
            cur.execute(f"ALTER DATABASE {DB} SET oms_correlation.declaration_delay = {int(storm.declaration_delay)}")
        if storm.call_verify_window is not None:
            cur.execute(f"ALTER DATABASE {DB} SET oms_correlation.call_verify_window = {int(storm.call_verify_window)}")
        if storm.rollup_dp_min_share is not None:
            cur.execute(f"ALTER DATABASE {DB} SET oms_correlation.rollup_dp_min_share = {float(storm.rollup_dp_min_share)}")
    conn.close()
    conn = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    conn.autocommit = True
    meters = sorted(storm.true_dp)
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION oms_correlation")
        cur.execute("INSERT INTO network_substations (substation_id, name) VALUES (%s, 'Noisy storm')", (SUBSTATION,))
        cur.execute("""INSERT INTO network_feeders (feeder_id, substation_id, name)
                       SELECT 'NF' || lpad(f::text, 2, '0'), s.id, 'Feeder ' || f
                       FROM generate_series(1, %s) AS f, network_substations s""", (FEEDERS,))
        cur.execute("""INSERT INTO network_distribution_points (dp_id, feeder_id, name)
                       SELECT f.feeder_id || '-D' || d, f.id, 'DP ' || d
                       FROM network_feeders f, generate_series(1, %s) AS d""", (DPS,))
        cur.execute("INSERT INTO onus (id, name) SELECT n, 'Building ' || n FROM generate_series(1, %s) AS n",
                    (len(storm.meters_of_onu),))
        cur.execute("INSERT INTO oms_customers (customer_id, customer_name) "
                    "SELECT 'C-' || m, 'Noisy customer' FROM unnest(%s::text[]) AS m", (meters,))
        cur.execute("""INSERT INTO oms_meters (meter_number, asset_mrid, customer_id, substation_id, feeder_id, dp_id,
                                               onu_id, power_status, communication_status, last_communication)
                       SELECT u.m, u.m, c.id, f.substation_id, f.id, p.id, u.onu, 'on', 'online', %s
                       FROM unnest(%s::text[], %s::text[], %s::int[]) AS u(m, dp, onu)
                       JOIN network_distribution_points p ON p.dp_id = u.dp
                       JOIN network_feeders f ON f.id = p.feeder_id
                       JOIN oms_customers c ON c.customer_id = 'C-' || u.m""",
                    (BASE - timedelta(minutes=1), meters, [storm.registered_dp[m] for m in meters],
                     [storm.onu_of.get(m) for m in meters]))
        if storm.monitored:
            cur.execute("UPDATE network_feeders SET scada_monitored = true WHERE feeder_id = ANY (%s)",
                        (storm.monitored,))
        cur.execute("ANALYZE")
    conn.close()


def deliver(dsn, storm):
    """Sends every signal in arrival order from one session in 'immediate' mode, and notes, for each
    outage row, the simulated arrival time of the signal after which it first showed (not merged)."""
    conn = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    conn.autocommit = True
    visible, errors, nulls = {}, [], 0
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute("SET oms_correlation.correlate = 'immediate'")
        for s in storm.signals:
            try:
                cur.execute(f"SELECT {FUNCTIONS[s['kind']]}(%s::jsonb)", (json.dumps(storm.payload(s)),))
                if cur.fetchone()[0] is None:
                    nulls += 1
            except psycopg2.Error as e:
                errors.append(e.pgerror)
                continue
            cur.execute("SELECT id::text FROM oms_outage_events WHERE status <> 'merged'")
            for (oid,) in cur.fetchall():
                visible.setdefault(oid, s["arrival"])
        elapsed = time.monotonic() - started
        # The session correlated every call; drain anything left (nothing, normally) until empty.
        drained = 0
        while True:
            cur.execute("SELECT * FROM oms_correlate_pending()")
            batches, signals, set_aside, changed = cur.fetchone()
            drained += signals
            if not signals:
                break
        last = storm.signals[-1]["arrival"]
        cur.execute("SELECT id::text FROM oms_outage_events WHERE status <> 'merged'")
        for (oid,) in cur.fetchall():
            visible.setdefault(oid, last)
    conn.close()
    return {"visible": visible, "errors": errors, "nulls": nulls, "elapsed": elapsed, "drained": drained}


ROWS = """
SELECT o.id::text, o.scope, o.device_key, p.dp_id, f.feeder_id, o.first_detected_at, o.actual_restoration_time,
       o.status, ARRAY(SELECT m.meter_number::text FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                       WHERE om.outage_id = o.id ORDER BY 1)
FROM oms_outage_events o
LEFT JOIN network_distribution_points p ON p.id = o.dp_id
LEFT JOIN network_feeders f ON f.id = o.feeder_id
WHERE o.status NOT IN ('merged', 'cancelled')
"""


def score(dsn, storm, delivery):
    conn = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    with conn.cursor() as cur:
        cur.execute(ROWS)
        rows = [dict(zip(("id", "scope", "device_key", "dp", "feeder", "start", "end", "status", "meters"), r))
                for r in cur.fetchall()]
        cur.execute("SELECT count(*) FILTER (WHERE status = 'merged'), count(*) FROM oms_outage_events")
        merged, opened = cur.fetchone()
        cur.execute("SELECT count(*) FILTER (WHERE active) FROM oms_storm_mode_log")
        storm_on = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM oms_rejected_events")
        rejected = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM oms_correlation_set_aside")
        set_aside = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM oms_flapping_meters")
        flagged_flapping = cur.fetchone()[0]
    conn.close()

    margin = timedelta(minutes=10)
    open_end = datetime.max.replace(tzinfo=timezone.utc)

    def device(row):
        return {"distribution_point": row["dp"], "feeder": row["feeder"]}.get(row["scope"])

    def overlaps(row, fault):
        return row["start"] <= fault["end"] + margin and (row["end"] or open_end) >= fault["start"] - margin

    flappers = set(storm.flappers)
    for row in rows:
        row["fault"] = next((f for f in storm.faults if f["scope"] == row["scope"] and f["device"] == device(row)
                             and overlaps(row, f)), None)
        row["sustained"] = row["end"] is None or row["end"] - row["start"] > SUSTAINED
        row["in_fault_area"] = any(m in f["meters"] and overlaps(row, f) for f in storm.faults for m in row["meters"])
        row["flapper"] = any(m in flappers for m in row["meters"])

    faults = []
    for fault in storm.faults:
        mine = sorted((r for r in rows if r["fault"] is fault), key=lambda r: delivery["visible"][r["id"]])
        result = {"fault": fault, "rows": len(mine)}
        if mine:
            r = mine[0]
            seen = delivery["visible"][r["id"]]
            result.update(row=r, visible=seen,
                          in_time=fault["last_auto_arrival"] is not None
                          and seen <= fault["last_auto_arrival"] + timedelta(seconds=60),
                          delay=(seen - fault["first_signal"]).total_seconds() if fault["first_signal"] else None,
                          start_offset=(r["start"] - fault["start"]).total_seconds())
        faults.append(result)

    false_rows = [r for r in rows if r["fault"] is None]
    return {"rows": rows, "faults": faults, "merged": merged, "opened": opened, "storm_on": storm_on,
            "rejected": rejected, "set_aside": set_aside, "flagged_flapping": flagged_flapping,
            "sustained": [r for r in rows if r["sustained"]],
            "false_sustained": [r for r in false_rows if r["sustained"]],
            "false_momentary": [r for r in false_rows if not r["sustained"]]}


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def seconds(values):
    if not values:
        return "none"
    return f"median {statistics.median(values):.1f} s, p95 {quantile(values, 0.95):.1f} s ({len(values)})"


def pct(n, d):
    return f"{n}/{d} ({100.0 * n / d:.0f} %)" if d else f"{n}/0"


def by_scope(rows):
    counts = {}
    for r in rows:
        counts[r["scope"]] = counts.get(r["scope"], 0) + 1
    return ", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none"


def figures(results):
    faults = [f for r in results for f in r["faults"]]
    matched = [f for f in faults if f.get("in_time")]
    right = [f for f in faults if "row" in f]
    sustained = sum(len(r["sustained"]) for r in results)
    false_sustained = [row for r in results for row in r["false_sustained"]]
    false_momentary = [row for r in results for row in r["false_momentary"]]
    return {
        "matched": pct(len(matched), len(faults)),
        "right": pct(len(right), len(faults)),
        "false_sustained": pct(len(false_sustained), sustained),
        "false_sustained_area": sum(1 for row in false_sustained if row["in_fault_area"]),
        "false_sustained_scopes": by_scope(false_sustained),
        "false_momentary": len(false_momentary),
        "false_momentary_flapper": sum(1 for row in false_momentary if row["flapper"]),
        "false_momentary_area": sum(1 for row in false_momentary if row["in_fault_area"]),
        "false_momentary_scopes": by_scope(false_momentary),
        "delay": seconds([f["delay"] for f in right if f["delay"] is not None]),
        "start_offset": seconds([f["start_offset"] for f in right]),
    }


def report(args, storms, results, deliveries):
    flags = (f"--wrong-dp {args.wrong_dp} --call-rate {args.call_rate} --gasp-rate {args.gasp_rate} "
             f"--max-repeats {args.max_repeats} --restore-skew {args.restore_skew} --restore-rate {args.restore_rate} "
             f"--delay {args.delay} --flappers {args.flappers} --flap-pairs {args.flap_pairs} "
             f"--stray-calls {args.stray_calls} --monitored {args.monitored} --report-interval {args.report_interval} "
             f"--report-rate {args.report_rate} --seeds {args.seeds}"
             + (f" --declaration-delay {args.declaration_delay}" if args.declaration_delay is not None else "")
             + (f" --call-verify-window {args.call_verify_window}" if args.call_verify_window is not None else "")
             + (f" --rollup-dp-min-share {args.rollup_dp_min_share}" if args.rollup_dp_min_share is not None else ""))
    out = ["### Noisy storm (bench/noisy_storm.py)", "",
           f"Flags: `{flags}`", "",
           f"Grid: {FEEDERS} feeders x {DPS} DPs x {METERS} meters ({FEEDERS * DPS * METERS:,} meters, one customer "
           f"each; DPs {', '.join(f'D{d}' for d in ONU_DPS)} behind ONUs of {ONU_SIZE}). Per seed: {DP_FAULTS} DP faults "
           f"({MOMENTARY} momentary), {FEEDER_FAULTS} feeder faults with SCADA trip and restoration. One client, "
           "`oms_correlation.correlate = 'immediate'`, sent in arrival order.", "",
           "| seed | signals | errors / NULL | wrong-DP meters | faults at right device, seen <= 60 s after last signal "
           "| right device at all | sustained false / sustained rows | of which in a fault's area | momentary rows, no fault "
           "| of which at flappers | delay to visible | first_detected_at - fault start | storm mode on | merged / opened |",
           "|---:|---:|---|---:|---|---|---|---:|---:|---:|---|---|---:|---|"]
    for storm, result, delivery in zip(storms, results, deliveries):
        f = figures([result])
        out.append(f"| {storm.seed} | {len(storm.signals):,} | {len(delivery['errors'])} / {delivery['nulls']} | "
                   f"{storm.wrong} | {f['matched']} | {f['right']} | {f['false_sustained']} | "
                   f"{f['false_sustained_area']} | {f['false_momentary']} | {f['false_momentary_flapper']} | "
                   f"{f['delay']} | {f['start_offset']} | {result['storm_on']} | {result['merged']} / {result['opened']} |")
    f = figures(results)
    out.append(f"| **all** | {sum(len(s.signals) for s in storms):,} | "
               f"{sum(len(d['errors']) for d in deliveries)} / {sum(d['nulls'] for d in deliveries)} | "
               f"{sum(s.wrong for s in storms)} | **{f['matched']}** | {f['right']} | **{f['false_sustained']}** | "
               f"{f['false_sustained_area']} | **{f['false_momentary']}** | {f['false_momentary_flapper']} | "
               f"**{f['delay']}** | {f['start_offset']} | | |")
    out += ["", f"Sustained false rows by scope, all seeds: {f['false_sustained_scopes']}. "
                f"Momentary no-fault rows by scope: {f['false_momentary_scopes']}; "
                f"{f['false_momentary_area']} of them in a fault's area.", "",
            "Per fault (scope, device, kind, meters heard by a gasp / meters, final rows at its device, "
            "seen after its last automatic signal):", ""]
    for storm, result in zip(storms, results):
        parts = []
        for fr in result["faults"]:
            fault = fr["fault"]
            kind = "momentary" if fault["momentary"] else ("trip " + fault["trip_case"] if fault["scope"] == "feeder" else "sustained")
            if "row" in fr:
                late = (fr["visible"] - fault["last_auto_arrival"]).total_seconds()
                seen = f"{late:+.0f} s" + ("" if fr["in_time"] else " LATE")
            else:
                seen = "MISSED"
            parts.append(f"{fault['device']} ({kind}, {fault['heard']}/{len(fault['meters'])}): {fr['rows']} row(s), {seen}")
        out.append(f"- seed {storm.seed}: " + "; ".join(parts))
    out.append("")
    extra = [f"seed {s.seed}: {r['rejected']} rejected payloads, {r['set_aside']} set-aside signals, "
             f"{d['drained']} signals left for the final drain, {r['flagged_flapping']} meters listed flapping, "
             f"{d['elapsed']:.0f} s to deliver" for s, r, d in zip(storms, results, deliveries)]
    out.append("Health: " + "; ".join(extra) + ".")
    for d in deliveries:
        if d["errors"]:
            out.append(f"\nFirst error: {d['errors'][0]}")
            break
    out += ["", "Definitions: *visible* is the simulated arrival time of the signal after whose ingest call "
                "(immediate mode) the row first showed not merged; *delay to visible* runs from the event time of "
                "the fault's first signal, so it includes the transport delay (--delay). *Last signal* is the "
                "fault's last AMI last gasp or SCADA trip to arrive (calls left out). *Sustained* rows lasted over 5 "
                "min or are still open; *false* means no fault at that device (a service outage inside a DP fault is "
                "false: *in a fault's area*); delays are over faults with a right-device row at all."]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=25436)
    p.add_argument("--user", default="postgres")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--wrong-dp", type=float, default=0.15)
    p.add_argument("--call-rate", type=float, default=0.10)
    p.add_argument("--gasp-rate", type=float, default=0.70)
    p.add_argument("--max-repeats", type=int, default=3)
    p.add_argument("--restore-skew", type=float, default=15)
    p.add_argument("--restore-rate", type=float, default=1.0)
    p.add_argument("--delay", type=float, default=60)
    p.add_argument("--flappers", type=int, default=5)
    p.add_argument("--flap-pairs", type=int, default=10)
    p.add_argument("--stray-calls", type=int, default=5)
    p.add_argument("--declaration-delay", type=int, default=None,
                   help="oms_correlation.declaration_delay in seconds for the storm's database (default: the extension's)")
    p.add_argument("--report-interval", type=float, default=900,
                   help="seconds between a powered Kaifa meter's communication events (0: none)")
    p.add_argument("--report-rate", type=float, default=1.0, help="share of those reports heard")
    p.add_argument("--call-verify-window", type=int, default=None,
                   help="oms_correlation.call_verify_window in seconds for the storm's database (default: the extension's)")
    p.add_argument("--rollup-dp-min-share", type=float, default=None,
                   help="oms_correlation.rollup_dp_min_share for the storm's database (default: the extension's)")
    p.add_argument("--monitored", type=float, default=1.0,
                   help="share of feeders whose breakers report to SCADA (network_feeders.scada_monitored); "
                        "0 for a grid without (the baseline before issue 22)")
    p.add_argument("--clients", type=int, default=1, help="only 1 for now")
    args = p.parse_args()
    if args.clients != 1:
        sys.exit("--clients: only one client is implemented")
    admin = f"host={args.host} port={args.port} user={args.user} dbname=postgres"
    dsn = f"host={args.host} port={args.port} user={args.user} dbname={DB}"
    storms, results, deliveries = [], [], []
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        storm = Storm(seed, args)
        build(admin, dsn, storm)
        delivery = deliver(dsn, storm)
        print(f"seed {seed}: {len(storm.signals)} signals in {delivery['elapsed']:.0f} s", file=sys.stderr)
        storms.append(storm)
        deliveries.append(delivery)
        results.append(score(dsn, storm, delivery))
    print(report(args, storms, results, deliveries))


if __name__ == "__main__":
    main()
