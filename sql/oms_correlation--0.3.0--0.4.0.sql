-- oms_correlation 0.3.0 -> 0.4.0.
-- Fresh installs get the same objects from sql/schema and sql/functions;
-- tests/integration/test_upgrade.py checks that both paths agree, from every released version.
\echo Use "ALTER EXTENSION oms_correlation UPDATE TO '0.4.0'" to load this file. \quit

-- What 0.4.0 changes (issue 21, README "Outages: the correlator"): ingest queues the power signal and
-- one correlator drains the queue in batches, replaying each area in event time. Outages keep their
-- rows; each gains when it was opened and merged, each span and source the outage it was first
-- placed in. Signals dated before this update are not replayed (oms_correlation_state.log_start).

-- Its arguments changed (a time to apply the rule at): the old one goes before the library's
-- functions are made again.
DROP FUNCTION @extschema@.oms_storm_mode_refresh();

-- 1. The library. From 0.4.0 on, the library has one name, $libdir/oms_correlation (the control
-- file's module_pathname), so that LOAD 'oms_correlation' and shared_preload_libraries find it.
-- Every C function is bound to it first, so that nothing below runs 0.3.0's code.
--@rebind-begin
CREATE OR REPLACE FUNCTION @extschema@."insert_callcenter_ticket_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_callcenter_ticket_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_callcenter_ticket_from_json_with_meter_link"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_callcenter_ticket_from_json_with_meter_link_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_kaifa_event_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_kaifa_event_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_kaifa_event_from_json_with_meter_sync"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_kaifa_event_from_json_with_meter_sync_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_onu_event_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS INT /* Option < i32 > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_onu_event_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_onu_event_from_json_with_meter_sync"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS INT /* Option < i32 > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_onu_event_from_json_with_meter_sync_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_scada_event_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_scada_event_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_scada_event_with_meter_check"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS jsonb /* Option < JsonB > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'insert_scada_event_with_meter_check_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_correlate_pending"() RETURNS TABLE (
	"batches" INT,  /* i32 */
	"signals" INT,  /* i32 */
	"set_aside" INT,  /* i32 */
	"outages_changed" INT  /* i32 */
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oms_correlate_pending_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_engine_is_writing"() RETURNS bool /* bool */
STRICT VOLATILE PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oms_engine_is_writing_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_process_scada_event_meters"(
	"scada_event_id" uuid, /* Uuid */
	"substation_id" TEXT, /* & str */
	"feeder_id" TEXT, /* Option < & str > */
	"event_timestamp" timestamp with time zone /* TimestampWithTimeZone */
) RETURNS TABLE (
	"total_meters" INT,  /* i32 */
	"offline_meters" INT,  /* i32 */
	"online_meters" INT,  /* i32 */
	"unknown_meters" INT,  /* i32 */
	"outage_event_id" uuid  /* Option < Uuid > */
)
VOLATILE PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oms_process_scada_event_meters_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_storm_mode_refresh"(
	"at" timestamp with time zone DEFAULT NULL /* Option < TimestampWithTimeZone > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oms_storm_mode_refresh_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_update_meter_status"(
	"meter_number" TEXT, /* Option < & str > */
	"new_status" TEXT, /* Option < & str > */
	"event_type" TEXT, /* Option < & str > */
	"source_type" TEXT, /* Option < & str > */
	"source_event_id" TEXT, /* Option < & str > */
	"event_timestamp" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"metadata" jsonb /* Option < JsonB > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oms_update_meter_status_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_uuid_v7"() RETURNS uuid /* Uuid */
STRICT VOLATILE PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oms_uuid_v7_wrapper';
-- Privileges and settings of the eight ingest functions.
--
-- They run as the extension's owner (SECURITY DEFINER), so a consumer role needs nothing but
-- EXECUTE on them (SPEC §7); that EXECUTE is granted, not public.
REVOKE EXECUTE ON FUNCTION @extschema@.insert_scada_event_with_meter_check(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_onu_event_from_json_with_meter_sync(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_kaifa_event_from_json_with_meter_sync(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_callcenter_ticket_from_json_with_meter_link(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_scada_event_from_json(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_onu_event_from_json(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_kaifa_event_from_json(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_callcenter_ticket_from_json(jsonb) FROM PUBLIC;

-- Their statements are prepared once per backend. PostgreSQL would re-plan each execution of a
-- kept plan five times and then whenever it guesses a custom plan is cheaper, which for these CTE
-- statements costs more than it saves (measured: it halves ONU throughput); their lookups are
-- indexed for any parameter value, so the generic plan is kept. (The SCADA check's own statements
-- are the exception, planned for each alarm's feeder: see src/db/scada_check.rs.)
--
-- And no JIT: each statement runs once per event, and a generic plan's estimates (a SCADA alarm's
-- meters guessed at 50,000) can pass the JIT thresholds, when compiling costs more than running:
-- an F150 alarm's join took 900 ms with JIT, 60 ms without.
ALTER FUNCTION @extschema@.insert_scada_event_with_meter_check(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_onu_event_from_json_with_meter_sync(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_kaifa_event_from_json_with_meter_sync(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_callcenter_ticket_from_json_with_meter_link(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_scada_event_from_json(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_onu_event_from_json(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_kaifa_event_from_json(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
ALTER FUNCTION @extschema@.insert_callcenter_ticket_from_json(jsonb) SET plan_cache_mode = force_generic_plan SET jit = off;
--@rebind-end

-- The DROP guard's event-trigger function is made by hand (sql/functions/drop_guard.sql), bound to
-- the library pgrx's functions are bound to: now the one above.
DO $bind$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION @extschema@.oms_guard_drop() RETURNS event_trigger LANGUAGE c '
                   'SET search_path = @extschema@, pg_catalog, pg_temp AS %L, %L',
                   (SELECT probin FROM pg_catalog.pg_proc WHERE oid = '@extschema@.oms_uuid_v7()'::pg_catalog.regprocedure),
                   'oms_guard_drop_wrapper');
END
$bind$;


-- 2. The outage tables: when each outage was opened and merged (in event time), whether an operator
-- closed it, the rule that placed it; each span's and source's first outage. Existing rows get what
-- 0.3.0 knew: opened at its start, merged when last updated, placed by its scope.
ALTER TABLE @extschema@.oms_outage_events
    ADD COLUMN opened_at timestamptz,
    ADD COLUMN merged_at timestamptz,
    ADD COLUMN operator_closed_at timestamptz,
    ADD COLUMN placement varchar(20);
UPDATE @extschema@.oms_outage_events o
SET opened_at = o.first_detected_at,
    merged_at = CASE WHEN o.status = 'merged' THEN coalesce(o.last_updated_at, o.first_detected_at) END,
    operator_closed_at = CASE WHEN o.status IN ('cleared', 'cancelled') THEN coalesce(o.last_updated_at, o.first_detected_at) END,
    placement = CASE o.scope WHEN 'service' THEN 'service' WHEN 'distribution_point' THEN 'dp_rollup'
                             WHEN 'substation' THEN 'scada'
                             WHEN 'feeder' THEN CASE WHEN EXISTS (SELECT FROM @extschema@.oms_event_sources es
                                                                  WHERE es.outage_event_id = o.id AND es.source_type = 'scada')
                                                     THEN 'scada' ELSE 'feeder_rollup' END END
WHERE o.device_key IS NOT NULL;
ALTER TABLE @extschema@.oms_outage_meters ADD COLUMN origin_outage_id uuid;
-- A membership's customer and devices record where the meter hung when it went off: no foreign
-- keys (their checks were half the cost of writing a storm's memberships).
ALTER TABLE @extschema@.oms_outage_meters DROP CONSTRAINT IF EXISTS oms_outage_meters_customer_id_fkey,
    DROP CONSTRAINT IF EXISTS oms_outage_meters_dp_id_fkey, DROP CONSTRAINT IF EXISTS oms_outage_meters_feeder_id_fkey,
    DROP CONSTRAINT IF EXISTS oms_outage_meters_substation_id_fkey;
ALTER TABLE @extschema@.oms_event_sources ADD COLUMN origin_outage_id uuid;
ALTER TABLE @extschema@.oms_storm_mode_log ADD COLUMN event_at timestamptz;

-- A feeder whose breaker reports to SCADA is never predicted out (SPEC §5.3). Learned from the
-- outage and restoration alarms already stored; a DBA marks the others.
ALTER TABLE @extschema@.network_feeders ADD COLUMN scada_monitored boolean NOT NULL DEFAULT false;
UPDATE @extschema@.network_feeders f SET scada_monitored = true
WHERE EXISTS (SELECT FROM @extschema@.scada_events e
              WHERE e.feeder_id = f.feeder_id
                AND e.check_result ->> 'classification' IN ('outage', 'restoration'));

-- A membership taken in at a DP other than the registry's, in step with that DP's outage (issue 22).
ALTER TABLE @extschema@.oms_outage_meters ADD COLUMN suspected_mismapped boolean NOT NULL DEFAULT false;

-- The correlator reads an area's outages by feeder (or substation, or device) and end; the indexes
-- 0.3.0's per-signal statements read by go.
DROP INDEX @extschema@.oms_outage_events_feeder_start_idx, @extschema@.oms_outage_events_open_feeder_idx,
    @extschema@.oms_outage_events_open_substation_idx;
CREATE INDEX oms_outage_events_feeder_area_idx ON @extschema@.oms_outage_events
    (feeder_id, (coalesce(merged_at, actual_restoration_time, 'infinity'::timestamptz)))
    WHERE feeder_id IS NOT NULL;
CREATE INDEX oms_outage_events_substation_area_idx ON @extschema@.oms_outage_events
    (substation_id, (coalesce(merged_at, actual_restoration_time, 'infinity'::timestamptz)))
    WHERE substation_id IS NOT NULL;
CREATE INDEX oms_outage_events_unplaced_area_idx ON @extschema@.oms_outage_events (device_key)
    WHERE feeder_id IS NULL AND substation_id IS NULL;
DROP INDEX @extschema@.oms_outage_meters_out, @extschema@.oms_outage_meters_meter_idx,
    @extschema@.oms_outage_meters_open_idx, @extschema@.oms_outage_meters_customer_idx,
    @extschema@.oms_outage_meters_dp_idx, @extschema@.oms_outage_meters_feeder_idx;
CREATE INDEX oms_outage_meters_meter_idx ON @extschema@.oms_outage_meters (meter_id, off_at);
CREATE INDEX oms_outage_meters_origin_idx ON @extschema@.oms_outage_meters (origin_outage_id);

-- Storm mode's rate was counted per second of the clock by ingest; the correlator counts it per
-- second of event time. The old counts (a day at most) mean nothing to it.
DELETE FROM @extschema@.oms_signal_rate;

-- 3. The seeded-row merge knows the correlator's state row.
--@merge-seeded-row-begin
-- The seeded tables hold both our defaults and the DBA's edits. A restore by other means than
-- pg_restore (a plain dump fed to psql) finds the defaults seeded, so an incoming row replaces the
-- seeded row with the same key (or id) instead of failing the whole COPY.
CREATE OR REPLACE FUNCTION @extschema@.oms_merge_seeded_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'oms_correlation_rules' THEN
        DELETE FROM oms_correlation_rules WHERE rule_name = NEW.rule_name OR id = NEW.id;
    ELSIF TG_TABLE_NAME = 'oms_storm_mode_config' THEN
        DELETE FROM oms_storm_mode_config
         WHERE config_name = NEW.config_name OR config_key = NEW.config_key OR id = NEW.id;
    ELSIF TG_TABLE_NAME = 'scada_alarm_vocabulary' THEN
        DELETE FROM scada_alarm_vocabulary WHERE term = NEW.term;
    ELSIF TG_TABLE_NAME = 'oms_correlation_state' THEN
        DELETE FROM oms_correlation_state WHERE id = NEW.id;
    END IF;
    RETURN NEW;
END
$$;
--@merge-seeded-row-end

-- 4. The queue, the signals set aside, the input log, the correlator's state.
--@correlator-schema-begin
-- The correlator (SPEC §5, since 0.4.0): ingest stores the event, the registry change and the
-- audit row, and queues the power signal in the same transaction; one correlator at a time drains
-- the queue in batches (src/correlation/run.rs).

-- Power signals waiting for the correlator: one row per source event, with the meters its status
-- events were written for. The correlator deletes what it takes in the transaction that writes
-- the outages, so a committed signal is correlated exactly once, across crashes: a transaction that
-- commits after later ones is simply found by the next batch (no sequence is read as a position).
-- 'report': a meter a customer called about spoke after the call, so it had power (issue 22).
CREATE TABLE @extschema@.oms_correlation_queue (
    id                  bigserial PRIMARY KEY,
    at                  timestamptz NOT NULL,
    power               varchar(6) NOT NULL CHECK (power IN ('off', 'on', 'report')),
    source_type         varchar(32) NOT NULL,
    source_event_id     varchar(255) NOT NULL,
    meters              uuid[] NOT NULL,
    enqueued_at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- Signals whose correlation raised an error, set aside with it so that the queue moves on (as a
-- quarantined payload is). `SELECT oms_correlation_retry()` queues them again.
CREATE TABLE @extschema@.oms_correlation_set_aside (
    id                  bigserial PRIMARY KEY,
    at                  timestamptz NOT NULL,
    power               varchar(6) NOT NULL,
    source_type         varchar(32) NOT NULL,
    source_event_id     varchar(255) NOT NULL,
    meters              uuid[] NOT NULL,
    enqueued_at         timestamptz NOT NULL,
    set_aside_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    sqlstate            varchar(5),
    error               text NOT NULL
);

-- What each area was correlated from (an area: a feeder, or the meters of a substation on no
-- feeder, or a service placed nowhere): every power signal and SCADA alarm, by event time. A
-- signal that arrives late is correlated by replaying its area from its time (src/correlation/
-- decide), and this is what the replay reads. `meters` are the area's meters of a signal, or the
-- meters an alarm's check found affected.
CREATE TABLE @extschema@.oms_correlation_inputs (
    area                varchar(120) NOT NULL,
    at                  timestamptz NOT NULL,
    kind                varchar(12) NOT NULL CHECK (kind IN ('off', 'on', 'report', 'trip', 'restoration')),
    source_type         varchar(32) NOT NULL,
    source_event_id     varchar(255) NOT NULL,
    meters              uuid[] NOT NULL,
    logged_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- When ingest queued the signal (NULL for a SCADA alarm, which is applied in its own call), and
    -- the number of the batch that took it in (oms_correlation_state.batches once it committed):
    -- how long each signal waited, for as long as the log is kept.
    enqueued_at         timestamptz,
    batch               bigint,
    PRIMARY KEY (area, at, source_type, source_event_id, kind)
);

-- The outage declaration delay (oms_correlation.declaration_delay, issue 22): a service outage only
-- a meter's own last gasp speaks for is held that long before it is written. Each area holding
-- such outages, from when (the next replay of the area starts there) and when they fall due: in
-- event time (due_at, against oms_correlation_state.newest_event_at) or, on a quiet network, on the
-- wall clock (declare_by).
CREATE TABLE @extschema@.oms_correlation_pending (
    area                varchar(120) PRIMARY KEY,
    since               timestamptz NOT NULL,
    due_at              timestamptz NOT NULL,
    declare_by          timestamptz NOT NULL
);

-- Interruptions that were never outages: a held outage whose meters all came back within the
-- declaration delay (IEEE 1366 momentary interruptions, counted in MAIFI by oms_reliability_indices).
-- A replay of an area rewrites its rows from the replay's start. Where the meter hung and whom it
-- served are a snapshot of when it went, as in oms_outage_meters (no foreign keys).
CREATE TABLE @extschema@.oms_momentary_interruptions (
    id                  bigserial PRIMARY KEY,
    meter_id            uuid NOT NULL REFERENCES @extschema@.oms_meters(id) ON DELETE CASCADE,
    customer_id         uuid,
    dp_id               uuid,
    feeder_id           uuid,
    substation_id       uuid,
    onu_id              integer,
    area                varchar(120) NOT NULL,
    interrupted_at      timestamptz NOT NULL,
    restored_at         timestamptz NOT NULL,
    source_type         varchar(32) NOT NULL,
    source_event_id     varchar(255) NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (meter_id, interrupted_at)
);
-- What a replay weighs again and rewrites: an area's interruptions over since a time, read without
-- walking the area's whole history (the table is kept for good).
CREATE INDEX oms_momentary_interruptions_area_restored ON @extschema@.oms_momentary_interruptions
    (area, restored_at, interrupted_at);
CREATE INDEX oms_momentary_interruptions_time ON @extschema@.oms_momentary_interruptions (interrupted_at);

-- The correlator's own row: the single-writer lock (each batch takes it FOR UPDATE, so a
-- REPEATABLE READ caller whose snapshot predates another batch gets a serialization failure, as
-- for any concurrent update), and what the last batch did, for oms_correlation_status.
CREATE TABLE @extschema@.oms_correlation_state (
    id                  integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    -- Signals dated before this were stored before the correlator kept its input log (a database
    -- updated from 0.3.0): they are set aside rather than replayed against a partial log.
    log_start           timestamptz NOT NULL DEFAULT '-infinity',
    batches             bigint NOT NULL DEFAULT 0,
    signals             bigint NOT NULL DEFAULT 0,
    last_batch_at       timestamptz,
    last_batch_signals  integer,
    last_batch_ms       double precision,
    last_batch_by       varchar(32),
    -- From the oldest signal of the last batch being queued to the batch's end (just before commit).
    last_batch_lag_ms   double precision,
    -- The newest event time correlated: where event time has come to (storm mode is decided in it).
    newest_event_at     timestamptz
);

-- A fresh install (or an adopted legacy database, whose outages the correlator never made) logs
-- from the beginning of time; an update from 0.3.0 sets log_start to its newest status event.
INSERT INTO @extschema@.oms_correlation_state (id)
SELECT 1 WHERE pg_catalog.current_setting('application_name') IS DISTINCT FROM 'pg_restore';

CREATE TRIGGER oms_correlation_state_merge BEFORE INSERT ON @extschema@.oms_correlation_state
    FOR EACH ROW EXECUTE FUNCTION @extschema@.oms_merge_seeded_row();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_set_aside', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_set_aside_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_inputs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_pending', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_momentary_interruptions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_momentary_interruptions_id_seq', '');
--@correlator-schema-end

-- The input log, from the day before the newest status event stored: every power signal of the
-- ONU, Kaifa and call center (one row per source event and area) and every checked SCADA alarm,
-- so that a signal that arrives late after the update is replayed with what came before it. A
-- signal older than that day is set aside rather than replayed against outages decided without a
-- log (oms_correlation_state.log_start).
-- (Statements of their own, not temporary tables: a table made here would be the extension's.)
UPDATE @extschema@.oms_correlation_state s
SET newest_event_at = (SELECT max(e.event_timestamp) FROM @extschema@.oms_meter_status_events e),
    log_start = coalesce((SELECT max(e.event_timestamp) FROM @extschema@.oms_meter_status_events e) - interval '1 day',
                         '-infinity')
WHERE s.id = 1;
INSERT INTO @extschema@.oms_correlation_inputs (area, at, kind, source_type, source_event_id, meters)
SELECT a.area, e.event_timestamp, CASE e.event_type WHEN 'power_off' THEN 'off' ELSE 'on' END, e.source_type,
       e.source_event_id, array_agg(DISTINCT e.meter_id)
FROM @extschema@.oms_meter_status_events e
JOIN @extschema@.oms_meters m ON m.id = e.meter_id
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = m.dp_id
CROSS JOIN LATERAL (
    SELECT coalesce(m.feeder_id,
                    (SELECT fm.feeder_id FROM @extschema@.network_feeder_meters fm WHERE fm.meter_id = m.id
                     ORDER BY fm.priority NULLS LAST, fm.feeder_id LIMIT 1),
                    (SELECT sm.feeder_id FROM @extschema@.network_substation_meters sm
                     WHERE sm.meter_id = m.id AND sm.feeder_id IS NOT NULL
                     ORDER BY sm.priority NULLS LAST, sm.feeder_id LIMIT 1),
                    dp.feeder_id) AS feeder_id) AS f0
LEFT JOIN @extschema@.network_feeders f ON f.id = f0.feeder_id
CROSS JOIN LATERAL (
    SELECT coalesce(m.substation_id, f.substation_id,
                    (SELECT sm.substation_id FROM @extschema@.network_substation_meters sm WHERE sm.meter_id = m.id
                     ORDER BY sm.priority NULLS LAST, sm.substation_id LIMIT 1)) AS substation_id) AS t
CROSS JOIN LATERAL (
    SELECT CASE WHEN f0.feeder_id IS NOT NULL THEN 'feeder:' || f0.feeder_id
                WHEN t.substation_id IS NOT NULL THEN 'substation:' || t.substation_id
                WHEN m.dp_id IS NOT NULL THEN 'dp:' || m.dp_id
                WHEN m.onu_id IS NOT NULL THEN 'service:onu:' || m.onu_id
                ELSE 'service:meter:' || m.id END AS area) AS a
WHERE e.event_timestamp >= (SELECT log_start FROM @extschema@.oms_correlation_state WHERE id = 1)
  AND e.event_type IN ('power_off', 'power_on')
  AND e.source_type IN ('onu', 'kaifa', 'call_center') AND coalesce(e.source_event_id, '') <> ''
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT DO NOTHING;
INSERT INTO @extschema@.oms_correlation_inputs (area, at, kind, source_type, source_event_id, meters)
SELECT CASE WHEN f.id IS NOT NULL THEN 'feeder:' || f.id ELSE 'substation:' || s.id END, e.event_timestamp,
       CASE e.check_result ->> 'classification' WHEN 'restoration' THEN 'restoration' ELSE 'trip' END, 'scada', e.id::text,
       CASE WHEN e.check_result ->> 'classification' = 'restoration' THEN '{}'::uuid[]
            ELSE ARRAY(SELECT a.meter_id FROM @extschema@.scada_event_affected_meters a WHERE a.scada_event_id = e.id) END
FROM @extschema@.scada_events e
JOIN @extschema@.network_substations s ON s.substation_id = e.substation_id
LEFT JOIN @extschema@.network_feeders f ON f.feeder_id = e.feeder_id
WHERE e.event_timestamp >= (SELECT log_start FROM @extschema@.oms_correlation_state WHERE id = 1)
  AND e.check_result ->> 'meters_checked' = 'true'
  AND e.check_result ->> 'classification' IN ('outage', 'restoration')
ON CONFLICT DO NOTHING;

-- 5. The outage stream: one announcement per outage and batch, with its changes; an operator's
-- close is kept from the correlator. Its triggers are made again with it.
DROP TRIGGER oms_outage_status_announced ON @extschema@.oms_outage_events;
DROP TRIGGER oms_outage_closed_by_status ON @extschema@.oms_outage_events;
--@stream-begin
-- The outage stream (SPEC §5.8): every change to an outage is announced on channel 'oms_outage',
-- delivered at commit. These functions are the one place that builds the message, from the outage
-- row as the change left it, so every announcement has the same keys; fixed-width fields and a
-- short list of changes keep it far below NOTIFY's 8000 bytes.

-- A correlator batch's announcements (src/correlation/stream.rs): one per outage it changed, with
-- the list of its changes (comma-separated in p_changes), the last one as `change`, and the source
-- of the last change.
CREATE OR REPLACE FUNCTION @extschema@.oms_announce_changes(
    p_outage_ids uuid[], p_changes text[], p_source_types text[], p_source_event_ids text[])
RETURNS void
-- PL/pgSQL keeps its plan for the session (a SQL function with a pinned search_path is planned
-- again at every call).
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('oms_outage', json_build_object(
        'outage_event_id', o.id, 'event_id', o.event_id,
        'change', CASE WHEN 'opened' = ANY (l.changes) AND o.status <> 'merged' THEN 'opened'
                       ELSE l.changes[cardinality(l.changes)] END,
        'changes', l.changes, 'status', o.status, 'rule', o.placement,
        'scope', o.scope, 'device_key', o.device_key, 'substation_id', o.substation_id,
        'feeder_id', o.feeder_id, 'dp_id', o.dp_id,
        'affected_customers_count', o.affected_customers_count, 'customers_out', o.customers_out,
        'confidence', o.confidence_score, 'first_detected_at', o.first_detected_at,
        'actual_restoration_time', o.actual_restoration_time, 'merged_into', o.merged_into,
        'parent_outage_id', o.parent_outage_id, 'source_type', left(c.source_type, 32),
        'source_event_id', left(c.source_event_id, 255))::text)
    FROM unnest(p_outage_ids, p_changes, p_source_types, p_source_event_ids) WITH ORDINALITY
         AS c(id, changes, source_type, source_event_id, n)
    CROSS JOIN LATERAL (SELECT (string_to_array(c.changes, ','))[1:16] AS changes) AS l
    -- By key, one outage at a time: the plan is generic, and a join could scan them all.
    CROSS JOIN LATERAL (SELECT * FROM oms_outage_events WHERE id = c.id) AS o
    ORDER BY c.n;
END
$$;

-- A status set by anyone but the correlator: one change, 'status_set'.
CREATE OR REPLACE FUNCTION @extschema@.oms_announce_outages(
    p_outage_ids uuid[], p_changes text[], p_source_type text, p_source_event_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM oms_announce_changes(p_outage_ids, p_changes,
                                 array_fill(p_source_type, ARRAY[cardinality(p_outage_ids)]),
                                 array_fill(p_source_event_id, ARRAY[cardinality(p_outage_ids)]));
END
$$;

-- An operator (through the operations API's UPDATE) or a DBA setting an outage's status is an
-- outage change too. The engine's own status changes are announced by the engine, once.
CREATE OR REPLACE FUNCTION @extschema@.oms_announce_status_set() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT oms_engine_is_writing() THEN
        PERFORM oms_announce_outages(ARRAY[NEW.id], ARRAY['status_set'], 'operator', current_user::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_outage_status_announced
    AFTER UPDATE OF status ON @extschema@.oms_outage_events
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION @extschema@.oms_announce_status_set();

-- An operator (or a DBA) closing an outage by its status (restored, cleared, or cancelled as a
-- false alarm) ends it for its meters and customers too: otherwise they would stay "out" in a
-- closed outage for good, new signals would join it, and the indices would keep counting their
-- minutes. The correlator closes its own outages itself, and leaves an operator's closed. A role that sets statuses needs UPDATE on
-- oms_outage_meters and oms_outage_customers as well (this trigger runs with its rights).
CREATE OR REPLACE FUNCTION @extschema@.oms_close_outage_set_by_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    -- When it ended, in event time: the operator's restoration time, else as far as the signals
    -- have come (the correlator's newest), else the clock.
    ended timestamptz := coalesce(NEW.actual_restoration_time,
                                  (SELECT newest_event_at FROM oms_correlation_state WHERE id = 1), now());
BEGIN
    IF oms_engine_is_writing() THEN
        RETURN NULL;
    END IF;
    UPDATE oms_outage_meters SET on_at = greatest(off_at, ended) WHERE outage_id = NEW.id AND on_at IS NULL;
    UPDATE oms_outage_customers SET restored_at = ended WHERE outage_id = NEW.id AND restored_at IS NULL;
    -- operator_closed_at: the correlator leaves it as the operator closed it, whatever comes later.
    UPDATE oms_outage_events
    SET customers_out = 0, operator_closed_at = pg_catalog.now(),
        actual_restoration_time = CASE WHEN NEW.status IN ('restored', 'cleared') THEN ended
                                       ELSE actual_restoration_time END
    WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_outage_closed_by_status
    AFTER UPDATE OF status ON @extschema@.oms_outage_events
    FOR EACH ROW WHEN (OLD.status IN ('detected', 'confirmed', 'in_progress')
                       AND NEW.status IN ('restored', 'cleared', 'cancelled'))
    EXECUTE FUNCTION @extschema@.oms_close_outage_set_by_status();
--@stream-end

-- 6. Storm mode's view reads the rate in event time.
--@reliability-begin
-- Reliability (SPEC §5.5, §5.7, §5.10): what a utility reports to its regulator, computed from the
-- outage records at read time.

-- The momentary window (setting oms_correlation.momentary_window; 5 minutes before the library is
-- loaded in the session).
CREATE OR REPLACE FUNCTION @extschema@.oms_momentary_window() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('oms_correlation.momentary_window', true), '')::interval,
                    interval '5 minutes')
$$;

-- An outage's class under IEEE 1366 (SPEC §5.5), right at read time: momentary when all its meters
-- were back within the window of its start, sustained once it has lasted longer, pending until
-- then. Merged and cancelled outages are none: they are not interruptions of their own.
CREATE OR REPLACE FUNCTION @extschema@.oms_outage_class(p_status text, p_started timestamptz, p_ended timestamptz,
                                            p_window interval DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_status IN ('merged', 'cancelled') THEN NULL
        WHEN p_ended IS NOT NULL AND p_status IN ('restored', 'cleared')
            THEN CASE WHEN p_ended - p_started <= coalesce(p_window, oms_momentary_window()) THEN 'momentary'
                      ELSE 'sustained' END
        WHEN now() - p_started > coalesce(p_window, oms_momentary_window()) THEN 'sustained'
        ELSE 'pending' END
$$;

-- Every interruption with its class, duration and device: the outages that are not merged into
-- another or cancelled.
CREATE OR REPLACE VIEW @extschema@.oms_outage_interruptions AS
SELECT o.id, o.event_id, o.scope, o.device_key, o.status,
       @extschema@.oms_outage_class(o.status, o.first_detected_at, o.actual_restoration_time) AS interruption_class,
       o.first_detected_at AS started_at, o.actual_restoration_time AS ended_at,
       coalesce(o.actual_restoration_time, now()) - o.first_detected_at AS duration,
       o.affected_customers_count, o.customers_out, o.substation_id, o.feeder_id, o.dp_id, o.parent_outage_id
FROM @extschema@.oms_outage_events o
WHERE o.status NOT IN ('merged', 'cancelled');

-- Storm mode in one place (SPEC §5.6): whether it is on, since when (in event time), the rate at
-- the newest signal's time, the thresholds and the switches so far (each a row of
-- oms_storm_mode_log).
CREATE OR REPLACE VIEW @extschema@.oms_storm_mode AS
SELECT c.is_active AS active, c.activated_at, c.deactivated_at,
       round((SELECT coalesce(sum(r.signals), 0) FROM @extschema@.oms_signal_rate r
               WHERE r.bucket > s.newest_event_at - make_interval(secs => c.rate_window_seconds)
                 AND r.bucket <= s.newest_event_at)
             * 60.0 / c.rate_window_seconds, 2) AS rate_per_minute,
       c.auto_activation_threshold AS enter_per_minute, c.deactivation_threshold_per_minute AS exit_per_minute,
       c.cooldown_seconds, c.rate_window_seconds, c.window_multiplier,
       (SELECT count(*) FROM @extschema@.oms_storm_mode_log) AS switches,
       (SELECT max(l.switched_at) FROM @extschema@.oms_storm_mode_log l) AS last_switch_at,
       s.newest_event_at
FROM @extschema@.oms_storm_mode_config c, @extschema@.oms_correlation_state s
WHERE c.config_name = 'default' AND s.id = 1;

-- Whether a meter is flapping at p_at (SPEC §5.7): more than p_threshold power changes within an
-- hour, and no quiet hour (an hour without a change) since. A change at p_at counts. It looks back
-- a day: a meter whose last burst is older than that counts again. The engine asks it for every
-- meter of a power-off signal, and the view below for every meter that changed in the last hour.
-- It reads at most the day's last 24 x (p_threshold + 1) + 1 changes: that many changes in a day
-- hold an hour of more than p_threshold, so a meter with more is flapping whatever came before.
CREATE OR REPLACE FUNCTION @extschema@.oms_meter_is_flapping(p_meter uuid, p_at timestamptz, p_threshold integer)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT bool_or(c.burst AND c.at >= coalesce(c.run_start, '-infinity')) AND max(c.at) > p_at - interval '1 hour'
        FROM (SELECT b.at, b.burst, max(b.at) FILTER (WHERE b.after_quiet_hour) OVER () AS run_start
              FROM (SELECT r.at,
                           -- this change and the p_threshold before it, all within an hour
                           r.at - lag(r.at, p_threshold) OVER w < interval '1 hour' AS burst,
                           r.at - lag(r.at) OVER w >= interval '1 hour' AS after_quiet_hour
                    FROM (SELECT e.event_timestamp AS at FROM oms_meter_status_events e
                          WHERE e.meter_id = p_meter AND e.event_type IN ('power_on', 'power_off')
                            AND e.event_timestamp > p_at - interval '1 day' AND e.event_timestamp <= p_at
                          ORDER BY e.event_timestamp DESC
                          LIMIT 24 * (p_threshold + 1) + 1) AS r
                    WINDOW w AS (ORDER BY r.at)) AS b) AS c), false);
END
$$;

-- Meters flapping now (oms_meter_is_flapping() under oms_correlation.flap_threshold): their
-- signals are stored and audited, and open or join no outage. With their changes of the last hour.
CREATE OR REPLACE VIEW @extschema@.oms_flapping_meters AS
SELECT m.id AS meter_id, m.meter_number, changes.power_changes, changes.first_change, changes.last_change
FROM @extschema@.oms_meters m
CROSS JOIN LATERAL (
    SELECT count(*) AS power_changes, min(e.event_timestamp) AS first_change, max(e.event_timestamp) AS last_change
    FROM @extschema@.oms_meter_status_events e
    WHERE e.meter_id = m.id AND e.event_type IN ('power_on', 'power_off')
      AND e.event_timestamp > now() - interval '1 hour' AND e.event_timestamp <= now()
) AS changes
WHERE m.last_event_at > now() - interval '1 hour'
  AND @extschema@.oms_meter_is_flapping(m.id, now(),
        coalesce(nullif(current_setting('oms_correlation.flap_threshold', true), '')::int, 20));

-- IEEE 1366 indices over [p_from, p_to) (SPEC §5.10), for the system or per feeder or substation:
-- SAIFI, SAIDI (minutes), CAIDI (minutes), MAIFI_E, CEMI-n and CELID (customers whose sustained
-- interruptions in the period add up to more than p_celid_hours).
-- - Each customer's span in an outage runs from its first meter off to its last meter back on
--   (still out: until p_to or now), clipped to the period for minutes (step restoration); an
--   interruption counts in the period it began in.
-- - Customers served: the distinct customers of the active meters in scope (a meter without a
--   customer is one).
-- - Merged outages hold no meters (their survivors do), so nothing counts twice; cancelled ones
--   count nowhere. Interruptions that were never outages (oms_momentary_interruptions: back
--   within the declaration delay) count in MAIFI_E.
-- - With p_exclude_major_event_days, days whose system SAIDI exceeds T_MED = exp(α + 2.5 β) (α, β:
--   mean and standard deviation of ln(daily SAIDI) over the five years before p_from, IEEE 1366's
--   history "ending on the last day of the last complete reporting period": the period's own days
--   would raise the threshold they are judged by) are left out.
CREATE OR REPLACE FUNCTION @extschema@.oms_reliability_indices(
    p_from timestamptz, p_to timestamptz, p_level text DEFAULT 'system', p_cemi_n integer DEFAULT 3,
    p_celid_hours numeric DEFAULT 8, p_exclude_major_event_days boolean DEFAULT false)
RETURNS TABLE(level text, device text, customers_served bigint, customers_interrupted bigint,
              customer_minutes numeric, saifi numeric, saidi numeric, caidi numeric, maifi_e numeric,
              cemi numeric, celid numeric, major_event_days date[])
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
-- A year of history is a few hundred thousand memberships to group: in memory, not spilled to disk.
SET work_mem = '128MB'
AS $$
#variable_conflict use_column
DECLARE
    cut timestamptz := least(p_to, now());
    momentary interval := oms_momentary_window();
    med date[] := '{}';
BEGIN
    IF p_level NOT IN ('system', 'feeder', 'substation') THEN
        RAISE EXCEPTION 'oms_reliability_indices: p_level must be system, feeder or substation, not %', p_level
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_to <= p_from THEN
        RAISE EXCEPTION 'oms_reliability_indices: the period is empty (p_to % is not after p_from %)', p_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_exclude_major_event_days THEN
        WITH served AS (
            SELECT count(DISTINCT coalesce(m.customer_id, m.id))::numeric AS n FROM oms_meters m WHERE m.status = 'active'
        ), spans AS (
            SELECT om.outage_id, om.customer_key, min(om.off_at) AS off_at,
                   CASE WHEN bool_or(om.on_at IS NULL) THEN cut ELSE max(om.on_at) END AS on_at
            FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
            WHERE o.status NOT IN ('merged', 'cancelled')
              -- sustained, as oms_outage_class says (see spans below)
              AND (CASE WHEN o.actual_restoration_time IS NOT NULL AND o.status IN ('restored', 'cleared')
                        THEN o.actual_restoration_time - o.first_detected_at > momentary
                        ELSE now() - o.first_detected_at > momentary END)
              AND om.off_at >= p_from - interval '5 years' AND om.off_at < p_to
            GROUP BY 1, 2
        ), daily AS (
            SELECT (s.off_at AT TIME ZONE 'UTC')::date AS day,
                   sum(date_part('epoch', s.on_at - s.off_at) / 60)::numeric / (SELECT n FROM served) AS daily_saidi
            FROM spans s GROUP BY 1
        ), beta AS MATERIALIZED (  -- once, not once per day; from the history before the period only
            SELECT exp(avg(ln(daily_saidi)) + 2.5 * stddev_samp(ln(daily_saidi))) AS t_med
            FROM daily WHERE daily_saidi > 0 AND day < (p_from AT TIME ZONE 'UTC')::date
        )
        SELECT coalesce(array_agg(day ORDER BY day), '{}') INTO med
        FROM daily, beta
        WHERE beta.t_med IS NOT NULL AND daily.daily_saidi > beta.t_med
          AND day >= (p_from AT TIME ZONE 'UTC')::date AND day < (p_to AT TIME ZONE 'UTC')::date + 1;
    END IF;

    RETURN QUERY
    WITH feeder_mapped AS (
        SELECT DISTINCT ON (fm.meter_id) fm.meter_id, fm.feeder_id FROM network_feeder_meters fm
        ORDER BY fm.meter_id, fm.priority NULLS LAST, fm.feeder_id
    ), substation_mapped AS (
        SELECT DISTINCT ON (sm.meter_id) sm.meter_id, sm.substation_id FROM network_substation_meters sm
        ORDER BY sm.meter_id, sm.priority NULLS LAST, sm.substation_id
    ), substation_mapped_feeder AS (
        SELECT DISTINCT ON (sm.meter_id) sm.meter_id, sm.feeder_id FROM network_substation_meters sm
        WHERE sm.feeder_id IS NOT NULL
        ORDER BY sm.meter_id, sm.priority NULLS LAST, sm.feeder_id
    ), meters AS (
        -- Each meter where the engine places its interruptions (SPEC §3, src/correlation/locks.rs
        -- `located_meters!`): its own feeder, else the mapping tables', else its DP's; its own
        -- substation, else its feeder's, else the mapping table's.
        SELECT coalesce(m.customer_id, m.id) AS customer_key,
               CASE p_level WHEN 'feeder' THEN pf.feeder_id
                            WHEN 'substation' THEN coalesce(m.substation_id, f.substation_id, smap.substation_id)
               END AS device_id
        FROM oms_meters m
        LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id
        LEFT JOIN feeder_mapped fmap ON fmap.meter_id = m.id
        LEFT JOIN substation_mapped_feeder sfmap ON sfmap.meter_id = m.id
        LEFT JOIN substation_mapped smap ON smap.meter_id = m.id
        CROSS JOIN LATERAL (SELECT coalesce(m.feeder_id, fmap.feeder_id, sfmap.feeder_id, dp.feeder_id) AS feeder_id) AS pf
        LEFT JOIN network_feeders f ON f.id = pf.feeder_id
        WHERE m.status = 'active'
    ), served AS (
        SELECT device_id, count(DISTINCT customer_key) AS n FROM meters GROUP BY 1
    ), spans AS (
        -- A customer's span in an outage, per device (a customer with meters on two feeders is
        -- interrupted on each, as it is served by each).
        SELECT om.outage_id, om.customer_key,
               CASE p_level WHEN 'feeder' THEN om.feeder_id WHEN 'substation' THEN om.substation_id END AS device_id,
               min(om.off_at) AS off_at,
               CASE WHEN bool_or(om.on_at IS NULL) THEN cut ELSE max(om.on_at) END AS on_at
        FROM oms_outage_meters om
        WHERE om.off_at < p_to AND coalesce(om.on_at, 'infinity') > p_from
        GROUP BY 1, 2, 3
    ), classes AS (
        -- oms_outage_class, inlined: a function with a pinned search_path is never inlined, and a
        -- call per row was three quarters of the time on a year of history.
        SELECT o.id,
               CASE WHEN o.actual_restoration_time IS NOT NULL AND o.status IN ('restored', 'cleared')
                    THEN CASE WHEN o.actual_restoration_time - o.first_detected_at <= momentary THEN 'momentary'
                              ELSE 'sustained' END
                    WHEN now() - o.first_detected_at > momentary THEN 'sustained'
                    ELSE 'pending' END AS class
        FROM oms_outage_events o
        WHERE o.status NOT IN ('merged', 'cancelled')
    ), per_customer AS (
        SELECT s.device_id, s.customer_key,
               count(*) FILTER (WHERE c.class = 'sustained' AND s.off_at >= p_from) AS sustained,
               -- float8 minutes (date_part): numeric (extract) doubled the cost of this step
               coalesce(sum(greatest(date_part('epoch', least(s.on_at, p_to) - greatest(s.off_at, p_from)) / 60, 0))
                            FILTER (WHERE c.class = 'sustained'), 0)::numeric AS minutes,
               count(*) FILTER (WHERE c.class = 'momentary' AND s.off_at >= p_from) AS momentary
        FROM spans s JOIN classes c ON c.id = s.outage_id
        WHERE NOT ((s.off_at AT TIME ZONE 'UTC')::date = ANY (med))
        GROUP BY 1, 2
        UNION ALL
        -- Interruptions that were never outages (the declaration delay): each one momentary, once a
        -- customer however many of its meters it took (a building's go together).
        SELECT CASE p_level WHEN 'feeder' THEN mi.feeder_id WHEN 'substation' THEN mi.substation_id END,
               coalesce(mi.customer_id, mi.meter_id), 0, 0::numeric, count(DISTINCT mi.interrupted_at)
        FROM oms_momentary_interruptions mi
        WHERE mi.interrupted_at >= p_from AND mi.interrupted_at < p_to
          AND NOT ((mi.interrupted_at AT TIME ZONE 'UTC')::date = ANY (med))
        GROUP BY 1, 2
    ), per_device AS (
        SELECT device_id, sum(sustained)::bigint AS interrupted, sum(minutes) AS minutes,
               sum(momentary)::bigint AS momentary,
               count(*) FILTER (WHERE sustained > p_cemi_n) AS cemi,
               count(*) FILTER (WHERE minutes > p_celid_hours * 60) AS celid
        FROM per_customer GROUP BY 1
    )
    SELECT p_level,
           CASE p_level WHEN 'feeder' THEN (SELECT nf.feeder_id::text FROM network_feeders nf WHERE nf.id = sv.device_id)
                        WHEN 'substation' THEN (SELECT ns.substation_id::text FROM network_substations ns
                                                WHERE ns.id = sv.device_id) END,
           sv.n,
           coalesce(d.interrupted, 0),
           round(coalesce(d.minutes, 0)::numeric, 2),
           round(coalesce(d.interrupted, 0)::numeric / sv.n, 6),
           round(coalesce(d.minutes, 0)::numeric / sv.n, 6),
           CASE WHEN coalesce(d.interrupted, 0) > 0 THEN round(d.minutes::numeric / d.interrupted, 6) END,
           round(coalesce(d.momentary, 0)::numeric / sv.n, 6),
           round(coalesce(d.cemi, 0)::numeric / sv.n, 6),
           round(coalesce(d.celid, 0)::numeric / sv.n, 6),
           med
    FROM served sv
    LEFT JOIN per_device d ON d.device_id IS NOT DISTINCT FROM sv.device_id
    WHERE sv.n > 0 AND (p_level = 'system' OR sv.device_id IS NOT NULL)
    ORDER BY 2;
END
$$;
--@reliability-end

-- 7. What operators see of the correlator, and its retry.
--@correlator-functions-begin
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
--@correlator-functions-end

-- The views: oms_correlation_summary leaves merged outages out (0.4.0).
--@views-begin
-- Views for operators and dashboards (SPEC §2).

-- Each view has the legacy view's columns first, under the legacy names and meanings
-- (../shared/LEGACY_SCHEMA.md): dashboards written for the legacy database read them unchanged.
-- The extension's own columns follow.

-- Legacy: substation_id, feeder_id, dp_id and customer_id are the devices' and customer's codes.
CREATE OR REPLACE VIEW @extschema@.oms_meters_with_topology AS
SELECT m.id AS meter_id, m.meter_number, m.meter_type, m.communication_status, m.power_status,
       m.last_communication, m.last_power_change, m.location_lat, m.location_lng,
       c.customer_id, c.phone AS customer_phone, c.address AS customer_address,
       s.substation_id, s.name AS substation_name, f.feeder_id, f.name AS feeder_name,
       dp.dp_id, dp.name AS dp_name,
       m.id, m.status, m.building_id, m.last_status_change, m.last_event_at, m.asset_mrid,
       m.usage_point_mrid, m.onu_id, m.onu_serial_no, m.created_at, m.updated_at,
       s.substation_id AS substation_code, f.feeder_id AS feeder_code, dp.dp_id AS dp_code,
       c.customer_id AS customer_code, c.customer_name,
       s.id AS substation_uuid, f.id AS feeder_uuid, dp.id AS dp_uuid, c.id AS customer_uuid
FROM @extschema@.oms_meters m
LEFT JOIN @extschema@.network_feeders f ON f.id = m.feeder_id
LEFT JOIN @extschema@.network_substations s ON s.id = COALESCE(m.substation_id, f.substation_id)
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = m.dp_id
LEFT JOIN @extschema@.oms_customers c ON c.id = m.customer_id;

-- Legacy: online / offline / unknown count power status (on, off, unknown or not known), and
-- comm_offline_meters communication. Active meters of the device, each once (oms_meter_scope).
CREATE OR REPLACE VIEW @extschema@.network_substations_with_meters AS
SELECT s.id, s.substation_id, s.name, s.location_lat, s.location_lng, s.status,
       counts.total_meters, counts.online_meters, counts.offline_meters, counts.unknown_meters,
       counts.comm_offline_meters, counts.comm_online_meters,
       s.region_code, s.voltage_level, s.created_at, s.updated_at,
       (SELECT count(*) FROM @extschema@.oms_outage_events o
         WHERE o.substation_id = s.id AND o.status IN ('detected', 'confirmed', 'in_progress')) AS open_outages
FROM @extschema@.network_substations s
CROSS JOIN LATERAL (
    SELECT count(*) AS total_meters,
           count(*) FILTER (WHERE m.power_status = 'on') AS online_meters,
           count(*) FILTER (WHERE m.power_status = 'off') AS offline_meters,
           count(*) FILTER (WHERE m.power_status IS DISTINCT FROM 'on' AND m.power_status IS DISTINCT FROM 'off')
               AS unknown_meters,
           count(*) FILTER (WHERE m.communication_status = 'offline') AS comm_offline_meters,
           count(*) FILTER (WHERE m.communication_status = 'online') AS comm_online_meters
    FROM @extschema@.oms_meter_scope(s.id, NULL) AS scope(meter_id)
    JOIN @extschema@.oms_meters m ON m.id = scope.meter_id AND m.status = 'active'
) AS counts;

CREATE OR REPLACE VIEW @extschema@.network_feeders_with_meters AS
SELECT f.id, f.feeder_id, f.name, f.substation_id, s.substation_id AS substation_code,
       s.name AS substation_name, f.location_lat, f.location_lng, f.status,
       counts.total_meters, counts.online_meters, counts.offline_meters, counts.unknown_meters,
       counts.comm_offline_meters, counts.comm_online_meters,
       f.voltage_level, f.capacity_kva, f.created_at, f.updated_at,
       (SELECT count(*) FROM @extschema@.oms_outage_events o
         WHERE o.feeder_id = f.id AND o.status IN ('detected', 'confirmed', 'in_progress')) AS open_outages
FROM @extschema@.network_feeders f
LEFT JOIN @extschema@.network_substations s ON s.id = f.substation_id
CROSS JOIN LATERAL (
    SELECT count(*) AS total_meters,
           count(*) FILTER (WHERE m.power_status = 'on') AS online_meters,
           count(*) FILTER (WHERE m.power_status = 'off') AS offline_meters,
           count(*) FILTER (WHERE m.power_status IS DISTINCT FROM 'on' AND m.power_status IS DISTINCT FROM 'off')
               AS unknown_meters,
           count(*) FILTER (WHERE m.communication_status = 'offline') AS comm_offline_meters,
           count(*) FILTER (WHERE m.communication_status = 'online') AS comm_online_meters
    FROM @extschema@.oms_meter_scope(f.substation_id, f.id) AS scope(meter_id)
    JOIN @extschema@.oms_meters m ON m.id = scope.meter_id AND m.status = 'active'
) AS counts;

-- Open outages with their devices' names and their sources (legacy: source_types as text).
CREATE OR REPLACE VIEW @extschema@.oms_active_outages AS
SELECT o.id, o.event_id, o.event_type, o.status, o.severity, o.confidence_score, o.affected_customers_count,
       o.first_detected_at, o.estimated_restoration_time,
       s.name AS substation_name, f.name AS feeder_name, dp.name AS dp_name,
       (SELECT count(*) FROM @extschema@.oms_event_sources es WHERE es.outage_event_id = o.id) AS source_count,
       (SELECT string_agg(DISTINCT es.source_type, ', ' ORDER BY es.source_type)
          FROM @extschema@.oms_event_sources es WHERE es.outage_event_id = o.id)::text AS source_types,
       o.scope, o.device_key, o.substation_id, o.feeder_id, o.dp_id, o.description, o.root_cause,
       o.event_latitude, o.event_longitude, o.last_updated_at,
       s.substation_id AS substation_code, f.feeder_id AS feeder_code, dp.dp_id AS dp_code,
       now() - o.first_detected_at AS duration
FROM @extschema@.oms_outage_events o
LEFT JOIN @extschema@.network_substations s ON s.id = o.substation_id
LEFT JOIN @extschema@.network_feeders f ON f.id = o.feeder_id
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = o.dp_id
WHERE o.status IN ('detected', 'confirmed', 'in_progress');

-- Legacy: one row per outage, with its sources counted by type.
CREATE OR REPLACE VIEW @extschema@.oms_correlation_summary AS
SELECT o.id AS outage_event_id, o.event_id, o.status, o.confidence_score,
       count(es.id) AS total_sources,
       count(es.id) FILTER (WHERE es.source_type = 'scada') AS scada_sources,
       count(es.id) FILTER (WHERE es.source_type = 'kaifa') AS kaifa_sources,
       count(es.id) FILTER (WHERE es.source_type = 'onu') AS onu_sources,
       count(es.id) FILTER (WHERE es.source_type = 'call_center') AS call_center_sources,
       min(es.detected_at) AS first_source_detected,
       max(es.detected_at) AS last_source_detected
FROM @extschema@.oms_outage_events o
LEFT JOIN @extschema@.oms_event_sources es ON es.outage_event_id = o.id
-- A merged outage is part of its survivor (SPEC §5.3): listed, it would be counted twice.
WHERE o.status <> 'merged'
GROUP BY o.id;

-- One row per source: what each field system has told the registry, and the weight its signals
-- carry (oms_source_weight()).
CREATE OR REPLACE VIEW @extschema@.oms_source_summary AS
SELECT s.source_type,
       @extschema@.oms_source_weight(s.source_type) AS correlation_weight,
       coalesce(e.status_events, 0) AS status_events,
       coalesce(e.applied_events, 0) AS applied_events,
       coalesce(e.meters, 0) AS meters,
       e.last_event_at,
       e.avg_confidence,
       coalesce(o.outages, 0) AS outages_contributed
FROM (VALUES ('scada'), ('onu'), ('kaifa'), ('call_center')) AS s(source_type)
LEFT JOIN (
    SELECT source_type, count(*) AS status_events, count(*) FILTER (WHERE applied) AS applied_events,
           count(DISTINCT meter_id) AS meters, max(event_timestamp) AS last_event_at,
           round(avg(confidence_score), 2) AS avg_confidence
    FROM @extschema@.oms_meter_status_events GROUP BY source_type
) e ON e.source_type = s.source_type
LEFT JOIN (
    SELECT source_type, count(DISTINCT outage_event_id) AS outages
    FROM @extschema@.oms_event_sources GROUP BY source_type
) o ON o.source_type = s.source_type;

-- Events that named a meter, ONU or device the registry does not know (SPEC §6): stored, never an
-- error, and listed here for the people who maintain the registry.
CREATE OR REPLACE VIEW @extschema@.oms_unmatched_events AS
SELECT 'onu'::text AS source, e.event_id::text AS source_event_id, 'ONU ' || e.onu_id AS named,
       e."timestamp" AS event_time, 'no active meter is registered behind this ONU'::text AS reason
FROM @extschema@.onu_events e
WHERE e.meter_id IS NULL AND e.event_type IN ('ONU_LastGaspAlert', 'ONU_PowerRestored')
UNION ALL
SELECT 'kaifa', coalesce(k.delivery_key, p.event_id_value)::text, 'asset ' || a.mrid, k.event_timestamp,
       'no meter has this asset mRID or number'
FROM @extschema@.kaifa_event_assets a
JOIN @extschema@.kaifa_event_payloads p ON p.id = a.payload_id
JOIN @extschema@.kaifa_events k ON k.id = p.event_id
WHERE a.meter_id IS NULL AND a.mrid IS NOT NULL
UNION ALL
SELECT 'kaifa', coalesce(k.delivery_key, p.event_id_value)::text, 'usage point ' || u.mrid, k.event_timestamp,
       'no meter has this usage-point mRID'
FROM @extschema@.kaifa_event_usage_points u
JOIN @extschema@.kaifa_event_payloads p ON p.id = u.payload_id
JOIN @extschema@.kaifa_events k ON k.id = p.event_id
WHERE u.meter_id IS NULL AND u.mrid IS NOT NULL
UNION ALL
SELECT 'call_center', t.external_ticket_id::text, 'meter ' || c.meter_number, t.intake_timestamp,
       'no meter has this number'
FROM @extschema@.callcenter_customers c JOIN @extschema@.callcenter_tickets t ON t.id = c.ticket_id
WHERE c.meter_id IS NULL AND c.meter_number IS NOT NULL
UNION ALL
SELECT 'scada', e.id::text, 'substation ' || e.substation_id || coalesce(', feeder ' || e.feeder_id, ''),
       e.event_timestamp, e.check_result ->> 'reason'
FROM @extschema@.scada_events e
WHERE e.check_result ->> 'reason' LIKE 'unknown substation%';
--@views-end

--@references-begin
-- The foreign keys of the tables the correlator fills (memberships, sources, timeline, customers
-- out) are checked once per statement instead of once per row (issue 21). They stay declared, with
-- their ON DELETE actions, and hold as before: what changes is how a new row's keys are checked.
--
-- PostgreSQL checks a foreign key with one query per inserted row, each planned, started and
-- ended on its own: a storm batch writing 140,000 memberships spent a quarter of its time there.
-- Here the per-row check triggers are disabled and one statement-level trigger per table checks
-- every key the statement wrote in one query per key, locking the rows referred to (FOR KEY SHARE)
-- as the per-row check does, so that a concurrent DELETE of one still waits or fails.
--
-- On UPDATE only the keys the correlator moves in bulk, to an outage (a merge moves thousands of
-- spans), are checked per statement. The others (a span's meter, a customer) keep PostgreSQL's
-- per-row check, which queues nothing for a row whose key did not change (unless this transaction
-- inserted the row: a one-call drain pays one query per such row): checked per statement, every
-- meter of every updated span was locked again, for keys no row changed.
--
-- A dump restored with plain CREATE EXTENSION gets this again; a foreign key added by hand later
-- keeps PostgreSQL's own per-row check.

-- Raises foreign_key_violation as PostgreSQL does when a key of the statement's new rows names no
-- row. Arguments, three per key: column, referenced table, constraint. An UPDATE checks every key
-- its new rows hold: PostgreSQL checks only the keys a row changed, which a statement-level
-- trigger cannot tell apart (rows cannot be paired across the old and new tables), so it locks a
-- little more than PostgreSQL would, never less. Runs as the extension's owner, as PostgreSQL's
-- checks run as the table's: locking a row needs rights that a role that may only insert lacks.
--
-- The planner knows how many rows `new_rows` holds but not how many distinct keys (no statistics:
-- it guesses 200), so it looks each key up in the referenced table's index, however many there
-- are. Where there are four keys or more per page of that table (a backlog's memberships name most
-- meters), one pass over it with a hash of the keys is cheaper: 0.6 s against 1.4 s for 114,000 of
-- 161,000 meters (5,358 pages); they break even near 2 keys a page. Measured by its size now: a
-- first rule on a tenth of pg_class.reltuples had a storm batch's 2,100 meters read by a whole
-- pass, 155 ms against 28 ms (reltuples most likely read low while the storm ran). The switch
-- ends with the call because the function's SET clause names enable_nestloop: PostgreSQL restores
-- at exit only the settings a SET clause names, and keeps any other set here for the transaction.
CREATE FUNCTION @extschema@.oms_check_references() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp SET work_mem = '64MB'
SET enable_nestloop = on AS $$
DECLARE
    i int := 0;
    key_column text;
    referenced regclass;
    new_keys text;
    wanted bigint;
    found bigint;
    missing text;
BEGIN
    WHILE i + 2 < TG_NARGS LOOP
        key_column := TG_ARGV[i];
        referenced := TG_ARGV[i + 1]::regclass;
        new_keys := format('SELECT DISTINCT %I AS k FROM new_rows', key_column);
        EXECUTE format('SELECT count(k) FROM (%s) AS n', new_keys) INTO wanted;
        IF wanted > 0 THEN
            PERFORM pg_catalog.set_config('enable_nestloop',
                CASE WHEN wanted >= 4 * pg_catalog.pg_relation_size(referenced)
                                    / pg_catalog.current_setting('block_size')::int
                     THEN 'off' ELSE 'on' END, true);
            EXECUTE format('SELECT count(*) FROM (SELECT FROM %s r WHERE r.id IN (SELECT k FROM (%s) AS n) '
                           'FOR KEY SHARE OF r) AS locked', referenced, new_keys) INTO found;
            IF found < wanted THEN
                EXECUTE format('SELECT n.k::text FROM (%s) AS n WHERE n.k IS NOT NULL '
                               'AND NOT EXISTS (SELECT FROM %s r WHERE r.id = n.k) LIMIT 1',
                               new_keys, referenced) INTO missing;
                RAISE foreign_key_violation USING
                    MESSAGE = format('insert or update on table "%s" violates foreign key constraint "%s"',
                                     TG_TABLE_NAME, TG_ARGV[i + 2]),
                    DETAIL = format('Key (%s)=(%s) is not present in table "%s".', key_column, missing,
                                    (SELECT c.relname FROM pg_class c WHERE c.oid = referenced)),
                    TABLE = TG_TABLE_NAME, CONSTRAINT = TG_ARGV[i + 2];
            END IF;
        END IF;
        i := i + 3;
    END LOOP;
    RETURN NULL;
END
$$;
-- Only the owner makes triggers with it (firing one needs no right).
REVOKE ALL ON FUNCTION @extschema@.oms_check_references() FROM PUBLIC;

-- Moves the checks of `target`'s single-column foreign keys to a referenced `id` onto
-- `oms_check_references`: their per-row check triggers disabled, the statement-level ones made
-- (again). On UPDATE, only keys to an outage move; the others' per-row update checks are enabled.
-- Idempotent. Other foreign keys keep PostgreSQL's per-row check.
CREATE FUNCTION @extschema@.oms_check_references_per_statement(target regclass) RETURNS void
LANGUAGE plpgsql SET search_path = @extschema@, pg_catalog, pg_temp AS $$
DECLARE
    fk record;
    key_args text;
    inserted text[] := '{}';
    updated text[] := '{}';
    disable name[] := '{}';
    enable name[] := '{}';
BEGIN
    FOR fk IN
        SELECT c.conname, a.attname, c.confrelid::regclass AS referenced,
               c.confrelid = '@extschema@.oms_outage_events'::regclass AS moved_in_bulk,
               ARRAY(SELECT t.tgname FROM pg_trigger t
                     WHERE t.tgconstraint = c.oid AND t.tgrelid = target
                       AND t.tgfoid = 'pg_catalog."RI_FKey_check_ins"'::regproc) AS insert_checks,
               ARRAY(SELECT t.tgname FROM pg_trigger t
                     WHERE t.tgconstraint = c.oid AND t.tgrelid = target
                       AND t.tgfoid = 'pg_catalog."RI_FKey_check_upd"'::regproc) AS update_checks
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1]
        WHERE c.conrelid = target AND c.contype = 'f' AND cardinality(c.conkey) = 1 AND r.attname = 'id'
        ORDER BY c.conname
    LOOP
        key_args := format('%L, %L, %L', fk.attname, fk.referenced::text, fk.conname);
        inserted := inserted || key_args;
        disable := disable || fk.insert_checks;
        IF fk.moved_in_bulk THEN
            updated := updated || key_args;
            disable := disable || fk.update_checks;
        ELSE
            enable := enable || fk.update_checks;
        END IF;
    END LOOP;
    IF cardinality(inserted) = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE OR REPLACE TRIGGER oms_references_inserted AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.oms_check_references(%s)', target,
                   array_to_string(inserted, ', '));
    IF cardinality(updated) = 0 THEN
        EXECUTE format('DROP TRIGGER IF EXISTS oms_references_updated ON %s', target);
    ELSE
        EXECUTE format('CREATE OR REPLACE TRIGGER oms_references_updated AFTER UPDATE ON %s '
                       'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION @extschema@.oms_check_references(%s)', target,
                       array_to_string(updated, ', '));
    END IF;
    FOR i IN 1 .. coalesce(cardinality(disable), 0) LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', target, disable[i]);
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(enable), 0) LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', target, enable[i]);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.oms_check_references_per_statement(regclass) FROM PUBLIC;

SELECT @extschema@.oms_check_references_per_statement(t)
FROM unnest(ARRAY['@extschema@.oms_outage_meters', '@extschema@.oms_event_sources',
                  '@extschema@.oms_event_timeline', '@extschema@.oms_outage_customers']::regclass[]) AS t;
--@references-end

--@registry-generation-begin
-- Where each meter hangs and how many active meters each DP and feeder has are what the
-- correlator reads of the registry (SPEC §5.3). Reading them for every batch read the registry of
-- every feeder the batch touched: a fifth of a storm's correlation. The correlator keeps them
-- between batches (src/correlation/registry_cache.rs) for as long as this generation stands still;
-- every statement that can change a place or a count moves it.
--
-- A row, so that it moves when the change commits, together with it: a sequence moved by a change
-- not yet committed would let the correlator keep what it read before the change under the new
-- generation. The correlator only reads it; two DBAs' changes to the registry wait for each other
-- here until the first commits.
CREATE TABLE @extschema@.oms_registry_generation (
    id          integer PRIMARY KEY CHECK (id = 1),
    generation  bigint NOT NULL
);
INSERT INTO @extschema@.oms_registry_generation VALUES (1, 0);

-- Runs as the extension's owner: a role that may change the registry need not have rights on
-- the extension's own tables.
CREATE FUNCTION @extschema@.oms_registry_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE @extschema@.oms_registry_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
-- Only the owner makes triggers with it (firing one needs no right).
REVOKE ALL ON FUNCTION @extschema@.oms_registry_changed() FROM PUBLIC;

CREATE TRIGGER oms_registry_changed
    AFTER INSERT OR DELETE OR UPDATE OF status, customer_id, onu_id, dp_id, feeder_id, substation_id
    ON @extschema@.oms_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_truncated AFTER TRUNCATE
    ON @extschema@.oms_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.network_feeder_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OF feeder_id
    ON @extschema@.network_distribution_points FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_truncated AFTER TRUNCATE
    ON @extschema@.network_distribution_points FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.network_substation_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OF substation_id
    ON @extschema@.network_feeders FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_truncated AFTER TRUNCATE
    ON @extschema@.network_feeders FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
-- Replica mode (logical replication's apply, a restore run in it) changes the registry too.
ALTER TABLE @extschema@.oms_meters ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.oms_meters ENABLE ALWAYS TRIGGER oms_registry_truncated;
ALTER TABLE @extschema@.network_feeder_meters ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_distribution_points ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_distribution_points ENABLE ALWAYS TRIGGER oms_registry_truncated;
ALTER TABLE @extschema@.network_substation_meters ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_feeders ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_feeders ENABLE ALWAYS TRIGGER oms_registry_truncated;
--@registry-generation-end
--@outage-writers-begin
-- The correlator's worker keeps the outage rows it has read and written between batches
-- (src/correlation/outage_cache.rs) instead of reading every outage of a storm's feeder again for
-- each batch. What it keeps is good only while nothing else writes these tables: an operator's
-- status, a SCADA alarm's call, another session draining the queue, a DBA's DELETE.
--
-- Every transaction that writes them leaves its id here, once. The worker counts the rows before a
-- batch reads the tables and after it wrote them: a row it does not know of, once committed, is a
-- writer it did not see. Rows, not a counter in one row: writers never wait for each other here.
-- The worker deletes them from time to time (a writer still open then is counted when it commits).
CREATE TABLE @extschema@.oms_outage_writers (
    xid  bigint PRIMARY KEY
);

-- Runs as the extension's owner: an operator who may set an outage's status need not have rights on
-- the extension's own tables.
CREATE FUNCTION @extschema@.oms_outages_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO @extschema@.oms_outage_writers (xid) VALUES (pg_catalog.txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
-- Only the owner makes triggers with it (firing one needs no right).
REVOKE ALL ON FUNCTION @extschema@.oms_outages_changed() FROM PUBLIC;

CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_outage_events FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_outage_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_event_sources FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
CREATE TRIGGER oms_outages_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.oms_outage_customers FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_outages_changed();
-- A session in replica mode (a restore run in it) writes them too. Logical replication's apply fires
-- no statement triggers at all: a worker on a subscriber of these tables keeps nothing
-- (src/correlation/outage_cache.rs asks pg_subscription_rel).
ALTER TABLE @extschema@.oms_outage_events ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_outage_meters ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_event_sources ENABLE ALWAYS TRIGGER oms_outages_changed;
ALTER TABLE @extschema@.oms_outage_customers ENABLE ALWAYS TRIGGER oms_outages_changed;
--@outage-writers-end

--@keep-data-begin
-- SELECT oms_keep_data_on_drop() (see drop_guard.sql): detaches every data table and sequence from
-- the extension so that DROP EXTENSION leaves them. Their defaults stop calling the extension's
-- uuid function (gen_random_uuid() instead), and they lose the triggers that belong to the
-- extension; the foreign keys it checked once per statement (sql/schema/10_references.sql) get
-- PostgreSQL's own per-row checks back. The registry generation and the outage writers are no data:
-- they go with the extension.
CREATE OR REPLACE FUNCTION @extschema@.oms_keep_data_on_drop()
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    member record;
    kept int := 0;
BEGIN
    FOR member IN
        SELECT c.oid::regclass AS rel, c.relkind
        FROM pg_depend d
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'oms_correlation'
        JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
        WHERE c.relkind IN ('r', 'p', 'S') AND c.oid <> ALL (ARRAY['@extschema@.oms_registry_generation'::regclass,
                                                                  '@extschema@.oms_outage_writers'::regclass])
        ORDER BY c.relkind DESC
    LOOP
        IF member.relkind IN ('r', 'p') THEN
            EXECUTE (SELECT coalesce(string_agg(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.gen_random_uuid()',
                                              member.rel, a.attname), '; '), 'SELECT 1')
                     FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                     WHERE ad.adrelid = member.rel AND pg_get_expr(ad.adbin, ad.adrelid) LIKE '%oms_uuid_v7()%');
            EXECUTE (SELECT coalesce(string_agg(format('DROP TRIGGER %I ON %s', t.tgname, member.rel), '; '), 'SELECT 1')
                     FROM pg_trigger t WHERE t.tgrelid = member.rel AND NOT t.tgisinternal);
            EXECUTE (SELECT coalesce(string_agg(format('ALTER TABLE %s ENABLE TRIGGER %I', member.rel, t.tgname), '; '),
                                     'SELECT 1')
                     FROM pg_trigger t
                     WHERE t.tgrelid = member.rel AND t.tgisinternal AND t.tgenabled = 'D'
                       AND t.tgfoid IN ('pg_catalog."RI_FKey_check_ins"'::regproc,
                                        'pg_catalog."RI_FKey_check_upd"'::regproc));
            EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %s', member.rel);
        ELSE
            EXECUTE format('ALTER EXTENSION oms_correlation DROP SEQUENCE %s', member.rel);
        END IF;
        kept := kept + 1;
    END LOOP;
    RETURN kept;
END
$$;
--@keep-data-end
