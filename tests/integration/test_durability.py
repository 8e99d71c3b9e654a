"""SPEC §9 and §6: pg_dump/pg_restore keeps every row; a crash loses no acknowledged event and
leaves no half-written one."""

import json
import os
import subprocess
import tempfile
import threading
import time
import uuid

import psycopg2
import pytest

from conftest import (BASE, CORRELATING, EXAMPLES, PORT, REPO, admin, call, correlating_function, dsn, example,
                      install_with_grid, query, scalar)
from conftest import run as run_sql

BIN = "/usr/lib/postgresql/15/bin"

EXTENSION_TABLES = """
SELECT c.relname::text FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'oms_correlation'
JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
WHERE c.relkind = 'r'
  -- They tell the correlator's caches of changes: no data, and restoring rows moves them.
  AND c.relname NOT IN ('oms_registry_generation', 'oms_outage_writers')
ORDER BY 1
"""


def fingerprints(database):
    """Every row of every extension table, and every sequence position. A row is read as jsonb,
    whose keys are sorted: an adopted legacy table and a fresh install order their columns
    differently."""
    conn = psycopg2.connect(dsn(database), options="-c TimeZone=UTC")
    out = {}
    with conn.cursor() as cur:
        cur.execute(EXTENSION_TABLES)
        for (table,) in cur.fetchall():
            # public.: every row, not only those a test base's lens shows.
            cur.execute(f"""SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), ''))
                            FROM (SELECT to_jsonb(t)::text AS r FROM public.{table} t) AS rows""")
            out[table] = cur.fetchone()
        cur.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
        out["sequences"] = cur.fetchall()
    conn.close()
    return out


@pytest.fixture
def restored_db():
    name = "oms_it_restored_" + uuid.uuid4().hex[:8]
    yield name
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# On every base: a fresh install, an upgraded one with the previous release's history, and an
# adopted legacy database after the one step its backup needs (CALL oms_finish_adoption()).
def test_dump_and_restore_keep_every_row(db, pool, restored_db):
    if BASE == "legacy":
        run_sql(db, "CALL oms_finish_adoption()")
    counted = fingerprints(db)
    ids = {name: call(pool, correlating_function(name), example(name))
           for name in sorted(os.listdir(EXAMPLES)) if name.endswith(".json")}
    call(pool, CORRELATING["onu"], {"onuId": "broken"})  # a quarantined payload
    # A DBA's edits to the seeded tables must survive too.
    query(pool, "UPDATE oms_correlation_rules SET weight_onu = 0.65 WHERE 'onu' = ANY (source_types)")
    query(pool, "INSERT INTO scada_alarm_vocabulary (term, classification) VALUES ('underfrequency', 'outage')")
    last_onu_event = scalar(pool, "SELECT max(id) FROM public.onu_events")
    before = fingerprints(db)
    assert before["oms_rejected_events"][0] == counted["oms_rejected_events"][0] + 1
    # FD002's trip, and ONU 3230316's building (its last gasp, joined by the Kaifa messages and the call).
    assert before["oms_outage_events"][0] == counted["oms_outage_events"][0] + 2

    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "oms.dump")
        subprocess.run([f"{BIN}/pg_dump", "-Fc", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-f", dump, db],
                       check=True, capture_output=True, text=True)
        admin(f"CREATE DATABASE {restored_db}")
        run = subprocess.run([f"{BIN}/pg_restore", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres",
                              "-d", restored_db, "--exit-on-error", dump], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""

    after = fingerprints(restored_db)
    assert after == before

    # Ingest works after the restore: new events get new ids, redeliveries still find the originals.
    conn = psycopg2.connect(dsn(restored_db))
    with conn.cursor() as cur:
        cur.execute(f"SELECT {CORRELATING['onu']}(%s::jsonb)", (json.dumps(example("onu_last_gasp.json")),))
        assert cur.fetchone()[0] == ids["onu_last_gasp.json"]
        fresh = dict(example("onu_last_gasp.json"), eventId="AFTER_RESTORE", timestamp="2025-10-01T00:00:00Z")
        cur.execute(f"SELECT {CORRELATING['onu']}(%s::jsonb)", (json.dumps(fresh),))
        assert cur.fetchone()[0] > last_onu_event  # the restored sequence continues past the restored rows
        cur.execute(f"SELECT {CORRELATING['scada']}(%s::jsonb)", (json.dumps(example("scada_breaker_trip.json")),))
        assert cur.fetchone()[0]["duplicate"] is True
        cur.execute("SELECT oms_source_weight('onu')::text")
        assert cur.fetchone()[0] == "0.65"
    conn.commit()
    conn.close()


CRASH_PORT = int(os.environ.get("OMS_CRASH_PORT", "25432"))
CLUSTER = os.path.join(REPO, "scripts", "cluster.sh")


def crash_dsn():
    return f"host=127.0.0.1 port={CRASH_PORT} user=postgres dbname=oms_crash"


@pytest.fixture
def crash_cluster():
    subprocess.run([CLUSTER, "destroy", "crash"], check=True)
    started = subprocess.run([CLUSTER, "start", "crash", str(CRASH_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    conn = psycopg2.connect(f"host=127.0.0.1 port={CRASH_PORT} user=postgres dbname=postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE oms_crash")
    conn.close()
    # The base the suite runs on (fresh, adopted or upgraded): recovery is tested on each.
    install_with_grid(crash_dsn(), BASE)
    yield
    subprocess.run([CLUSTER, "destroy", "crash"], check=True)


def test_immediate_shutdown_mid_storm_loses_nothing_acknowledged(crash_cluster):
    acknowledged = {"onu": [], "kaifa": [], "ticket": []}
    lock = threading.Lock()
    stop = threading.Event()
    crashing = threading.Event()
    unexpected = []  # errors before the shutdown: a storm that fails by itself proves nothing

    def storm(worker):
        conn = psycopg2.connect(crash_dsn())
        n = 0
        try:
            while not stop.is_set():
                n += 1
                key = f"W{worker}-{n}"
                second = 4 * n + worker  # distinct times: the same ONU, type and time would be one event
                at = f"2025-10-01T{(second // 3600) % 24:02d}:{(second // 60) % 60:02d}:{second % 60:02d}Z"
                kaifa = example("kaifa_full.json")
                kaifa["header"]["message_id"] = "K-" + key
                kaifa["payload"]["created_date_time"] = at
                with conn.cursor() as cur:
                    cur.execute(f"SELECT {CORRELATING['onu']}(%s::jsonb)", (json.dumps(
                        {"eventId": key, "type": "ONU_LastGaspAlert" if n % 2 else "ONU_PowerRestored",
                         "onuId": 3230316, "timestamp": at, "associatedMeters": ["M12345678", "M23456789"]}),))
                    onu_id = cur.fetchone()[0]
                    cur.execute(f"SELECT {CORRELATING['kaifa']}(%s::jsonb)", (json.dumps(kaifa),))
                    kaifa_id = cur.fetchone()[0]
                    cur.execute(f"SELECT {CORRELATING['callcenter']}(%s::jsonb)", (json.dumps(
                        {"ticketId": "T-" + key, "timestamp": at, "customer": {"phone": "1", "meterNumber": "M12345678"}}),))
                    ticket_id = cur.fetchone()[0]
                conn.commit()  # acknowledged from here on
                with lock:
                    acknowledged["onu"].append(onu_id)
                    acknowledged["kaifa"].append(kaifa_id)
                    acknowledged["ticket"].append(ticket_id)
        except psycopg2.Error as e:
            if not crashing.is_set():
                with lock:
                    unexpected.append((worker, e.pgcode, str(e)))
        finally:
            try:
                conn.close()
            except psycopg2.Error:
                pass

    threads = [threading.Thread(target=storm, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    # Crash once the storm is well under way: a few hundred calls acknowledged.
    deadline = time.monotonic() + 60
    while True:
        with lock:
            if len(acknowledged["onu"]) >= 200:
                break
        assert time.monotonic() < deadline, "the storm never got going"
        time.sleep(0.01)
    crashing.set()
    subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN}/pg_ctl", "-D", "/tmp/oms_correlation/crash/data",
                    "-m", "immediate", "stop"], check=True, capture_output=True)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a session never noticed the crash"
    assert unexpected == []
    assert len(acknowledged["onu"]) > 20, "the storm barely started"

    started = subprocess.run([CLUSTER, "start", "crash", str(CRASH_PORT)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    conn = psycopg2.connect(crash_dsn())
    with conn.cursor() as cur:
        # Every acknowledged event is there.
        cur.execute("SELECT count(*) FROM onu_events WHERE id = ANY(%s)", (acknowledged["onu"],))
        assert cur.fetchone()[0] == len(acknowledged["onu"])
        cur.execute("SELECT count(*) FROM kaifa_events WHERE id = ANY(%s::uuid[])", (acknowledged["kaifa"],))
        assert cur.fetchone()[0] == len(acknowledged["kaifa"])
        cur.execute("SELECT count(*) FROM callcenter_tickets WHERE id = ANY(%s::uuid[])", (acknowledged["ticket"],))
        assert cur.fetchone()[0] == len(acknowledged["ticket"])
        # No event of the storm is half-written, acknowledged or not: each has all of its rows.
        cur.execute("""SELECT count(*) FROM onu_events e WHERE e.event_id LIKE 'W_-%'
                         AND (SELECT count(*) FROM oms_meter_status_events s WHERE s.source_event_id = e.event_id) <> 2""")
        assert cur.fetchone()[0] == 0
        cur.execute("""SELECT count(*) FROM kaifa_events k
                       WHERE k.delivery_key LIKE 'message_id:K-W%' AND (
                         (SELECT count(*) FROM kaifa_event_headers h WHERE h.event_id = k.id) <> 1
                      OR (SELECT count(*) FROM kaifa_event_payloads p WHERE p.event_id = k.id) <> 1
                      OR (SELECT count(*) FROM kaifa_event_details d WHERE d.event_id = k.id) <> 2
                      OR (SELECT count(*) FROM kaifa_event_original_messages o WHERE o.event_id = k.id) <> 1)""")
        assert cur.fetchone()[0] == 0
        cur.execute("""SELECT count(*) FROM callcenter_tickets t WHERE t.external_ticket_id LIKE 'T-W%' AND (
                         (SELECT count(*) FROM callcenter_customers c WHERE c.ticket_id = t.id) <> 1
                      OR (SELECT count(*) FROM callcenter_raw_messages r WHERE r.ticket_id = t.id) <> 1
                      OR (SELECT count(*) FROM oms_meter_status_events s WHERE s.source_event_id = t.external_ticket_id) <> 1)""")
        assert cur.fetchone()[0] == 0
        # And ingest goes on after recovery.
        cur.execute(f"SELECT {CORRELATING['onu']}(%s::jsonb)", (json.dumps(example("onu_last_gasp.json")),))
        assert cur.fetchone()[0] is not None
    conn.commit()
    conn.close()
