-- The demo grid: the users' runbook scenario (SPEC §4.1) plus the meters the sample payloads
-- in ../shared/examples name. Times are fixed around the samples (2025-09-30, 10:00 UTC), so a
-- SCADA alarm at 10:00 sees the same fresh and silent meters on every run.
--
-- SS001 feeds FD001 and FD002.
--   FD002 has 150 active meters: 30 off and offline, 15 on but silent since 08:00, 95 on and
--   fresh, 10 with power unknown (fresh, online), plus 2 decommissioned meters that never count.
--   FD001 has ONU 3230316's building (M12345678, M23456789) and 20 fresh meters.
-- SS002 feeds FD003, which no sample touches.

INSERT INTO network_substations (substation_id, name, location_lat, location_lng) VALUES
    ('SS001', 'Amman North 132/33 kV', 31.9400000, 35.9700000),
    ('SS002', 'Zarqa East 33/11 kV', 32.0700000, 36.0900000);

INSERT INTO network_feeders (feeder_id, substation_id, name, voltage_level)
SELECT f.code, s.id, f.name, '11kV'
FROM (VALUES ('FD001', 'SS001', 'Jubeiha 11 kV'), ('FD002', 'SS001', 'Shmeisani 11 kV'),
             ('FD003', 'SS002', 'Russeifa 11 kV')) AS f(code, substation, name)
JOIN network_substations s ON s.substation_id = f.substation;

INSERT INTO network_distribution_points (dp_id, feeder_id, name)
SELECT 'DP-' || f.feeder_id || '-' || lpad(n::text, 2, '0'), f.id, 'Transformer ' || n
FROM network_feeders f, generate_series(1, 5) AS n;

INSERT INTO oms_customers (customer_id, customer_name, phone, address)
SELECT 'C-FD002-' || lpad(n::text, 3, '0'), 'Customer ' || n, '+962-7-0000-' || lpad(n::text, 4, '0'),
       n || ' Shmeisani St, Amman'
FROM generate_series(1, 150) AS n;
INSERT INTO oms_customers (customer_id, customer_name, phone, address) VALUES
    ('C-M12345678', 'Building 3230316, flat 1', '+962-7-1234-5678', '123 Main St, Amman'),
    ('C-M23456789', 'Building 3230316, flat 2', '+962-7-2345-6789', '123 Main St, Amman');

-- FD002: the runbook's 150 meters, in four groups by number.
INSERT INTO oms_meters (meter_number, customer_id, substation_id, feeder_id, dp_id, location_lat, location_lng,
                        power_status, communication_status, last_communication, last_power_change, status)
SELECT 'M-FD002-' || lpad(n::text, 3, '0'), c.id, s.id, f.id, dp.id,
       31.95 + n / 10000.0, 35.91 + n / 10000.0,
       CASE WHEN n <= 30 THEN 'off' WHEN n <= 140 THEN 'on' ELSE 'unknown' END,
       CASE WHEN n <= 30 THEN 'offline' ELSE 'online' END,
       CASE WHEN n <= 30 THEN timestamptz '2025-09-30 09:00:00+00'
            WHEN n <= 45 THEN timestamptz '2025-09-30 08:00:00+00'
            ELSE timestamptz '2025-09-30 09:58:00+00' END,
       timestamptz '2025-09-29 12:00:00+00',
       'active'
FROM generate_series(1, 150) AS n
JOIN network_feeders f ON f.feeder_id = 'FD002'
JOIN network_substations s ON s.substation_id = 'SS001'
JOIN network_distribution_points dp ON dp.dp_id = 'DP-FD002-0' || (1 + (n - 1) / 30)
JOIN oms_customers c ON c.customer_id = 'C-FD002-' || lpad(n::text, 3, '0');

INSERT INTO oms_meters (meter_number, feeder_id, substation_id, power_status, communication_status, last_communication, status)
SELECT 'M-FD002-OLD-' || n, f.id, f.substation_id, 'off', 'offline', timestamptz '2024-01-01 00:00:00+00', 'decommissioned'
FROM generate_series(1, 2) AS n JOIN network_feeders f ON f.feeder_id = 'FD002';

-- FD001: ONU 3230316 serves one building with two meters; the Kaifa head-end knows M23456789 by
-- its mRIDs, and M12345678 only by a number equal to its asset mRID.
INSERT INTO onus (id, onu_serial_no, name, model, location_lat, location_lng)
VALUES (3230316, '48575443ED8345B0', 'Building 3230316', 'HG8245H', 31.9454000, 35.9284000);

INSERT INTO oms_meters (meter_number, meter_type, customer_id, substation_id, feeder_id, dp_id, building_id,
                        onu_id, onu_serial_no, asset_mrid, usage_point_mrid,
                        power_status, communication_status, last_communication)
SELECT v.number, 'smart', c.id, s.id, f.id, dp.id, 'B-3230316', 3230316, '48575443ED8345B0', v.asset, v.usage_point,
       'on', 'online', timestamptz '2025-09-30 09:58:00+00'
FROM (VALUES ('M12345678', NULL, NULL), ('M23456789', 'M23456789', 'UP-000451')) AS v(number, asset, usage_point)
JOIN network_feeders f ON f.feeder_id = 'FD001'
JOIN network_substations s ON s.substation_id = 'SS001'
JOIN network_distribution_points dp ON dp.dp_id = 'DP-FD001-01'
JOIN oms_customers c ON c.customer_id = 'C-' || v.number;

INSERT INTO meters (meter_id, onu_id, meter_type, oms_meter_id)
SELECT m.meter_number, m.onu_id, 'smart', m.id FROM oms_meters m WHERE m.onu_id = 3230316;

INSERT INTO oms_meters (meter_number, substation_id, feeder_id, dp_id, power_status, communication_status, last_communication)
SELECT 'M-FD001-' || lpad(n::text, 3, '0'), f.substation_id, f.id, dp.id, 'on', 'online', timestamptz '2025-09-30 09:58:00+00'
FROM generate_series(1, 20) AS n
JOIN network_feeders f ON f.feeder_id = 'FD001'
JOIN network_distribution_points dp ON dp.dp_id = 'DP-FD001-0' || (1 + (n - 1) / 4);

-- FD003 on SS002: a few meters mapped through network_feeder_meters rather than their own column.
INSERT INTO oms_meters (meter_number, power_status, communication_status, last_communication)
SELECT 'M-FD003-' || lpad(n::text, 3, '0'), 'on', 'online', timestamptz '2025-09-30 09:58:00+00'
FROM generate_series(1, 5) AS n;
INSERT INTO network_feeder_meters (feeder_id, meter_id, circuit_path)
SELECT f.id, m.id, 'FD003/main' FROM network_feeders f, oms_meters m
WHERE f.feeder_id = 'FD003' AND m.meter_number LIKE 'M-FD003-%';
