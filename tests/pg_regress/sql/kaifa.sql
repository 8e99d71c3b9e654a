-- SPEC §4.3: Kaifa head-end messages.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set VERBOSITY terse
BEGIN;

-- The minimal message (no header) turns M12345678 off, by severity critical.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"message_type": "EndDeviceEvent",
  "timestamp": "2025-09-30T10:10:00Z", "payload": {"event_id": "KAIFA_TEST_001", "severity": "critical",
  "reason": "Last gasp signal detected", "assets": {"ns2:mRID": "M12345678"}}}') IS NOT NULL AS stored;
SELECT meter_number, power_status, communication_status, last_power_change, asset_mrid
FROM oms_meters WHERE meter_number = 'M12345678';
SELECT event_type, source_type, source_event_id, previous_status, new_status, confidence_score,
       metadata->>'classified_by' AS classified_by
FROM oms_meter_status_events;
SELECT k.message_type, k.event_timestamp, k.delivery_key, p.event_id_value, p.severity, a.mrid,
       a.meter_id = (SELECT id FROM oms_meters WHERE meter_number = 'M12345678') AS asset_linked,
       (SELECT count(*) FROM kaifa_event_headers) AS headers
FROM kaifa_events k JOIN kaifa_event_payloads p ON p.event_id = k.id JOIN kaifa_event_assets a ON a.event_id = k.id;

-- Code 3.26.0.85 with severity low turns a meter off; the device's clock dates it.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"message_type": "EndDeviceEvent", "timestamp": "2025-09-30T10:10:02Z",
  "header": {"verb": "created", "noun": "EndDeviceEvents", "revision": "2.0", "timestamp": "2025-09-30T10:10:02Z",
    "source": "HES-KAIFA", "async_reply_flag": false, "ack_required": true,
    "message_id": "8f1c2a9e-3b5d-4c11-9e0a-7d2f6b1c0a55", "correlation_id": "corr-000451", "comment": "push",
    "user": {"ns1:UserID": "hes", "ns1:Organization": "KAIFA"}},
  "payload": {"event_id": "KAIFA_EVT_000451", "created_date_time": "2025-09-30T10:09:58Z", "issuer_id": "HES01",
    "reason": "Power outage", "severity": "low", "event_type": {"@ref": "3.26.0.85"},
    "assets": {"ns2:mRID": "M23456789", "ns2:Names": {"ns2:name": "Meter M23456789", "ns2:NameType": {"ns2:name": "MeterNo"}}},
    "usage_point": {"ns2:mRID": "UP-000451"},
    "event_details": [{"ns2:name": "phase", "ns2:value": "A"}, {"ns2:name": "voltage", "ns2:value": "0"}],
    "names": {"ns2:name": "PowerOff", "ns2:NameType": {"ns2:name": "EventName", "ns2:description": "event"}},
    "status": {"ns2:dateTime": "2025-09-30T10:09:58Z", "ns2:reason": "outage", "ns2:remark": "", "ns2:value": "off"}},
  "metadata": {"source": "kaifa-consumer", "processed_at": "2025-09-30T10:10:03Z"},
  "original_message": {"timestamp": "2025-09-30T10:10:02Z", "source": "HES-KAIFA", "topic": "hes-kaifa-outage-topic"}}') IS NOT NULL AS stored;
SELECT meter_number, power_status, communication_status, last_power_change FROM oms_meters WHERE meter_number = 'M23456789';
-- Every part of the message is stored.
SELECT (SELECT count(*) FROM kaifa_event_headers) AS headers, (SELECT count(*) FROM kaifa_event_users) AS users,
       (SELECT count(*) FROM kaifa_event_payloads) AS payloads, (SELECT count(*) FROM kaifa_event_assets) AS assets,
       (SELECT count(*) FROM kaifa_event_usage_points) AS usage_points, (SELECT count(*) FROM kaifa_event_details) AS details,
       (SELECT count(*) FROM kaifa_event_names) AS names, (SELECT count(*) FROM kaifa_event_status) AS status,
       (SELECT count(*) FROM kaifa_event_metadata) AS metadata, (SELECT count(*) FROM kaifa_event_original_messages) AS originals;
SELECT verb, noun, revision, header_timestamp, source, async_reply_flag, ack_required, message_id, correlation_id
FROM kaifa_event_headers;
SELECT user_id, organization FROM kaifa_event_users;
SELECT u.mrid, m.meter_number AS linked_meter FROM kaifa_event_usage_points u LEFT JOIN oms_meters m ON m.id = u.meter_id;
SELECT name, value FROM kaifa_event_details ORDER BY name;
SELECT name, name_type, name_description, payload_id IS NOT NULL AS on_payload FROM kaifa_event_names;
SELECT date_time, reason, remark, value, payload_id IS NOT NULL AS on_payload FROM kaifa_event_status;
SELECT source, processed_at FROM kaifa_event_metadata;
SELECT topic, original_timestamp FROM kaifa_event_original_messages;

-- Code 3.26.0.216 turns it back on.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T10:40:00Z",
  "payload": {"event_id": "KAIFA_EVT_000452", "created_date_time": "2025-09-30T10:39:58Z",
  "event_type": {"@ref": "3.26.0.216"}, "usage_point": {"ns2:mRID": "UP-000451"}}}') IS NOT NULL AS stored;
SELECT meter_number, power_status, communication_status FROM oms_meters WHERE meter_number = 'M23456789';

-- The consumer's shape: naive timestamps, "" header fields, string flags, details as one object.
SET LOCAL TimeZone = 'Asia/Amman';
SELECT insert_kaifa_event_from_json_with_meter_sync('{"message_type": "EndDeviceEvent",
  "timestamp": "2025-09-30T13:10:02.418311",
  "header": {"verb": "created", "noun": "EndDeviceEvents", "revision": "", "timestamp": "",
    "source": "HES", "async_reply_flag": "false", "ack_required": "", "message_id": "", "correlation_id": null},
  "payload": {"event_id": "EDE-20250930-000777", "created_date_time": "", "severity": "",
    "assets": {"ns2:mRID": "M12345678"}, "event_details": {"ns2:name": "voltage", "ns2:value": "0"},
    "event_type": {"@ref": "3.26.0.85"}, "names": {}, "status": {}, "usage_point": {"ns2:mRID": ""}}}') IS NOT NULL AS stored;
SET LOCAL TimeZone = 'UTC';
-- The naive time was read in the session's zone (Amman, UTC+3): 10:10:02 UTC.
SELECT event_timestamp, delivery_key FROM kaifa_events WHERE delivery_key = 'event_id:EDE-20250930-000777';
SELECT async_reply_flag, ack_required, message_id, revision FROM kaifa_event_headers h
JOIN kaifa_events k ON k.id = h.event_id WHERE k.delivery_key = 'event_id:EDE-20250930-000777';

-- A communication-only code refreshes last_communication and sets the meter online, no power change.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T11:00:00Z",
  "payload": {"event_id": "KAIFA_COMM_1", "event_type": {"@ref": "3.1.0.1"}, "severity": "critical",
  "assets": {"ns2:mRID": "M12345678"}}}') IS NOT NULL AS stored;
SELECT meter_number, power_status, communication_status, last_communication FROM oms_meters WHERE meter_number = 'M12345678';

-- Power quality: stored, no state change.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T11:05:00Z",
  "payload": {"event_id": "KAIFA_PQ_1", "event_type": {"@ref": "3.26.38.85"}, "assets": {"ns2:mRID": "M12345678"}}}') IS NOT NULL AS stored;
SELECT count(*) AS status_events_for_pq FROM oms_meter_status_events WHERE source_event_id = 'KAIFA_PQ_1';

-- Redelivery: by message_id, and by event_id when message_id is empty.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T10:10:02Z",
  "header": {"message_id": "8f1c2a9e-3b5d-4c11-9e0a-7d2f6b1c0a55"}, "payload": {"event_id": "OTHER"}}')
   = (SELECT id FROM kaifa_events WHERE delivery_key = 'message_id:8f1c2a9e-3b5d-4c11-9e0a-7d2f6b1c0a55') AS same_id;
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T10:10:00Z", "header": {"message_id": ""},
  "payload": {"event_id": "KAIFA_TEST_001", "severity": "critical", "assets": {"ns2:mRID": "M12345678"}}}')
   = (SELECT id FROM kaifa_events WHERE delivery_key = 'event_id:KAIFA_TEST_001') AS same_id;
SELECT (SELECT count(*) FROM kaifa_events) AS events, (SELECT count(*) FROM kaifa_event_payloads) AS payloads,
       (SELECT count(*) FROM oms_meter_status_events) AS status_events;

-- A message for a meter nobody knows is stored, unlinked.
SELECT insert_kaifa_event_from_json_with_meter_sync('{"timestamp": "2025-09-30T10:10:00Z",
  "payload": {"event_id": "KAIFA_UNKNOWN", "severity": "critical", "assets": {"ns2:mRID": "M00000000"}}}') IS NOT NULL AS stored;
SELECT mrid, meter_id FROM kaifa_event_assets WHERE mrid = 'M00000000';
ROLLBACK;
