-- SPEC §4.4: call-center tickets.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;

SELECT insert_callcenter_ticket_from_json_with_meter_link('{"ticketId": "TC_TEST_001",
  "timestamp": "2025-09-30T10:15:00Z", "customer": {"phone": "+962-7-1234-5678", "meterNumber": "M12345678",
  "address": "123 Main St, Amman"}}') IS NOT NULL AS stored;
-- The customer is linked to the meter, a power_off report is recorded at 0.60 ...
SELECT c.phone, c.meter_number, m.meter_number AS linked_meter, c.address
FROM callcenter_customers c LEFT JOIN oms_meters m ON m.id = c.meter_id;
SELECT event_type, source_type, source_event_id, previous_status, new_status, confidence_score, applied, metadata
FROM oms_meter_status_events;
-- ... and the meter's power_status is unchanged.
SELECT meter_number, power_status, last_power_change FROM oms_meters WHERE meter_number = 'M12345678';
SELECT t.external_ticket_id, t.status, t.intake_timestamp, h.status AS history_status, h.changed_at,
       r.raw_payload->>'ticketId' AS raw_ticket
FROM callcenter_tickets t JOIN callcenter_ticket_status_history h ON h.ticket_id = t.id
JOIN callcenter_raw_messages r ON r.ticket_id = t.id;

-- A ticket without a meter number is stored unlinked.
SELECT insert_callcenter_ticket_from_json_with_meter_link('{"ticketId": "TC_TEST_002",
  "timestamp": "2025-09-30T10:16:00Z", "customer": {"phone": "+962-7-9876-5432", "address": "7 Hill St, Amman",
  "notes": "whole street dark"}, "intake": {"intakeId": "IN-0002"}, "source": "call-center-intake"}') IS NOT NULL AS stored;
SELECT t.external_ticket_id, t.intake_id, t.source, c.meter_number, c.meter_id IS NOT NULL AS linked, c.notes
FROM callcenter_tickets t JOIN callcenter_customers c ON c.ticket_id = t.id ORDER BY 1;
SELECT count(*) AS status_events FROM oms_meter_status_events;

-- intake_id and oms_event_id repeat in real traffic: not unique.
SELECT insert_callcenter_ticket_from_json('{"ticketId": "TC_TEST_003", "timestamp": "2025-09-30T10:17:00Z",
  "customer": {"phone": "1"}, "intake": {"intakeId": "IN-0002", "omsEventId": "OMS123"}}') IS NOT NULL AS stored;
SELECT insert_callcenter_ticket_from_json('{"ticketId": "TC_TEST_004", "timestamp": "2025-09-30T10:17:00Z",
  "customer": {"phone": "2"}, "intake": {"intakeId": "IN-0002", "omsEventId": "OMS123"}}') IS NOT NULL AS stored;

-- Redelivery returns the original id and writes nothing.
SELECT insert_callcenter_ticket_from_json_with_meter_link('{"ticketId": "TC_TEST_001",
  "timestamp": "2025-09-30T10:15:00Z", "customer": {"phone": "+962-7-1234-5678", "meterNumber": "M12345678"}}')
  = (SELECT id FROM callcenter_tickets WHERE external_ticket_id = 'TC_TEST_001') AS same_id;
SELECT (SELECT count(*) FROM callcenter_tickets) AS tickets, (SELECT count(*) FROM callcenter_customers) AS customers,
       (SELECT count(*) FROM oms_meter_status_events) AS status_events;
ROLLBACK;
