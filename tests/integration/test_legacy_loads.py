"""What a DBA's load and delete scripts did on the legacy schema they do here (issue 10): no key of
ours refuses a row or a delete the legacy schema took, the legacy delete actions hold, and values
keep the precision the legacy columns gave them."""

import json

import psycopg2
import pytest

from conftest import example, query, scalar


def test_a_registry_exported_before_the_nms_reported_its_onus_loads(pool):
    # The MDM's export names ONUs the fibre NMS has not reported yet: the legacy schema took it.
    query(pool, "INSERT INTO oms_meters (meter_number, onu_id) VALUES ('LOAD-1', 3230999), ('LOAD-2', 3230999)")
    assert query(pool, "SELECT stub, onu_serial_no FROM onus WHERE id = 3230999") == [(True, None)]
    # The NMS's load then fills the stub in, with its 8-decimal coordinates.
    query(pool, """INSERT INTO onus (id, onu_serial_no, olt_name, fibertech_id, location_lat, location_lng)
                   VALUES (3230999, '48575443AAAA0001', 'OLT-AMMAN-3', 'FT-77', 31.95394567, 35.91012345)""")
    assert query(pool, "SELECT stub, onu_serial_no, olt_name, fibertech_id, location_lat::text, location_lng::text "
                       "FROM onus WHERE id = 3230999") == [
        (False, "48575443AAAA0001", "OLT-AMMAN-3", "FT-77", "31.95394567", "35.91012345")]
    # An ONU the NMS reports twice is refused, as the legacy primary key refused it.
    with pytest.raises(psycopg2.errors.UniqueViolation):
        query(pool, "INSERT INTO onus (id, olt_name) VALUES (3230999, 'again')")
    # The meters behind it answer its last gasp.
    call_onu = {"eventId": "LOAD-GASP", "type": "ONU_LastGaspAlert", "onuId": 3230999,
                "timestamp": "2025-09-30T11:00:00Z"}
    query(pool, "SELECT insert_onu_event_from_json_with_meter_sync(%s::jsonb)", (json.dumps(call_onu),))
    assert query(pool, "SELECT meter_number, power_status FROM oms_meters WHERE onu_id = 3230999 ORDER BY 1") == [
        ("LOAD-1", "off"), ("LOAD-2", "off")]


def test_an_onu_an_event_made_up_is_filled_in_by_the_nms_keeping_what_the_event_taught(pool):
    event = dict(example("onu_last_gasp.json"), onuId=7700001, eventId="STUB-1", onuSerial="EVENT-SERIAL")
    query(pool, "SELECT insert_onu_event_from_json_with_meter_sync(%s::jsonb)", (json.dumps(event),))
    assert scalar(pool, "SELECT stub FROM onus WHERE id = 7700001") is True
    query(pool, "INSERT INTO onus (id, olt_name) VALUES (7700001, 'OLT-9')")
    assert query(pool, "SELECT stub, onu_serial_no, olt_name FROM onus WHERE id = 7700001") == [
        (False, "EVENT-SERIAL", "OLT-9")]
    assert scalar(pool, "SELECT count(*) FROM onu_events WHERE onu_id = 7700001") == 1


def test_links_to_meters_the_registry_does_not_know_load(pool):
    # The legacy schema had no key on these: a load from another system's ids goes in as is.
    ghost = "00000000-0000-0000-0000-0000000000aa"
    query(pool, "INSERT INTO scada_events (event_type, substation_id, event_timestamp, outage_event_id) "
                "VALUES ('breaker_trip', 'LOAD-SS', '2025-09-30T10:00:00Z', %s)", (ghost,))
    scada = scalar(pool, "SELECT id FROM scada_events WHERE substation_id = 'LOAD-SS'")
    query(pool, "INSERT INTO scada_event_affected_meters (scada_event_id, meter_id) VALUES (%s, %s)", (scada, ghost))
    query(pool, "INSERT INTO meters (meter_id, oms_meter_id) VALUES ('LOAD-ONU-METER', %s)", (ghost,))
    query(pool, "INSERT INTO onu_events (event_id, event_type, \"timestamp\", raw_payload, meter_id) "
                "VALUES ('LOAD-ONU-1', 'ONU_LastGaspAlert', '2025-09-30T10:00:00Z', '{}', %s)", (ghost,))
    ticket = scalar(pool, "INSERT INTO callcenter_tickets (external_ticket_id, intake_timestamp) "
                          "VALUES ('LOAD-T1', '2025-09-30T10:00:00Z') RETURNING id")
    query(pool, "INSERT INTO callcenter_customers (ticket_id, meter_id) VALUES (%s, %s)", (ticket, ghost))
    # Kaifa children joined to their payload, as the legacy readers load and read them.
    event = scalar(pool, "INSERT INTO kaifa_events (message_type, event_timestamp) "
                         "VALUES ('EndDeviceEvent', '2025-09-30T10:00:00Z') RETURNING id")
    payload = scalar(pool, "INSERT INTO kaifa_event_payloads (event_id, event_id_value) VALUES (%s, 'LOAD-K1') "
                           "RETURNING id", (event,))
    for table, columns, values in [
        ("kaifa_event_assets", "payload_id, mrid, meter_id", "%s, 'LOAD-M', '" + ghost + "'"),
        ("kaifa_event_usage_points", "payload_id, mrid", "%s, 'LOAD-UP'"),
        ("kaifa_event_details", "payload_id, name, value", "%s, 'voltage', '0'"),
        ("kaifa_event_names", "payload_id, name, name_type", "%s, 'PowerOff', 'EventName'"),
        ("kaifa_event_status", "payload_id, date_time, value", "%s, '2025-09-30T10:00:00Z', 'off'"),
    ]:
        query(pool, f"INSERT INTO {table} ({columns}) VALUES ({values})", (payload,))
    # Deleting the message takes its payload and the payload's children with it (legacy CASCADE).
    query(pool, "DELETE FROM kaifa_events WHERE id = %s", (event,))
    assert query(pool, "SELECT (SELECT count(*) FROM kaifa_event_payloads WHERE id = %s), "
                       "(SELECT count(*) FROM kaifa_event_assets WHERE payload_id = %s), "
                       "(SELECT count(*) FROM kaifa_event_status WHERE payload_id = %s)",
                 (payload, payload, payload)) == [(0, 0, 0)]


def test_a_dba_deletes_a_dp_a_feeder_and_a_customer_that_meters_refer_to(pool):
    dp_meters = scalar(pool, "SELECT count(*) FROM oms_meters m JOIN network_distribution_points d ON d.id = m.dp_id "
                             "WHERE d.dp_id = 'DP-FD002-01'")
    assert dp_meters == 30
    without_dp = "SELECT count(*) FROM oms_meters WHERE meter_number LIKE 'M-FD002-%' AND dp_id IS NULL"
    before = scalar(pool, without_dp)
    query(pool, "DELETE FROM network_distribution_points WHERE dp_id = 'DP-FD002-01'")
    assert scalar(pool, without_dp) == before + dp_meters

    customer = scalar(pool, "SELECT customer_id FROM oms_meters WHERE meter_number = 'M-FD002-001'")
    query(pool, "DELETE FROM oms_customers WHERE id = %s", (customer,))
    assert scalar(pool, "SELECT customer_id FROM oms_meters WHERE meter_number = 'M-FD002-001'") is None

    # FD003: its DPs and the mapping rows that put meters on it go with it (legacy CASCADE); the
    # meters stay.
    fd003 = "(SELECT id FROM network_feeders WHERE feeder_id = 'FD003')"
    assert query(pool, f"SELECT (SELECT count(*) FROM network_distribution_points WHERE feeder_id = {fd003}), "
                       f"(SELECT count(*) FROM network_feeder_meters WHERE feeder_id = {fd003})") == [(5, 5)]
    query(pool, "DELETE FROM network_feeders WHERE feeder_id = 'FD003'")
    assert query(pool, "SELECT (SELECT count(*) FROM network_distribution_points WHERE dp_id LIKE 'DP-FD003-%'), "
                       "(SELECT count(*) FROM network_feeder_meters fm JOIN oms_meters m ON m.id = fm.meter_id "
                       "  WHERE m.meter_number LIKE 'M-FD003-%'), "
                       "(SELECT count(*) FROM oms_meters WHERE meter_number LIKE 'M-FD003-%')") == [(0, 0, 5)]

    # A feeder with an outage recorded against it stays, as the legacy key kept it.
    query(pool, "SELECT insert_scada_event_with_meter_check(%s::jsonb)", (json.dumps(example("scada_breaker_trip.json")),))
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        query(pool, "DELETE FROM network_feeders WHERE feeder_id = 'FD002'")


def test_coordinates_keep_the_legacy_eight_decimals(pool):
    query(pool, "INSERT INTO network_substations (substation_id, location_lat, location_lng) "
                "VALUES ('LOAD-SS8', 31.95394567, 35.91012345)")
    assert query(pool, "SELECT location_lat::text, location_lng::text FROM network_substations "
                       "WHERE substation_id = 'LOAD-SS8'") == [("31.95394567", "35.91012345")]
