-- SPEC §4.1, the users' runbook: a breaker trip on SS001/FD002 with 150 active meters.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;

-- 30 off and offline, 15 on but silent since 08:00, 95 on and fresh, 10 power unknown.
SELECT r - 'scada_event_id' - 'outage_event_id' AS result, r ? 'outage_event_id' AND r->>'outage_event_id' IS NOT NULL AS has_outage
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002",
  "mainStationId": "MS001", "alarmType": "fault", "timestamp": "2025-09-30T10:00:00Z", "voltage": 0.0,
  "severity": "critical", "reason": "Overcurrent detected"}') AS r;

-- The scada_events row is filled in, and linked to the outage.
SELECT event_type, substation_id, feeder_id, alarm_type, event_timestamp, voltage, severity,
       affected_meter_count, meters_checked_at IS NOT NULL AS checked, outage_event_id IS NOT NULL AS linked
FROM scada_events;

-- One affected row per offline meter: the 30 off ones stay off, the 15 silent ones go off.
SELECT meter_status_before, meter_status_after, count(*)
FROM scada_event_affected_meters GROUP BY 1, 2 ORDER BY 1, 2;

-- FD001's meters are untouched, FD002's 95 fresh and 10 unknown are untouched.
SELECT f.feeder_id, m.power_status, count(*)
FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
WHERE m.status = 'active' GROUP BY 1, 2 ORDER BY 1, 2;

-- Status events: one per affected meter, source scada, confidence 0.90, real previous status.
SELECT event_type, source_type, previous_status, new_status, confidence_score, applied, count(*)
FROM oms_meter_status_events GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 3;

-- The outage, its source and its timeline.
SELECT event_id LIKE 'OMS_SCADA_20250930T100000_%' AS event_id_format, event_type, status, severity,
       confidence_score, affected_customers_count, root_cause, first_detected_at,
       substation_id = (SELECT id FROM network_substations WHERE substation_id = 'SS001') AS on_ss001,
       feeder_id = (SELECT id FROM network_feeders WHERE feeder_id = 'FD002') AS on_fd002, dp_id
FROM oms_outage_events;
SELECT source_type, source_table, correlation_weight FROM oms_event_sources;
SELECT event_type, status, description, source, "timestamp" FROM oms_event_timeline;

-- The same alarm a minute later joins the open outage instead of opening a second one.
SELECT r->>'outage_created' AS created, r->>'affected_meters' AS affected,
       (r->>'outage_event_id')::uuid = (SELECT id FROM oms_outage_events) AS same_outage
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002",
  "alarmType": "fault", "timestamp": "2025-09-30T10:01:00Z", "severity": "critical"}') AS r;
SELECT count(*) AS outages, max(affected_customers_count) AS customers FROM oms_outage_events;
SELECT event_type, description FROM oms_event_timeline ORDER BY created_at;

-- Redelivery of the first alarm: the original id and result, and nothing written.
SELECT r->>'duplicate' AS duplicate,
       (r->>'scada_event_id')::uuid = (SELECT id FROM scada_events WHERE event_timestamp = '2025-09-30 10:00:00+00') AS original_id
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002",
  "mainStationId": "MS001", "alarmType": "fault", "timestamp": "2025-09-30T10:00:00Z", "voltage": 0.0,
  "severity": "critical", "reason": "Overcurrent detected"}') AS r;
SELECT (SELECT count(*) FROM scada_events) AS scada_events,
       (SELECT count(*) FROM scada_event_affected_meters) AS affected_rows,
       (SELECT count(*) FROM oms_meter_status_events) AS status_events;
ROLLBACK;

-- With scada_scope = 'topology', SCADA is authoritative: all 150 are affected.
BEGIN;
SET LOCAL oms_correlation.scada_scope = 'topology';
SELECT r - 'scada_event_id' - 'outage_event_id' AS result
FROM insert_scada_event_with_meter_check('{"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002",
  "alarmType": "fault", "timestamp": "2025-09-30T10:00:00Z"}') AS r;
SELECT power_status, count(*) FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
WHERE f.feeder_id = 'FD002' AND m.status = 'active' GROUP BY 1 ORDER BY 1;
ROLLBACK;

-- A wider freshness window makes the 15 silent meters count as online.
BEGIN;
SET LOCAL oms_correlation.comm_fresh_window = '3h';
SELECT r->>'offline_meters' AS offline, r->>'online_meters' AS online, r->>'unknown_meters' AS unknown
FROM insert_scada_event_with_meter_check('{"eventType": "trip", "substationId": "SS001", "feederId": "FD002",
  "timestamp": "2025-09-30T10:00:00Z"}') AS r;
ROLLBACK;
