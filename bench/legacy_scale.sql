-- The legacy fixture (tests/integration/legacy_fixture.py) scaled up, to time CREATE EXTENSION's
-- adoption on a sizeable database (the consumers' pause): 1,000,000 meters, 2,000,000 status
-- events, 500,000 ONU events, about 650 MB. In an empty database:
--   /usr/bin/python3 tests/integration/legacy_fixture.py "host=... dbname=..."
--   psql -f bench/legacy_scale.sql; VACUUM ANALYZE;
--   \timing on; CREATE EXTENSION oms_correlation;      (5.6 s here, 2026-11-27)
INSERT INTO oms_meters (meter_number, feeder_id, substation_id, power_status, communication_status, last_communication)
SELECT 'SM' || n, (SELECT id FROM network_feeders WHERE feeder_id = 'LFD002'),
       (SELECT id FROM network_substations WHERE substation_id = 'LSS001'), 'on', 'online', now()
FROM generate_series(1, 1000000) n;
INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, previous_status, new_status, event_timestamp, confidence_score)
SELECT id, 'power_off', 'onu', 'on', 'off', now(), 0.85 FROM oms_meters, generate_series(1, 2) WHERE meter_number LIKE 'SM%';
INSERT INTO onus (id) SELECT 5000000 + n FROM generate_series(1, 1000) n;
INSERT INTO onu_events (event_id, onu_id, event_type, "timestamp", raw_payload)
SELECT 'SE' || n, 5000000 + n % 1000 + 1, 'ONU_LastGaspAlert', timestamptz '2025-01-01' + n * interval '1 second', '{}'
FROM generate_series(1, 500000) n;
