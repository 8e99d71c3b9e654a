"""A storm that takes down one big feeder: its SCADA trip, then every building's last gasp joining
the feeder's outage, then every building's restoration (issue 11: "when a storm takes down a
feeder, the operators must see it within a second").

The feeder outage grows by one building per last gasp, up to every meter of the feeder, so each
signal meets a bigger outage than the one before. The report shows whether a signal's cost grows
with the outage: events per second and median / 99th-percentile latency of the first and the last
tenth of each phase. Run after bench/run.sh (it uses the grid of oms_bench, and leaves the feeder
on and its outage restored):

    python3 bench/feeder_storm.py [--port 25433] [--feeder F10K] [--clients 4]
"""

import argparse
import json
import queue
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg2

ONU = "insert_onu_event_from_json_with_meter_sync"
SCADA = "insert_scada_event_with_meter_check"


def replay(dsn, payloads, clients):
    """Sends the payloads in order from `clients` connections; returns (seconds, latencies in ms
    in sending order, failures)."""
    work = queue.Queue()
    for index, payload in enumerate(payloads):
        work.put((index, payload))
    latencies = [None] * len(payloads)
    failures = []

    def client():
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            while True:
                try:
                    index, payload = work.get_nowait()
                except queue.Empty:
                    break
                started = time.monotonic()
                try:
                    cur.execute(f"SELECT {ONU}(%s::jsonb)", (json.dumps(payload),))
                except psycopg2.Error as error:
                    failures.append(str(error).splitlines()[0])
                latencies[index] = (time.monotonic() - started) * 1000
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, latencies, failures


def tenth(latencies, last):
    part = latencies[-(len(latencies) // 10):] if last else latencies[:len(latencies) // 10]
    ordered = sorted(part)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def run(dsn, feeder="F10K", clients=4):
    """The storm on `feeder` of the bench grid; returns what `report` prints."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    at = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    with conn.cursor() as cur:
        cur.execute("ANALYZE")
        cur.execute("SELECT bench_set_feeder_state(%s, 'fresh', %s)", (feeder, at - timedelta(minutes=1)))
        cur.execute("""SELECT DISTINCT m.onu_id FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
                       WHERE f.feeder_id = %s AND m.onu_id IS NOT NULL ORDER BY 1""", (feeder,))
        onus = [row[0] for row in cur.fetchall()]
        # The trip finds every meter fresh and on: the outage opens with no meter, and the buildings'
        # last gasps bring them in one by one.
        cur.execute(f"SELECT {SCADA}(%s::jsonb)", (json.dumps({
            "eventType": "breaker_trip", "substationId": "BSS1", "feederId": feeder, "alarmType": "fault",
            "timestamp": at.isoformat(), "severity": "critical", "reason": "feeder storm bench"}),))
    tag = int(time.time())
    phases = []
    for name, kind, offset in [("last gasps", "ONU_LastGaspAlert", timedelta(seconds=5)),
                               ("restorations", "ONU_PowerRestored", timedelta(hours=1))]:
        payloads = [{"eventId": f"FS{tag}-{kind}-{onu}", "type": kind, "onuId": onu, "onuSerial": "",
                     "timestamp": (at + offset + timedelta(milliseconds=10 * n)).isoformat(),
                     "alarmData": {"category": "power", "alarmType": "last_gasp"}, "nmsType": "FiberTech"}
                    for n, onu in enumerate(onus)]
        seconds, latencies, failures = replay(dsn, payloads, clients)
        phases.append((name, len(payloads), seconds, latencies, failures))
    with conn.cursor() as cur:
        cur.execute("""SELECT o.status, o.affected_customers_count, o.customers_out,
                              (SELECT count(*) FROM oms_outage_meters om WHERE om.outage_id = o.id)
                       FROM oms_outage_events o JOIN network_feeders f ON f.id = o.feeder_id
                       WHERE f.feeder_id = %s AND o.scope = 'feeder' AND o.first_detected_at = %s""",
                    (feeder, at))
        outage = cur.fetchall()
        cur.execute("SELECT bench_set_feeder_state(%s, 'fresh', %s)", (feeder, at + timedelta(hours=2)))
    conn.close()
    return {"feeder": feeder, "buildings": len(onus), "clients": clients, "phases": phases, "outage": outage}


def report(result):
    out = [f"### One big feeder's storm (bench/feeder_storm.py)\n",
           f"Feeder {result['feeder']}: its trip with every meter on, then each of its {result['buildings']} "
           f"buildings' last gasp and restoration, from {result['clients']} clients.\n",
           "| phase | events | events/s | first tenth: median / p99 ms | last tenth: median / p99 ms | failed |",
           "|---|---:|---:|---:|---:|---:|"]
    for name, events, seconds, latencies, failures in result["phases"]:
        first, last = tenth(latencies, False), tenth(latencies, True)
        out.append(f"| {name} | {events} | {events / seconds:.0f} | {first[0]:.2f} / {first[1]:.2f} "
                   f"| {last[0]:.2f} / {last[1]:.2f} | {len(failures)} |")
        out.extend(f"  failure: {failure}" for failure in sorted(set(failures))[:3])
    out.append(f"\nThe feeder outage (status, customers affected, still out, memberships): {result['outage']}")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=25433)
    parser.add_argument("--feeder", default="F10K")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    print(report(run(f"host=127.0.0.1 port={args.port} user=postgres dbname=oms_bench", args.feeder, args.clients)))


if __name__ == "__main__":
    main()
