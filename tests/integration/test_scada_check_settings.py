"""The SCADA check's bulk statements run with settings of their own (src/db/scada_check.rs,
`bulk_statement`): JIT off, more work_mem, cached-registry costing, and, when provably redundant,
no per-row foreign-key triggers (session_replication_role = replica). These tests hold it to its
promises: the caller's settings come back whatever happens, a DBA's trigger is never skipped, and
the foreign keys stay true."""

import json

import psycopg2
import pytest

from conftest import call, example, query, scalar

TRIP = example("scada_breaker_trip.json")
RESTORE = example("scada_restoration.json")
SETTINGS = "SELECT current_setting('session_replication_role'), current_setting('jit'), " \
           "current_setting('work_mem'), current_setting('random_page_cost')"


def calls_leave_settings_alone(pool, payloads):
    """Makes the calls on one connection, checking the caller's settings after each; the results."""
    conn = pool.getconn()
    results = []
    try:
        with conn.cursor() as cur:
            cur.execute(SETTINGS)
            before = cur.fetchone()
            for payload in payloads:
                cur.execute("SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(payload),))
                results.append(cur.fetchone()[0])
                cur.execute(SETTINGS)
                assert cur.fetchone() == before
        conn.commit()
    finally:
        pool.putconn(conn)
    return results


def test_the_callers_settings_are_untouched_after_a_check_and_a_restoration(pool):
    trip, restoration = calls_leave_settings_alone(pool, [TRIP, RESTORE])
    assert trip["offline_meters"] == 45 and restoration["classification"] == "restoration"


def test_settings_come_back_when_the_check_fails_midway(pool):
    # A DBA's constraint rejects the affected-meter rows: the event is quarantined whole.
    query(pool, "ALTER TABLE public.scada_event_affected_meters ADD CONSTRAINT no_marks "
                "CHECK (meter_status_after <> 'off') NOT VALID")
    assert calls_leave_settings_alone(pool, [TRIP]) == [None]
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events") == 0
    assert scalar(pool, "SELECT count(*) FROM oms_rejected_events WHERE sqlstate = '23514'") == 1


def add_dba_trigger_copying_the_audit_trail(pool):
    """A DBA's own row trigger on oms_meter_status_events, copying each row to dba_audit_copy."""
    query(pool, """
        CREATE TABLE public.dba_audit_copy (meter_id uuid, source_type text);
        CREATE FUNCTION public.dba_copy_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.dba_audit_copy VALUES (NEW.meter_id, NEW.source_type); RETURN NEW; END $$;
        CREATE TRIGGER dba_copy AFTER INSERT ON public.oms_meter_status_events
            FOR EACH ROW EXECUTE FUNCTION public.dba_copy_audit();
    """)


def test_a_dba_trigger_on_the_audit_trail_still_fires(pool):
    add_dba_trigger_copying_the_audit_trail(pool)
    assert call(pool, "insert_scada_event_with_meter_check", TRIP)["offline_meters"] == 45
    assert scalar(pool, "SELECT count(*) FROM public.dba_audit_copy WHERE source_type = 'scada'") == 45


def test_foreign_keys_hold_after_checks_and_restorations(pool):
    call(pool, "insert_scada_event_with_meter_check", TRIP)
    call(pool, "insert_scada_event_with_meter_check", RESTORE)
    orphans = query(pool, """
        SELECT (SELECT count(*) FROM oms_meter_status_events e WHERE NOT EXISTS (SELECT FROM oms_meters m WHERE m.id = e.meter_id)),
               (SELECT count(*) FROM scada_event_affected_meters a WHERE NOT EXISTS (SELECT FROM oms_meters m WHERE m.id = a.meter_id)
                                                                      OR NOT EXISTS (SELECT FROM scada_events s WHERE s.id = a.scada_event_id)),
               (SELECT count(*) FROM oms_event_sources s WHERE NOT EXISTS (SELECT FROM oms_outage_events o WHERE o.id = s.outage_event_id)),
               (SELECT count(*) FROM scada_event_affected_meters)""")
    assert orphans == [(0, 0, 0, 90)]
    # A DBA deleting a meter the check marked takes its audit trail with it and keeps the alarm's
    # record of it, as the legacy schema did (ON DELETE CASCADE; no key on the affected meter).
    meter = scalar(pool, "SELECT meter_id FROM scada_event_affected_meters LIMIT 1")
    query(pool, "DELETE FROM oms_meters WHERE id = %s", (meter,))
    assert query(pool, "SELECT (SELECT count(*) FROM oms_meter_status_events WHERE meter_id = %s), "
                       "(SELECT count(*) FROM scada_event_affected_meters WHERE meter_id = %s)", (meter, meter)) == [(0, 2)]


def stale_feeder(pool, name, meters):
    """Substation SS-`name` with feeder `name` of `meters` meters, unheard from since 09:00 of 2025-10-01."""
    query(pool, """
        INSERT INTO network_substations (substation_id, name) VALUES ('SS-' || %(name)s, 'Test');
        INSERT INTO network_feeders (feeder_id, substation_id, name)
        SELECT %(name)s, id, 'Test feeder' FROM network_substations WHERE substation_id = 'SS-' || %(name)s;
        INSERT INTO oms_meters (meter_number, substation_id, feeder_id, power_status, communication_status,
                                last_communication)
        SELECT %(name)s || '-' || n, f.substation_id, f.id, 'on', 'online', timestamptz '2025-10-01 09:00+00'
        FROM network_feeders f, generate_series(1, %(meters)s) AS n WHERE f.feeder_id = %(name)s;
    """, {"name": name, "meters": meters})
    return {"eventType": "breaker_trip", "substationId": f"SS-{name}", "feederId": name,
            "timestamp": "2025-10-02T10:00:00Z"}


def test_a_dba_trigger_still_fires_on_a_device_big_enough_for_replica_mode(pool):
    trip = stale_feeder(pool, "F-BIG", 600)
    add_dba_trigger_copying_the_audit_trail(pool)
    assert call(pool, "insert_scada_event_with_meter_check", trip)["offline_meters"] == 600
    assert scalar(pool, "SELECT count(*) FROM public.dba_audit_copy WHERE source_type = 'scada'") == 600


def test_a_check_of_a_device_big_enough_for_replica_mode_keeps_settings_and_foreign_keys(pool):
    # Replica mode is taken only for a device of 500 meters or more (REPLICA_MODE_MIN_METERS): a
    # feeder of 600 meters tripped and restored on one connection.
    trip = stale_feeder(pool, "F-BIG", 600)
    restore = dict(trip, eventType="MV_AlarmRestoration", timestamp="2025-10-02T11:00:00Z")
    tripped, restored = calls_leave_settings_alone(pool, [trip, restore])
    assert (tripped["total_meters"], tripped["offline_meters"]) == (600, 600)
    assert restored["classification"] == "restoration"
    assert query(pool, """
        SELECT (SELECT count(*) FROM oms_meter_status_events e WHERE NOT EXISTS (SELECT FROM oms_meters m WHERE m.id = e.meter_id)),
               (SELECT count(*) FROM scada_event_affected_meters a WHERE NOT EXISTS (SELECT FROM scada_events s WHERE s.id = a.scada_event_id)),
               (SELECT count(*) FROM oms_meter_status_events e JOIN oms_meters m ON m.id = e.meter_id
                WHERE m.meter_number LIKE 'F-BIG-%')""") == [(0, 0, 1200)]
