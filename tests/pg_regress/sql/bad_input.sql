-- SPEC §6: bad input. Quarantine (default) keeps the payload, WARNs and returns NULL, and the
-- caller's transaction stays usable; error mode raises the payload's SQLSTATE.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
LOAD 'oms_correlation';
BEGIN;
SHOW oms_correlation.on_invalid_payload;
SELECT insert_onu_event_from_json_with_meter_sync('[1, 2, 3]');
SELECT insert_onu_event_from_json_with_meter_sync('{"type": "ONU_LastGaspAlert", "timestamp": "2025-09-30T10:05:00Z"}');
SELECT insert_onu_event_from_json_with_meter_sync('{"onuId": 9999999999, "type": "x", "timestamp": "2025-09-30T10:05:00Z"}');
SELECT insert_scada_event_with_meter_check('{"eventType": "trip", "substationId": "SS001", "timestamp": 1759226400}');
SELECT insert_kaifa_event_from_json_with_meter_sync('{"raw_soap": "<soapenv:Envelope/>", "original_message": {}}');
SELECT insert_callcenter_ticket_from_json_with_meter_link('{"ticketId": "T1", "timestamp": "2025-09-30T10:15:00Z",
  "customer": {"phone": "1", "meterNumber": {"nested": true}}}');
SELECT insert_callcenter_ticket_from_json(NULL);
-- The transaction is still usable, and every rejected payload is kept whole.
SELECT source, function_name, sqlstate, field_path, raw_payload IS NOT NULL AS kept
FROM oms_rejected_events ORDER BY received_at, id;
-- SQL-looking text is data: stored verbatim, never executed.
SELECT insert_callcenter_ticket_from_json('{"ticketId": "T''; DROP TABLE oms_meters; --", "timestamp": "2025-09-30T10:15:00Z",
  "customer": {"notes": "Robert''); DROP TABLE callcenter_tickets;-- ⚡ كهرباء 😀"}}') IS NOT NULL AS stored;
SELECT t.external_ticket_id, c.notes FROM callcenter_tickets t JOIN callcenter_customers c ON c.ticket_id = t.id;
SELECT count(*) > 0 AS meters_still_there FROM oms_meters;
ROLLBACK;

-- Error mode: the right SQLSTATE, and nothing written.
BEGIN;
SET LOCAL oms_correlation.on_invalid_payload = 'error';
\set VERBOSITY default
SAVEPOINT s;
SELECT insert_onu_event_from_json_with_meter_sync('{"onuId": "ONU-7", "type": "x", "timestamp": "2025-09-30T10:05:00Z"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT insert_onu_event_from_json_with_meter_sync('{"onuId": 1, "type": "x", "timestamp": "30/09/2025"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT insert_scada_event_with_meter_check('{"eventType": "trip", "timestamp": "2025-09-30T10:00:00Z"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT insert_callcenter_ticket_from_json('{"ticketId": "T", "timestamp": "2025-09-30T10:15:00Z",
  "customer": {"phone": "12345678901234567890123456789012345678901234567890123"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT insert_onu_event_from_json('{"onuId": 4294967296, "type": "x", "timestamp": "2025-09-30T10:05:00Z"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT (SELECT count(*) FROM oms_rejected_events) AS rejected, (SELECT count(*) FROM onu_events) AS onu_events;
ROLLBACK;
