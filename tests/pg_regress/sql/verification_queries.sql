-- The users' runbook queries (../shared/examples/verification_queries.sql) after the samples,
-- replayed in event-time order. Ids and wall-clock columns vary, so each query is run as written
-- and its rows are summarised by what does not vary.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;
SELECT (insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002",
  "mainStationId": "MS001", "alarmType": "fault", "timestamp": "2025-09-30T10:00:00Z", "voltage": 0.0,
  "severity": "critical", "reason": "Overcurrent detected"}') ->> 'offline_meters') AS offline;
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_001", "type": "ONU_LastGaspAlert",
  "onuId": 3230316, "timestamp": "2025-09-30T10:05:00Z", "associatedMeters": ["M12345678", "M23456789"]}') > 0 AS onu;
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T10:10:00Z", "payload": {"event_id":
  "KAIFA_TEST_001", "severity": "critical", "assets": {"ns2:mRID": "M12345678"}}}') IS NOT NULL AS kaifa;
SELECT insert_callcenter_ticket_from_json_with_meter_link('{"ticketId": "TC_TEST_001", "timestamp": "2025-09-30T10:15:00Z",
  "customer": {"phone": "+962-7-1234-5678", "meterNumber": "M12345678"}}') IS NOT NULL AS ticket;

-- SCADA: latest event, its affected meters, its outage
SELECT event_type, feeder_id, affected_meter_count FROM (
SELECT * FROM scada_events WHERE substation_id = 'SS001' ORDER BY event_timestamp DESC LIMIT 1
) q;
SELECT count(*), min(meter_status_after) FROM (
SELECT * FROM scada_event_affected_meters WHERE scada_event_id IN (
    SELECT id FROM scada_events WHERE substation_id = 'SS001' ORDER BY event_timestamp DESC LIMIT 1
)
) q;
SELECT status, affected_customers_count FROM (
SELECT * FROM oms_outage_events WHERE substation_id = (
    SELECT id FROM network_substations WHERE substation_id = 'SS001'
) ORDER BY first_detected_at DESC LIMIT 1
) q;

-- ONU: meter status after a last gasp, and its status event
SELECT meter_number, power_status, communication_status, last_power_change
FROM oms_meters WHERE onu_id = 3230316 ORDER BY meter_number;

SELECT event_type, source_type, previous_status, new_status, event_timestamp, confidence_score FROM (
SELECT * FROM oms_meter_status_events
WHERE meter_id = (SELECT id FROM oms_meters WHERE onu_id = 3230316 ORDER BY meter_number LIMIT 1)
ORDER BY event_timestamp DESC LIMIT 1
) q;

-- All meters by source
SELECT
    COUNT(*) as total_meters,
    COUNT(CASE WHEN onu_id IS NOT NULL THEN 1 END) as from_onu,
    COUNT(CASE WHEN asset_mrid IS NOT NULL THEN 1 END) as from_kaifa,
    COUNT(CASE WHEN id IN (SELECT meter_id FROM callcenter_customers WHERE meter_id IS NOT NULL) THEN 1 END) as from_call_center
FROM oms_meters
WHERE status = 'active';

-- Recent meter status changes
SELECT
    m.meter_number,
    mse.event_type,
    mse.source_type,
    mse.previous_status || ' → ' || mse.new_status as status_change,
    mse.event_timestamp,
    mse.confidence_score
FROM oms_meter_status_events mse
JOIN oms_meters m ON mse.meter_id = m.id
ORDER BY mse.event_timestamp DESC, m.meter_number
LIMIT 5;

-- SCADA events with meter impact (without the wall-clock filter, as the runbook says for old samples)
SELECT
    se.substation_id,
    se.feeder_id,
    se.event_timestamp,
    se.affected_meter_count,
    se.severity,
    oe.event_id LIKE 'OMS_SCADA_%' as outage_event_id_format,
    oe.affected_customers_count
FROM scada_events se
LEFT JOIN oms_outage_events oe ON se.outage_event_id = oe.id
ORDER BY se.event_timestamp DESC;
ROLLBACK;
