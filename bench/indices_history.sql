-- A year of history for the reliability indices benchmark (issue 12): on the bench grid
-- (bench/grid.sql), 100,000 restored outages over 2025, each of one to five meters of one DP,
-- a fifth of them momentary (1-4 minutes) and the rest sustained (6 minutes to 5 hours), with
-- each meter's own off and on times (step restoration); and 1,000,000 status events (each
-- membership's power-off and power-on, and communication events to make up the number).
-- Loaded straight into the tables: the benchmark times the indices, not the ingest.

CREATE TEMP TABLE history_meters AS
SELECT row_number() OVER (ORDER BY m.id) AS n, m.id, coalesce(m.customer_id, m.id) AS customer_key, m.customer_id,
       m.dp_id, coalesce(m.feeder_id, dp.feeder_id) AS feeder_id, m.substation_id
FROM oms_meters m LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id
WHERE m.status = 'active';
CREATE INDEX ON history_meters (n);
ANALYZE history_meters;

CREATE TEMP TABLE bench_outages AS
SELECT g AS k, oms_uuid_v7() AS id,
       timestamptz '2025-01-01 00:00:00+00' + (random() * 364 * 86400) * interval '1 second' AS started,
       CASE WHEN random() < 0.2 THEN 1 + random() * 3 ELSE 6 + random() * 294 END AS minutes,
       1 + (random() * 4)::int AS meters,
       1 + (random() * ((SELECT count(*) FROM history_meters) - 6))::bigint AS first_meter
FROM generate_series(1, 100000) AS g;

INSERT INTO oms_outage_events (id, event_id, event_type, status, severity, confidence_score, affected_customers_count,
                               customers_out, description, substation_id, feeder_id, dp_id, first_detected_at,
                               actual_restoration_time, scope, device_key)
SELECT o.id, 'BENCH_HIST_' || o.k, 'outage', 'restored', 'medium', 0.9, o.meters, 0, 'history',
       m.substation_id, m.feeder_id, m.dp_id, o.started, o.started + o.minutes * interval '1 minute',
       'service', 'service:meter:' || m.id
FROM bench_outages o JOIN history_meters m ON m.n = o.first_meter;

INSERT INTO oms_outage_meters (outage_id, meter_id, off_at, on_at, customer_key, customer_id, dp_id, feeder_id,
                               substation_id, first_source, first_source_event_id)
SELECT o.id, m.id, o.started + j * interval '10 seconds',
       o.started + o.minutes * interval '1 minute' * (0.5 + 0.5 * j / o.meters),
       m.customer_key, m.customer_id, m.dp_id, m.feeder_id, m.substation_id, 'onu', 'BENCH_HIST_' || o.k
FROM bench_outages o CROSS JOIN LATERAL generate_series(0, o.meters - 1) AS j
JOIN history_meters m ON m.n = o.first_meter + j;

INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status, new_status,
                                     event_timestamp, confidence_score, applied)
SELECT om.meter_id, e.event_type, 'onu', om.first_source_event_id, e.previous, e.next, e.at, 0.85, true
FROM oms_outage_meters om
CROSS JOIN LATERAL (VALUES ('power_off', 'on', 'off', om.off_at), ('power_on', 'off', 'on', om.on_at))
    AS e(event_type, previous, next, at)
WHERE om.first_source_event_id LIKE 'BENCH_HIST_%';

INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status, new_status,
                                     event_timestamp, confidence_score, applied)
SELECT m.id, 'communication_restored', 'kaifa', 'BENCH_COMM_' || g, 'offline', 'online',
       timestamptz '2025-01-01 00:00:00+00' + (random() * 364 * 86400) * interval '1 second', 0.9, true
FROM generate_series(1, 1000000 - (SELECT count(*) FROM oms_meter_status_events)) AS g
JOIN history_meters m ON m.n = 1 + g % (SELECT count(*) FROM history_meters);

ANALYZE oms_outage_events;
ANALYZE oms_outage_meters;
ANALYZE oms_meter_status_events;
