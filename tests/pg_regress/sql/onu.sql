-- SPEC §4.2: ONU last gasp and power restored, for every meter behind the ONU.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;

SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_001", "type": "ONU_LastGaspAlert",
  "onuId": 3230316, "onuSerial": "48575443ED8345B0", "timestamp": "2025-09-30T10:05:00Z",
  "location": {"lat": 31.9454, "lng": 35.9284}, "associatedMeters": ["M12345678", "M23456789"],
  "nmsType": "FiberTech", "alarmData": {"category": "power", "alarmType": "last_gasp"}}') > 0 AS stored;
SELECT meter_number, power_status, communication_status, last_power_change, last_status_change
FROM oms_meters WHERE onu_id = 3230316 ORDER BY meter_number;
SELECT m.meter_number, e.event_type, e.source_type, e.source_event_id, e.previous_status, e.new_status,
       e.confidence_score, e.applied
FROM oms_meter_status_events e JOIN oms_meters m ON m.id = e.meter_id ORDER BY m.meter_number;
-- The event row links the first meter by number.
SELECT e.event_id, e.event_type, e.alarm_category, e.alarm_type, e.nms_type, e.location_lat,
       m.meter_number AS linked_meter, e.raw_payload->>'onuSerial' AS raw_serial
FROM onu_events e LEFT JOIN oms_meters m ON m.id = e.meter_id;

-- Power restored turns them back on, one status event per meter.
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_002", "type": "ONU_PowerRestored",
  "onuId": 3230316, "timestamp": "2025-09-30T10:41:00Z"}') > 0 AS stored;
SELECT meter_number, power_status, communication_status, last_power_change, last_communication
FROM oms_meters WHERE onu_id = 3230316 ORDER BY meter_number;
SELECT e.event_type, e.previous_status, e.new_status, count(*)
FROM oms_meter_status_events e GROUP BY 1, 2, 3 ORDER BY 1;

-- Other ONU types are stored without status changes; an unknown ONU gets a stub row.
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_003", "type": "ONU_LinkDown",
  "onuId": 3230316, "timestamp": "2025-09-30T10:50:00Z"}') > 0 AS stored;
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_004", "type": "ONU_LastGaspAlert",
  "onuId": "777", "onuSerial": "", "timestamp": "2025-09-30T10:51:00Z"}') > 0 AS stored;
SELECT id, onu_serial_no, status FROM onus ORDER BY id;
SELECT count(*) AS status_events FROM oms_meter_status_events;

-- Redelivery returns the original id and writes nothing: by eventId, and by ONU, type and time
-- when the consumer invented a fresh id.
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_001", "type": "ONU_LastGaspAlert",
  "onuId": 3230316, "timestamp": "2025-09-30T10:05:00Z"}') = (SELECT id FROM onu_events WHERE event_id = 'ONU_TEST_001') AS same_id;
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "onu_1759226700123", "type": "ONU_LastGaspAlert",
  "onuId": 3230316, "timestamp": "2025-09-30T10:05:00Z"}') = (SELECT id FROM onu_events WHERE event_id = 'ONU_TEST_001') AS same_id;
SELECT (SELECT count(*) FROM onu_events) AS onu_events, (SELECT count(*) FROM oms_meter_status_events) AS status_events;

-- A late last gasp, older than the restoration already applied, is audited and not applied.
SELECT insert_onu_event_from_json_with_meter_sync('{"eventId": "ONU_TEST_005", "type": "ONU_LastGaspAlert",
  "onuId": 3230316, "timestamp": "2025-09-30T10:30:00Z"}') > 0 AS stored;
SELECT meter_number, power_status FROM oms_meters WHERE onu_id = 3230316 ORDER BY meter_number;
SELECT e.source_event_id, e.applied, e.metadata->>'not_applied' AS why
FROM oms_meter_status_events e WHERE e.source_event_id = 'ONU_TEST_005' ORDER BY 1;

-- Without eventId, the event gets a stable id from ONU, time and type.
SELECT insert_onu_event_from_json('{"type": "ONU_Heartbeat", "onuId": 3230316, "timestamp": "2025-09-30T11:00:00Z"}')
     = insert_onu_event_from_json('{"type": "ONU_Heartbeat", "onuId": 3230316, "timestamp": "2025-09-30T11:00:00Z"}') AS stable;
SELECT event_id FROM onu_events WHERE event_type = 'ONU_Heartbeat';
ROLLBACK;
