-- SPEC §2: the helper functions and views DBAs' scripts use.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;

-- Active meters only, each once, through own columns, mappings and the substation's feeders.
SELECT count(*) AS fd002, count(DISTINCT meter_id) AS distinct_meters,
       count(*) FILTER (WHERE power_status = 'off') AS off FROM get_meters_by_feeder('FD002');
SELECT count(*) AS ss001 FROM get_meters_by_substation('SS001');
SELECT meter_number, communication_status, power_status FROM get_meters_by_feeder('FD003') ORDER BY 1;
SELECT count(*) AS unknown_feeder FROM get_meters_by_feeder('NOPE');
-- A mapping row adds a meter to a substation even when its own columns say nothing.
INSERT INTO network_substation_meters (substation_id, meter_id)
SELECT s.id, m.id FROM network_substations s, oms_meters m WHERE s.substation_id = 'SS002' AND m.meter_number = 'M12345678';
SELECT count(*) AS ss002 FROM get_meters_by_substation('SS002');

-- update_meter_status: audited like any event, returns the status event id.
SELECT update_meter_status('M-FD001-001', 'off', 'power_off', 'system', 'MANUAL-1', '2025-09-30 12:00:00+00',
                           '{"by": "dba"}') IS NOT NULL AS has_id;
SELECT m.power_status, e.event_type, e.source_type, e.source_event_id, e.previous_status, e.new_status,
       e.confidence_score, e.metadata
FROM oms_meters m JOIN oms_meter_status_events e ON e.meter_id = m.id WHERE m.meter_number = 'M-FD001-001';
SELECT update_meter_status('M-FD001-001', 'offline', 'communication_lost', 'onu') IS NOT NULL AS has_id;
SELECT communication_status FROM oms_meters WHERE meter_number = 'M-FD001-001';
SAVEPOINT s;
SELECT update_meter_status('NO-SUCH-METER', 'off', 'power_off', 'system');
ROLLBACK TO s;
SELECT update_meter_status('M-FD001-001', 'sideways', 'power_off', 'system');
ROLLBACK TO s;
SELECT update_meter_status('M-FD001-001', 'off', 'power_off', 'carrier_pigeon');
ROLLBACK TO s;

-- process_scada_event_meters: the SCADA check for an event stored by the base function.
SELECT total_meters, offline_meters, online_meters, unknown_meters, outage_event_id IS NOT NULL AS has_outage
FROM process_scada_event_meters(
    insert_scada_event_from_json('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002",
      "timestamp": "2025-09-30T10:00:00Z"}'), 'SS001', 'FD002', '2025-09-30 10:00:00+00') AS r;
SELECT total_meters, offline_meters, online_meters, unknown_meters, outage_event_id
FROM process_scada_event_meters('00000000-0000-0000-0000-000000000000', 'SS001') AS r;
ROLLBACK TO s;

-- sync_callcenter_tickets_to_meters links tickets stored before their meter was registered.
SELECT insert_callcenter_ticket_from_json('{"ticketId": "T-LATE-1", "timestamp": "2025-09-30T10:00:00Z",
  "customer": {"meterNumber": "M-NEW-1"}}') IS NOT NULL AS stored;
SELECT insert_callcenter_ticket_from_json('{"ticketId": "T-LATE-2", "timestamp": "2025-09-30T10:00:00Z",
  "customer": {"meterNumber": "M-NEVER"}}') IS NOT NULL AS stored;
INSERT INTO oms_meters (meter_number) VALUES ('M-NEW-1');
SELECT * FROM sync_callcenter_tickets_to_meters();
SELECT * FROM sync_callcenter_tickets_to_meters();

-- The views.
-- The legacy columns count power status (online: on, offline: off), comm_* communication status.
SELECT substation_id, total_meters, online_meters, offline_meters, unknown_meters, comm_online_meters,
       comm_offline_meters, open_outages
FROM network_substations_with_meters ORDER BY substation_id;
SELECT feeder_id, substation_code, substation_name, total_meters, online_meters, offline_meters, open_outages
FROM network_feeders_with_meters ORDER BY feeder_id;
SELECT meter_number, substation_id, feeder_id, dp_id, customer_id, customer_name, dp_name
FROM oms_meters_with_topology WHERE meter_number IN ('M12345678', 'M-FD002-001', 'M-FD003-001') ORDER BY 1;
SELECT r->>'outage_created' AS created FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip",
  "substationId": "SS001", "feederId": "FD002", "timestamp": "2025-09-30T10:00:00Z"}') AS r;
SELECT status, substation_name, feeder_name, feeder_code, scope, affected_customers_count, source_count, source_types
FROM oms_active_outages;
SELECT status, total_sources, scada_sources, onu_sources, first_source_detected
FROM oms_correlation_summary;
SELECT source_type, correlation_weight, status_events, applied_events, meters, outages_contributed
FROM oms_source_summary ORDER BY source_type;
-- Unknown meters, ONUs and devices are stored, never an error, and listed.
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "U1", "type": "ONU_LastGaspAlert", "onuId": 555,
  "timestamp": "2025-09-30T10:00:00Z"}') > 0 AS stored;
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T10:00:00Z", "payload": {"event_id": "U2",
  "severity": "critical", "assets": {"ns2:mRID": "M-NOBODY"}, "usage_point": {"ns2:mRID": "UP-NOBODY"}}}') IS NOT NULL AS stored;
SELECT insert_scada_event_with_meter_check('{"eventType": "trip", "substationId": "SS-GHOST", "feederId": "FD-GHOST",
  "timestamp": "2025-09-30T10:00:00Z"}') ->> 'meters_checked' AS checked;
SELECT source, source_event_id ~ '^[0-9a-f-]{36}$' AS is_uuid, named, event_time, reason
FROM oms_unmatched_events ORDER BY source, named;
ROLLBACK;
