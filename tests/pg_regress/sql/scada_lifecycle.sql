-- SPEC §4.1: producer vocabulary, restoration, informational alarms, unknown devices, scope.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;

-- MV_AlarmLossOfVoltage / De-energized is an outage: checked.
SELECT r->>'classification' AS class, r->>'scope' AS scope, r->>'total_meters' AS total,
       r->>'offline_meters' AS offline, r->>'outage_created' AS created
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmLossOfVoltage", "substationId": "SS001",
  "feederId": "FD002", "mainStationId": "82001", "alarmType": "De-energized", "timestamp": "2025-09-30T10:00:00.915Z",
  "voltage": 0, "severity": "Medium", "reason": "Transformer Fault", "coordinates": {"lat": 31.94, "lng": 35.97},
  "source": "SCADA-Simulator"}') AS r;
SELECT status, severity, event_latitude, event_longitude, first_detected_at FROM oms_outage_events;

-- MV_AlarmRestoration / Energized restores the outage and its meters.
SELECT r->>'classification' AS class, r->>'restored_meters' AS restored,
       (r->>'outage_event_id')::uuid = (SELECT id FROM oms_outage_events) AS restored_that_outage
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmRestoration", "substationId": "SS001",
  "feederId": "FD002", "alarmType": "Energized", "timestamp": "2025-09-30T11:20:00Z", "voltage": 11000,
  "severity": "High"}') AS r;
SELECT status, actual_restoration_time FROM oms_outage_events;
SELECT event_type, status, description FROM oms_event_timeline ORDER BY "timestamp";
-- The 45 affected meters are back on, each with a power_on status event at the restoration time.
SELECT power_status, count(*) FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
WHERE f.feeder_id = 'FD002' AND m.status = 'active' GROUP BY 1 ORDER BY 1;
SELECT event_type, previous_status, new_status, event_timestamp, count(*)
FROM oms_meter_status_events WHERE event_type = 'power_on' GROUP BY 1, 2, 3, 4;
-- A new outage on the same feeder after restoration opens a second record.
SELECT r->>'outage_created' AS created
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001",
  "feederId": "FD002", "timestamp": "2025-09-30T12:00:00Z"}') AS r;
SELECT status, count(*) FROM oms_outage_events GROUP BY 1 ORDER BY 1;
ROLLBACK;

BEGIN;
-- An informational alarm is stored and not checked.
SELECT r - 'scada_event_id' AS result
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmDoorOpen", "substationId": "SS001",
  "feederId": "FD002", "alarmType": "Intrusion", "timestamp": "2025-09-30T10:30:00Z"}') AS r;
SELECT event_type, affected_meter_count, outage_event_id FROM scada_events;
SELECT count(*) AS status_events FROM oms_meter_status_events;

-- An unknown substation stores the event and says which.
SELECT r - 'scada_event_id' AS result
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS999",
  "feederId": "FD999", "timestamp": "2025-09-30T10:31:00Z"}') AS r;

-- No feeder: the whole substation SS001 (FD001 and FD002) is the scope.
SELECT r->>'scope' AS scope, r->>'total_meters' AS total, r->>'offline_meters' AS offline,
       r->>'online_meters' AS online, r->>'unknown_meters' AS unknown
FROM insert_scada_event_with_meter_check('{"eventType": "LOSS OF VOLTAGE", "substationId": "SS001",
  "timestamp": "2025-09-30T10:00:00Z"}') AS r;

-- A feeder mapped only through network_feeder_meters (FD003) is found through the mapping.
SELECT r->>'scope' AS scope, r->>'total_meters' AS total, r->>'online_meters' AS online
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS002",
  "feederId": "FD003", "timestamp": "2025-09-30T10:00:00Z"}') AS r;

-- The vocabulary is data: a DBA teaches it a new alarm text.
SELECT r->>'meters_checked' AS checked
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmUnderFrequency", "substationId": "SS002",
  "feederId": "FD003", "timestamp": "2025-09-30T10:40:00Z"}') AS r;
INSERT INTO scada_alarm_vocabulary (term, classification) VALUES ('underfrequency', 'outage');
SELECT r->>'classification' AS class
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmUnderFrequency", "substationId": "SS002",
  "feederId": "FD003", "timestamp": "2025-09-30T10:41:00Z"}') AS r;

-- The base function stores only.
SELECT insert_scada_event_from_json('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD001",
  "timestamp": "2025-09-30T10:50:00Z"}') IS NOT NULL AS stored;
SELECT affected_meter_count, meters_checked_at FROM scada_events WHERE event_timestamp = '2025-09-30 10:50:00+00';
ROLLBACK;

-- Out of order (SPEC §6): the restoration arrives before the trip it ends.
BEGIN;
SELECT r->>'restored_meters' AS restored, r->>'outage_event_id' AS outage
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmRestoration", "substationId": "SS001",
  "feederId": "FD002", "alarmType": "Energized", "timestamp": "2025-09-30T11:20:00Z"}') AS r;
-- The late trip does what an in-order delivery would have: its 45 meters went off at 10:00 and
-- back on at 11:20; the outage is recorded, already over.
SELECT r->>'affected_meters' AS affected, r->>'restored_meters' AS restored, r->>'superseded' AS superseded,
       r->>'offline_meters' AS offline
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmLossOfVoltage", "substationId": "SS001",
  "feederId": "FD002", "alarmType": "De-energized", "timestamp": "2025-09-30T10:00:00Z"}') AS r;
SELECT status, first_detected_at, actual_restoration_time FROM oms_outage_events;
SELECT event_type, status, "timestamp" FROM oms_event_timeline ORDER BY "timestamp";
SELECT power_status, count(*) FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
WHERE f.feeder_id = 'FD002' AND m.status = 'active' GROUP BY 1 ORDER BY 1;
-- An old restoration arriving after a newer trip does not end the newer outage.
SELECT r->>'outage_created' AS created
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001",
  "feederId": "FD002", "timestamp": "2025-09-30T12:00:00Z"}') AS r;
SELECT r->>'restored_meters' AS restored, r->'restored_outages' AS restored_outages
FROM insert_scada_event_with_meter_check('{"eventType": "MV_AlarmRestoration", "substationId": "SS001",
  "feederId": "FD002", "alarmType": "Energized", "timestamp": "2025-09-30T11:50:00Z"}') AS r;
SELECT status, first_detected_at FROM oms_outage_events ORDER BY first_detected_at;
ROLLBACK;
