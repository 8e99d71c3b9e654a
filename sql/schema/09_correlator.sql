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
