-- What operators see of the correlator (SPEC §5), in one place: how far behind it is, what its
-- last batch did, whether its worker runs, and the signals it set aside.
CREATE VIEW @extschema@.oms_correlation_status AS
SELECT q.depth AS queue_depth,
       q.oldest_enqueued_at,
       pg_catalog.clock_timestamp() - q.oldest_enqueued_at AS oldest_pending_age,
       s.last_batch_at, s.last_batch_signals, s.last_batch_ms, s.last_batch_lag_ms, s.last_batch_by,
       s.batches, s.signals AS signals_correlated,
       w.pid AS worker_pid, w.state AS worker_state, w.backend_start AS worker_started_at,
       (SELECT count(*) FROM @extschema@.oms_correlation_set_aside) AS set_aside,
       s.newest_event_at, s.log_start
FROM @extschema@.oms_correlation_state s
CROSS JOIN LATERAL (SELECT count(*) AS depth, min(enqueued_at) AS oldest_enqueued_at
                    FROM @extschema@.oms_correlation_queue) AS q
LEFT JOIN LATERAL (SELECT a.pid, a.state, a.backend_start FROM pg_catalog.pg_stat_activity a
                   WHERE a.datname = pg_catalog.current_database() AND a.application_name = 'oms_correlation worker'
                   ORDER BY a.backend_start LIMIT 1) AS w ON true
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
