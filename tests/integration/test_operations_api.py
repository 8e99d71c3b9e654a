"""The operations API's workflows on the extension's tables (issue 10, LEGACY_SCHEMA.md's last
section): the statements the HTTP service behind the dashboards runs, with the columns it uses and
the columns it leaves out. Operators open an outage's detail, change its status, assign a crew,
update the crew's status, record and list notifications, and keep key/value settings."""

import json

import pytest

from conftest import example, query, scalar


@pytest.fixture
def outage(pool):
    result = scalar(pool, "SELECT insert_scada_event_with_meter_check(%s::jsonb)",
                    (json.dumps(example("scada_breaker_trip.json")),))
    return result["outage_event_id"]


def detail(pool, outage_id):
    """The outage-detail call: the outage, its sources and timeline in time order, its customers."""
    head = query(pool, """SELECT id, event_id, event_type, status, severity, confidence_score, affected_customers_count,
                                 estimated_restoration_time, actual_restoration_time, description, event_latitude,
                                 event_longitude, substation_id, feeder_id, dp_id, first_detected_at, last_updated_at
                          FROM oms_outage_events WHERE id = %s""", (outage_id,))
    sources = query(pool, """SELECT id, outage_event_id, source_type, source_event_id, source_table, correlation_weight,
                                    detected_at, event_timestamp, event_data, confidence_weight
                             FROM oms_event_sources WHERE outage_event_id = %s ORDER BY event_timestamp""", (outage_id,))
    timeline = query(pool, """SELECT id, outage_event_id, event_type, event_description, event_timestamp, created_by
                              FROM oms_event_timeline WHERE outage_event_id = %s ORDER BY event_timestamp""", (outage_id,))
    customers = query(pool, """SELECT c.id, c.customer_name, c.account_id, c.address
                               FROM oms_outage_customers oc JOIN oms_customers c ON c.id = oc.customer_id
                               WHERE oc.outage_id = %s ORDER BY c.customer_name""", (outage_id,))
    return head, sources, timeline, customers


def test_outage_detail_reads_the_extensions_records_under_the_apis_names(pool, outage):
    head, sources, timeline, customers = detail(pool, outage)
    # SCADA is authoritative for its device: confirmed at 1.0 (SPEC §5.3).
    assert (head[0][3], float(head[0][5])) == ("confirmed", 1.0)
    # The alarm's source, with the API's timestamp and weight filled in.
    assert [(s[2], s[7] is not None, float(s[9])) for s in sources] == [("scada", True, 1.0)]
    assert [(t[2], t[3] is not None, t[4] is not None, t[5]) for t in timeline] == [
        ("outage_detected", True, True, "oms_correlation")]
    # The customers of the 45 meters the trip found off: 45 customers of the demo grid.
    assert len(customers) == 45 and all(c[1].startswith("Customer ") for c in customers)


def test_operator_workflow_from_status_change_to_notification(pool, outage):
    # Change the status, and note it on the timeline in the API's own columns.
    query(pool, "UPDATE oms_outage_events SET status = 'in_progress', last_updated_at = now() WHERE id = %s", (outage,))
    query(pool, """INSERT INTO oms_event_timeline (id, outage_event_id, event_type, event_description, event_timestamp, created_by)
                   VALUES (gen_random_uuid(), %s, 'status_change', 'Status changed to in_progress',
                           '2025-09-30T10:20:00Z', 'operator.ahmad')""", (outage,))
    # Fill the coordinates the alarm left out.
    query(pool, "UPDATE oms_outage_events SET event_latitude = 31.95394567, event_longitude = 35.91012345 "
                "WHERE id = %s AND event_latitude IS NULL", (outage,))
    # Assign a crew: the API leaves crew_id out.
    crew = scalar(pool, """INSERT INTO oms_crew_assignments
                               (outage_event_id, crew_name, crew_type, crew_size, assignment_type, status, priority,
                                estimated_arrival_time, equipment, notes)
                           VALUES (%s, 'Line crew 4', 'line', 3, 'repair', 'assigned', 'high',
                                   '2025-09-30T10:45:00Z', 'bucket truck', 'feeder FD002')
                           RETURNING id""", (outage,))
    query(pool, """INSERT INTO oms_event_timeline (id, outage_event_id, event_type, event_description, event_timestamp, created_by)
                   VALUES (gen_random_uuid(), %s, 'crew_assigned', 'Line crew 4 assigned', '2025-09-30T10:21:00Z',
                           'operator.ahmad')""", (outage,))
    # The crew's status.
    query(pool, """UPDATE oms_crew_assignments SET status = 'on_site', actual_arrival_time = '2025-09-30T10:44:00Z',
                          current_location_lat = 31.95, current_location_lng = 35.91 WHERE id = %s""", (crew,))
    query(pool, """INSERT INTO oms_event_timeline (id, outage_event_id, event_type, event_description, event_timestamp, created_by)
                   VALUES (gen_random_uuid(), %s, 'crew_status_update', 'Crew on site', '2025-09-30T10:44:00Z',
                           'crew.4')""", (outage,))
    # A broadcast notification: no customer, no channel.
    query(pool, """INSERT INTO oms_customer_notifications
                       (id, outage_event_id, notification_type, channels_used, message_content, status, sent_at)
                   VALUES (gen_random_uuid(), %s, 'outage_broadcast', 'sms,ivr', 'Power outage in Shmeisani',
                           'sent', '2025-09-30T10:22:00Z')""", (outage,))
    query(pool, """INSERT INTO oms_event_timeline (id, outage_event_id, event_type, event_description, event_timestamp, created_by)
                   VALUES (gen_random_uuid(), %s, 'customer_notification_sent', 'Broadcast to 45 customers',
                           '2025-09-30T10:22:00Z', 'operator.ahmad')""", (outage,))

    head, _, timeline, _ = detail(pool, outage)
    assert (head[0][3], str(head[0][10]), str(head[0][11])) == ("in_progress", "31.95394567", "35.91012345")
    assert [(t[2], t[3], t[5]) for t in timeline] == [
        ("outage_detected", "SCADA breaker_trip on feeder FD002: 45 meter(s) affected", "oms_correlation"),
        ("status_change", "Status changed to in_progress", "operator.ahmad"),
        ("crew_assigned", "Line crew 4 assigned", "operator.ahmad"),
        ("customer_notification_sent", "Broadcast to 45 customers", "operator.ahmad"),
        ("crew_status_update", "Crew on site", "crew.4"),
    ]
    # The API's timeline rows read the same through the extension's own column names.
    assert query(pool, """SELECT event_type, description, "timestamp"::text, status FROM oms_event_timeline
                          WHERE outage_event_id = %s AND created_by = 'crew.4'""", (outage,)) == [
        ("crew_status_update", "Crew on site", "2025-09-30 10:44:00+00", "in_progress")]
    assert query(pool, "SELECT notification_type, channels_used, message_content, status FROM oms_customer_notifications "
                       "WHERE outage_event_id = %s ORDER BY sent_at DESC", (outage,)) == [
        ("outage_broadcast", "sms,ivr", "Power outage in Shmeisani", "sent")]
    assert query(pool, "SELECT crew_id, crew_name, status FROM oms_crew_assignments WHERE outage_event_id = %s",
                 (outage,)) == [(None, "Line crew 4", "on_site")]
    # The dashboards' views show the operator's status.
    assert query(pool, "SELECT status, feeder_name FROM oms_active_outages WHERE id = %s", (outage,)) == [
        ("in_progress", "Shmeisani 11 kV")]

    # A false alarm: cancelled, and gone from the active outages.
    query(pool, "UPDATE oms_outage_events SET status = 'cancelled', last_updated_at = now() WHERE id = %s", (outage,))
    assert scalar(pool, "SELECT count(*) FROM oms_active_outages WHERE id = %s", (outage,)) == 0


def test_key_value_settings_live_beside_storm_mode(pool):
    settings_rows = "SELECT count(*) FROM oms_storm_mode_config WHERE config_key IS NULL"
    before = scalar(pool, settings_rows)
    for value in ("0.85", "0.9"):
        query(pool, """INSERT INTO oms_storm_mode_config (config_key, config_value, description, updated_at)
                       VALUES ('high_confidence_threshold', %s, 'Confidence at which an outage is high', now())
                       ON CONFLICT (config_key) DO UPDATE SET config_value = EXCLUDED.config_value,
                                                              updated_at = EXCLUDED.updated_at""", (value,))
    assert query(pool, "SELECT config_value FROM oms_storm_mode_config WHERE config_key = 'high_confidence_threshold'") == [
        ("0.9",)]
    # The storm-mode settings rows are untouched by the keys.
    assert scalar(pool, settings_rows) == before >= 1
