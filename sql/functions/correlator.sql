-- What operators see of the correlator (SPEC §5), in one place: how far behind it is, what its
-- last batch did, whether its worker runs, and the signals it set aside.
CREATE VIEW @extschema@.oms_correlation_status AS
SELECT q.depth AS queue_depth,
       q.oldest_enqueued_at,
       pg_catalog.clock_timestamp() - q.oldest_enqueued_at AS oldest_pending_age,
       s.last_batch_at, s.last_batch_signals, s.last_batch_ms, s.last_batch_lag_ms, s.last_batch_by,
       s.batches, s.signals AS signals_correlated,
       w.pid AS worker_pid,
       CASE WHEN w.serving THEN w.state WHEN w.pid IS NOT NULL THEN 'waiting for the lock' END AS worker_state,
       w.backend_start AS worker_started_at,
       (SELECT count(*) FROM @extschema@.oms_correlation_set_aside) AS set_aside,
       s.newest_event_at, s.log_start,
       -- Areas holding outages the declaration delay has not let out yet, and the oldest's start.
       p.areas AS areas_pending_declaration, p.since AS oldest_pending_declaration
FROM @extschema@.oms_correlation_state s
CROSS JOIN LATERAL (SELECT count(*) AS depth, min(enqueued_at) AS oldest_enqueued_at
                    FROM @extschema@.oms_correlation_queue) AS q
CROSS JOIN LATERAL (SELECT count(*) AS areas, min(since) AS since
                    FROM @extschema@.oms_correlation_pending) AS p
-- The worker that serves the database holds its lock (src/correlation/worker.rs); one started with
-- the server while another held it waits, and is shown only when no worker serves.
LEFT JOIN LATERAL (SELECT a.pid, a.state, a.backend_start,
                          EXISTS (SELECT FROM pg_catalog.pg_locks l
                                  WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
                                    AND l.database = a.datid AND l.classid = 1869440369 AND l.objid = 0
                                    AND l.objsubid = 2) AS serving
                   FROM pg_catalog.pg_stat_activity a
                   WHERE a.datname = pg_catalog.current_database() AND a.application_name = 'oms_correlation worker'
                   ORDER BY serving DESC, a.backend_start LIMIT 1) AS w ON true
WHERE s.id = 1;

-- Puts the signals set aside back on the queue (after the cause is fixed); returns how many.
CREATE FUNCTION @extschema@.oms_correlation_retry() RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    WITH taken AS (
        DELETE FROM oms_correlation_set_aside RETURNING at, power, source_type, source_event_id, meters, enqueued_at
    ), queued AS (
        INSERT INTO oms_correlation_queue (at, power, source_type, source_event_id, meters, enqueued_at)
        SELECT at, power, source_type, source_event_id, meters, enqueued_at FROM taken
        RETURNING 1
    )
    SELECT count(*)::integer FROM queued
$$;

-- Meters the correlator took into an outage at a DP other than the one the registry names, in step
-- with that DP's outage (issue 22): the GIS team's list of mapping errors to check. One row per
-- meter: where the registry has it, how often its evidence matched another DP's outage, which DPs,
-- and when last.
CREATE VIEW @extschema@.oms_suspected_mismapped_meters AS
SELECT m.id AS meter_id, m.meter_number, rdp.dp_id AS registered_dp,
       count(*) AS times_suspected,
       array_agg(DISTINCT odp.dp_id ORDER BY odp.dp_id) FILTER (WHERE odp.dp_id IS NOT NULL) AS matched_dps,
       max(om.off_at) AS last_suspected_at
FROM @extschema@.oms_outage_meters om
JOIN @extschema@.oms_meters m ON m.id = om.meter_id
JOIN @extschema@.oms_outage_events o ON o.id = om.outage_id
LEFT JOIN @extschema@.network_distribution_points rdp ON rdp.id = m.dp_id
LEFT JOIN @extschema@.network_distribution_points odp ON odp.id = o.dp_id
WHERE om.suspected_mismapped
GROUP BY m.id, m.meter_number, rdp.dp_id;

-- Why an outage stands where it does (issue 22): its evidence by source and time, the rule that
-- placed it at its device with that rule's thresholds, each veto that kept it from going higher, the
-- meters it took in as suspected mis-mapped, and the outages it took in. Thresholds are the settings as this session sees them (their defaults
-- before the library is loaded in it); the correlator decided under its own session's.
CREATE FUNCTION @extschema@.oms_outage_explain(p_outage uuid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    WITH setting AS (
        SELECT jsonb_object_agg(d.name, coalesce(nullif(current_setting('oms_correlation.' || d.name, true), ''),
                                                 d.fallback)) AS s
        FROM (VALUES ('rollup_window', '5min'), ('rollup_min_meters', '3'), ('rollup_dp_min_share', '0.25'),
                     ('rollup_dp_fraction', '0.5'),
                     ('rollup_min_children', '2'), ('rollup_feeder_fraction', '0.3'), ('mismap_window', '10s'),
                     ('declaration_delay', '60s'))
             AS d(name, fallback)
    )
    SELECT jsonb_build_object(
        'outage_event_id', o.id, 'event_id', o.event_id, 'device_key', o.device_key, 'scope', o.scope,
        'status', o.status, 'first_detected_at', o.first_detected_at, 'confidence', o.confidence_score,
        'affected_customers_count', o.affected_customers_count,
        'meters', (SELECT count(*) FROM oms_outage_meters om WHERE om.outage_id = o.id),
        'rule', jsonb_build_object(
            'name', o.placement, 'description', o.description,
            'thresholds', CASE o.placement
                WHEN 'dp_rollup' THEN jsonb_build_object(
                    'rollup_window', st.s ->> 'rollup_window', 'rollup_min_meters', (st.s ->> 'rollup_min_meters')::int,
                    'rollup_dp_min_share', (st.s ->> 'rollup_dp_min_share')::numeric,
                    'rollup_dp_fraction', (st.s ->> 'rollup_dp_fraction')::numeric,
                    'mismap_window', st.s ->> 'mismap_window')
                WHEN 'feeder_rollup' THEN jsonb_build_object(
                    'rollup_window', st.s ->> 'rollup_window', 'rollup_min_children', (st.s ->> 'rollup_min_children')::int,
                    'rollup_feeder_fraction', (st.s ->> 'rollup_feeder_fraction')::numeric)
                -- A lone service outage of last gasps was held this long before it was written.
                WHEN 'service' THEN jsonb_build_object('declaration_delay', st.s ->> 'declaration_delay')
                ELSE '{}'::jsonb END),
        'evidence', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'source_type', es.source_type, 'source_event_id', es.source_event_id,
                       'at', coalesce(es.event_timestamp, es.detected_at), 'weight', es.correlation_weight,
                       'power', es.event_data ->> 'power')
                   ORDER BY coalesce(es.event_timestamp, es.detected_at), es.source_type, es.source_event_id)
            FROM oms_event_sources es WHERE es.outage_event_id = o.id), '[]'::jsonb),
        -- A DP outage on a feeder whose breaker reports to SCADA was never weighed for a feeder
        -- roll-up: with how many DP outages of the feeder began within the roll-up window of it.
        'vetoes', CASE WHEN o.scope = 'distribution_point' AND f.scada_monitored THEN jsonb_build_array(jsonb_build_object(
                'rule', 'scada_monitored', 'device_key', 'feeder:' || f.id, 'feeder', f.feeder_id,
                'detail', 'feeder ' || f.feeder_id || ' reports to SCADA and sent no outage alarm: it is not predicted out',
                'dp_outages_within_rollup_window', (
                    SELECT count(*) FROM oms_outage_events d
                    WHERE d.feeder_id = f.id AND d.scope = 'distribution_point' AND d.status <> 'merged'
                      AND d.first_detected_at BETWEEN o.first_detected_at - (st.s ->> 'rollup_window')::interval
                                                  AND o.first_detected_at + (st.s ->> 'rollup_window')::interval)))
            ELSE '[]'::jsonb END,
        'suspected_mismapped', coalesce((
            SELECT jsonb_agg(jsonb_build_object('meter_number', m.meter_number, 'registered_dp', rdp.dp_id,
                                                'off_at', om.off_at) ORDER BY m.meter_number, om.off_at)
            FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
            LEFT JOIN network_distribution_points rdp ON rdp.id = m.dp_id
            WHERE om.outage_id = o.id AND om.suspected_mismapped), '[]'::jsonb),
        'took_in', coalesce((
            SELECT jsonb_agg(jsonb_build_object('outage_event_id', m.id, 'device_key', m.device_key, 'scope', m.scope,
                                                'merged_at', m.merged_at) ORDER BY m.merged_at, m.id)
            FROM oms_outage_events m WHERE m.merged_into = o.id AND m.status = 'merged'), '[]'::jsonb))
    FROM oms_outage_events o
    CROSS JOIN setting st
    LEFT JOIN network_feeders f ON f.id = o.feeder_id
    WHERE o.id = p_outage
$$;
