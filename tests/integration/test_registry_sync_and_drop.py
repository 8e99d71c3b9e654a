"""Issue 6: oms_sync_meter_registry(), and what DROP EXTENSION does to data."""

import json

import psycopg2
import pytest

from conftest import example, query, run, scalar


def test_sync_builds_and_links_the_registry_from_legacy_sources(pool):
    # Rows the legacy sources hold for meters the registry does not know yet.
    query(pool, """
        INSERT INTO onus (id) VALUES (700);
        INSERT INTO meters (meter_id, onu_id, meter_type) VALUES ('L-ONU-1', 700, 'smart'), ('L-ONU-2', 700, NULL);
        UPDATE oms_meters SET onu_id = NULL WHERE meter_number = 'M23456789';
        INSERT INTO meters (meter_id, onu_id) VALUES ('M23456789', 3230316) ON CONFLICT (meter_id) DO NOTHING;
    """)
    kaifa = example("kaifa_full.json")
    kaifa["header"]["message_id"] = "sync-1"
    kaifa["payload"]["assets"] = {"ns2:mRID": "L-KF-1"}
    kaifa["payload"]["usage_point"] = {"ns2:mRID": "L-UP-1"}
    query(pool, "SELECT insert_kaifa_event_from_json(%s::jsonb)", (json.dumps(kaifa),))
    ticket = {"ticketId": "SYNC-T1", "timestamp": "2025-09-30T10:00:00Z", "customer": {"meterNumber": "L-CC-1"}}
    query(pool, "SELECT insert_callcenter_ticket_from_json(%s::jsonb)", (json.dumps(ticket),))
    before = scalar(pool, "SELECT count(*) FROM oms_meters")

    first = query(pool, "SELECT * FROM oms_sync_meter_registry()")[0]
    # Created: 2 ONU meters, 1 Kaifa asset, 1 call-center meter. Refreshed: the ONU of M23456789 and
    # the usage point of the new Kaifa meter. Linked: the 2 new ONU meter rows, the asset, the usage
    # point and the ticket.
    assert first == (4, 2, 2, 1, 1, 1)
    assert scalar(pool, "SELECT count(*) FROM oms_meters") == before + 4
    assert query(pool, "SELECT meter_number, onu_id FROM oms_meters WHERE meter_number LIKE 'L-ONU-%' ORDER BY 1") == [
        ("L-ONU-1", 700), ("L-ONU-2", 700)]
    assert query(pool, "SELECT asset_mrid, usage_point_mrid FROM oms_meters WHERE meter_number = 'L-KF-1'") == [
        ("L-KF-1", "L-UP-1")]
    assert query(pool, """SELECT count(*) FROM meters m JOIN oms_meters o ON o.id = m.oms_meter_id
                          WHERE o.meter_number = m.meter_id""")[0][0] == scalar(pool, "SELECT count(*) FROM meters")
    assert scalar(pool, "SELECT onu_id FROM oms_meters WHERE meter_number = 'M23456789'") == 3230316
    # The links make the new meters reachable by the next events.
    assert scalar(pool, """SELECT count(*) FROM callcenter_customers c JOIN oms_meters o ON o.id = c.meter_id
                           WHERE o.meter_number = 'L-CC-1'""") == 1

    # Idempotent.
    assert query(pool, "SELECT * FROM oms_sync_meter_registry()")[0] == (0, 0, 0, 0, 0, 0)


def test_sync_is_set_based_on_many_meters(pool):
    query(pool, """INSERT INTO onus (id) SELECT 800000 + n / 4 FROM generate_series(0, 199999, 4) n;
                   INSERT INTO meters (meter_id, onu_id) SELECT 'BULK-' || n, 800000 + n / 4 FROM generate_series(0, 199999) n""")
    created, refreshed, linked = query(pool, "SELECT meters_created, meters_refreshed, onu_meters_linked FROM oms_sync_meter_registry()")[0]
    assert (created, refreshed, linked) == (200000, 0, 200000)


def drop(database, settings=""):
    """DROP EXTENSION, after `settings` in the same session."""
    run(database, f"{settings}; DROP EXTENSION oms_correlation" if settings else "DROP EXTENSION oms_correlation")


# Dropping is about the extension, not ingest; test_adoption.py drops and re-adopts an adopted one.
@pytest.mark.fresh_only
def test_drop_extension_refuses_to_delete_outage_history(db, pool):
    query(pool, "SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(example("scada_breaker_trip.json")),))
    with pytest.raises(psycopg2.errors.DependentObjectsStillExist) as refused:
        drop(db)
    assert "1 outage records" in str(refused.value)
    assert scalar(pool, "SELECT count(*) FROM oms_outage_events") == 1


@pytest.mark.fresh_only
def test_keep_data_then_drop_leaves_the_tables_and_rows(db, pool):
    query(pool, "SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(example("scada_breaker_trip.json")),))
    members = scalar(pool, """SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
                               WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'p', 'S')
                                 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation')""")
    # 50 tables, five serial sequences (meters, onu_events, the queue, the set-aside, the momentary
    # interruptions), and the registry generation and the outage writers, which are no data and go
    # with the extension.
    assert members == 57
    kept = scalar(pool, "SELECT oms_keep_data_on_drop()")
    assert kept == members - 2
    drop(db)
    assert scalar(pool, "SELECT count(*) FROM pg_extension WHERE extname = 'oms_correlation'") == 0
    assert scalar(pool, "SELECT count(*) FROM oms_outage_events") == 1
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events") == 45
    assert scalar(pool, "SELECT count(*) FROM oms_meters") == 179
    # Kept tables still take rows: their keys no longer need the extension.
    query(pool, "INSERT INTO oms_customers (customer_id) VALUES ('after-drop')")


@pytest.mark.fresh_only
def test_drop_with_data_when_the_dba_says_so(db, pool):
    query(pool, "SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(example("scada_breaker_trip.json")),))
    drop(db, "SET oms_correlation.allow_drop_with_data = on")
    assert scalar(pool, "SELECT to_regclass('oms_outage_events') IS NULL") is True


@pytest.mark.fresh_only
def test_an_empty_install_drops_without_ceremony(empty_db):
    run(empty_db, "CREATE EXTENSION oms_correlation")
    run(empty_db, "DROP EXTENSION oms_correlation")
    assert run(empty_db, "SELECT count(*) FROM pg_event_trigger") == [(0,)]
