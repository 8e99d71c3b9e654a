-- Synthetic grid for the benchmarks.
--
-- Substation BSS1 has the four measured feeders, of 150, 1,000, 10,000 and 100,000 meters; BSS2
-- has 50 background feeders of 1,000 meters, so indexes and tables hold a realistic 161,150
-- meters. Every meter has a Kaifa asset mRID (and every second one a usage point), belongs to a
-- building of 4 meters served by one ONU, and to a distribution point of 50 meters.
-- bench_set_feeder_state() puts a feeder's meters "all fresh and on" or "all stale/offline".

INSERT INTO network_substations (substation_id, name) VALUES ('BSS1', 'Bench measured'), ('BSS2', 'Bench background');

INSERT INTO network_feeders (feeder_id, substation_id, name)
SELECT code, (SELECT id FROM network_substations WHERE substation_id = 'BSS1'), code
FROM (VALUES ('F150'), ('F1K'), ('F10K'), ('F100K')) AS f(code)
UNION ALL
SELECT 'FBG' || n, (SELECT id FROM network_substations WHERE substation_id = 'BSS2'), 'background ' || n
FROM generate_series(1, 50) AS n;

CREATE TEMP TABLE bench_plan AS
SELECT f.id AS feeder_id, f.substation_id, f.feeder_id AS code, size
FROM network_feeders f
JOIN (VALUES ('F150', 150), ('F1K', 1000), ('F10K', 10000), ('F100K', 100000)) AS s(code, size) ON s.code = f.feeder_id
UNION ALL
SELECT f.id, f.substation_id, f.feeder_id, 1000 FROM network_feeders f WHERE f.feeder_id LIKE 'FBG%';

INSERT INTO network_distribution_points (dp_id, feeder_id)
SELECT p.code || '-DP' || d, p.feeder_id FROM bench_plan p, generate_series(0, (p.size - 1) / 50) AS d;

-- Meters are numbered across the whole grid; every 4 consecutive meters share a building and ONU.
CREATE TEMP TABLE bench_meters AS
SELECT p.feeder_id, p.substation_id, p.code, k, row_number() OVER (ORDER BY p.code, k) AS n
FROM bench_plan p, generate_series(1, p.size) AS k;

INSERT INTO onus (id, onu_serial_no)
SELECT 1000000 + (n - 1) / 4, 'BENCH' || ((n - 1) / 4) FROM bench_meters WHERE (n - 1) % 4 = 0;

INSERT INTO oms_meters (meter_number, substation_id, feeder_id, dp_id, building_id, onu_id, asset_mrid,
                        usage_point_mrid, power_status, communication_status, last_communication)
SELECT 'BM' || m.n, m.substation_id, m.feeder_id, dp.id, 'BB' || ((m.n - 1) / 4), 1000000 + (m.n - 1) / 4,
       'BA' || m.n, CASE WHEN m.n % 2 = 0 THEN 'BU' || m.n END, 'on', 'online', now()
FROM bench_meters m
JOIN network_distribution_points dp ON dp.dp_id = m.code || '-DP' || ((m.k - 1) / 50);

CREATE OR REPLACE FUNCTION bench_set_feeder_state(p_feeder text, p_state text, p_at timestamptz)
RETURNS bigint LANGUAGE sql AS $$
    WITH reset AS (
        UPDATE oms_meters m
        SET power_status = CASE p_state WHEN 'fresh' THEN 'on' ELSE 'off' END,
            communication_status = CASE p_state WHEN 'fresh' THEN 'online' ELSE 'offline' END,
            last_communication = CASE p_state WHEN 'fresh' THEN p_at - interval '1 minute' ELSE p_at - interval '1 day' END,
            last_event_at = NULL
        FROM network_feeders f
        WHERE f.feeder_id = p_feeder AND m.feeder_id = f.id
        RETURNING 1
    ), closed AS (
        UPDATE oms_outage_events o SET status = 'restored', actual_restoration_time = p_at
        FROM network_feeders f
        WHERE f.feeder_id = p_feeder AND o.feeder_id = f.id AND o.status IN ('detected', 'confirmed', 'in_progress')
    )
    SELECT count(*) FROM reset
$$;

-- The reference limit: one plain row insert of the same JSON.
CREATE TABLE bench_plain_insert (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz DEFAULT now());

ANALYZE;
