-- Outage records, their contributing sources and timeline, and the correlation settings tables.

CREATE TABLE @extschema@.oms_outage_events (
    id                          uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id                    varchar(100) NOT NULL UNIQUE,
    event_type                  varchar(50) NOT NULL DEFAULT 'outage',
    -- 'cancelled': an operator's verdict of a false alarm (through the operations API); it counts
    -- nowhere. 'merged': rolled up into the outage merged_into names, which now holds its meters.
    status                      varchar(32) NOT NULL DEFAULT 'detected'
        CHECK (status IN ('detected', 'confirmed', 'in_progress', 'restored', 'cleared', 'cancelled', 'merged')),
    severity                    varchar(20) DEFAULT 'medium',
    confidence_score            numeric(5, 2) DEFAULT 0.0,
    affected_customers_count    integer DEFAULT 0,
    estimated_restoration_time  timestamptz,
    actual_restoration_time     timestamptz,
    root_cause                  text,
    description                 text,
    affected_area_geojson       jsonb,
    event_latitude              numeric,
    event_longitude             numeric,
    substation_id               uuid REFERENCES @extschema@.network_substations (id),
    feeder_id                   uuid REFERENCES @extschema@.network_feeders (id),
    dp_id                       uuid REFERENCES @extschema@.network_distribution_points (id),
    first_detected_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_updated_at             timestamptz DEFAULT pg_catalog.now(),
    created_at                  timestamptz DEFAULT pg_catalog.now(),
    -- The device the outage sits on (SPEC §5): 'substation', 'feeder', 'distribution_point' or
    -- 'service', and its key ('feeder:<uuid>', ...). Outages that operators or other systems
    -- record have neither.
    scope                       varchar(20)
        CHECK (scope IN ('service', 'distribution_point', 'feeder', 'substation')),
    device_key                  varchar(120),
    -- SPEC §5.1: affected_customers_count counts every customer who lost power in the outage and
    -- never decreases; customers_out those still off.
    customers_out               integer DEFAULT 0,
    merged_into                 uuid REFERENCES @extschema@.oms_outage_events (id) ON DELETE SET NULL,
    -- A nested outage (SPEC §5.4): opened by a meter of this outage soon after it was restored.
    parent_outage_id            uuid REFERENCES @extschema@.oms_outage_events (id) ON DELETE SET NULL,
    -- When, in event time, the correlator opened it (a roll-up opens later than its start, the
    -- earliest off time of its meters) and merged it: a replay rebuilds the outages as they stood
    -- at any time from these (src/correlation/decide/engine.rs).
    opened_at                   timestamptz,
    merged_at                   timestamptz,
    -- Set when an operator closed it (status restored, cleared or cancelled by anyone but the
    -- correlator): the correlator leaves it and its meters' spans as they are.
    operator_closed_at          timestamptz,
    -- The rule that placed it at its device: service, dp_rollup, feeder_rollup, scada.
    placement                   varchar(20)
);
-- At most one open outage per device (the correlator, the only writer, keeps it so; this says it
-- of the data).
CREATE UNIQUE INDEX oms_outage_events_one_open_per_device
    ON @extschema@.oms_outage_events (device_key)
    WHERE status IN ('detected', 'confirmed', 'in_progress');
CREATE INDEX oms_outage_events_substation_idx ON @extschema@.oms_outage_events (substation_id, first_detected_at);
CREATE INDEX oms_outage_events_feeder_idx ON @extschema@.oms_outage_events (feeder_id) WHERE feeder_id IS NOT NULL;
CREATE INDEX oms_outage_events_dp_idx ON @extschema@.oms_outage_events (dp_id) WHERE dp_id IS NOT NULL;
CREATE INDEX oms_outage_events_merged_into_idx ON @extschema@.oms_outage_events (merged_into)
    WHERE merged_into IS NOT NULL;
CREATE INDEX oms_outage_events_parent_idx ON @extschema@.oms_outage_events (parent_outage_id)
    WHERE parent_outage_id IS NOT NULL;
-- What a batch of an area loads: its outages that ended (were restored or merged) after a time,
-- or are open. A feeder's, a whole substation's, a service's placed nowhere.
CREATE INDEX oms_outage_events_feeder_area_idx ON @extschema@.oms_outage_events
    (feeder_id, (coalesce(merged_at, actual_restoration_time, 'infinity'::timestamptz)))
    WHERE feeder_id IS NOT NULL;
CREATE INDEX oms_outage_events_substation_area_idx ON @extschema@.oms_outage_events
    (substation_id, (coalesce(merged_at, actual_restoration_time, 'infinity'::timestamptz)))
    WHERE substation_id IS NOT NULL;
CREATE INDEX oms_outage_events_unplaced_area_idx ON @extschema@.oms_outage_events (device_key)
    WHERE feeder_id IS NULL AND substation_id IS NULL;

-- Each outage's affected meters (SPEC §5.1): when each went off and came back, where it hung then,
-- and the source that first put it there. A meter is out in at most one outage at a time; one
-- that goes off again in the same outage gets a row of its own. customer_key is its customer, or
-- the meter itself when it has none (it counts as one customer).
CREATE TABLE @extschema@.oms_outage_meters (
    outage_id               uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    meter_id                uuid NOT NULL REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    off_at                  timestamptz NOT NULL,
    on_at                   timestamptz,
    customer_key            uuid NOT NULL,
    -- Where the meter hung and whom it served when it went off: a record of that moment, read
    -- from the registry by the single writer, so no foreign key (their checks were half the cost
    -- of writing a storm's memberships; a device deleted later leaves the history as it was).
    customer_id             uuid,
    dp_id                   uuid,
    feeder_id               uuid,
    substation_id           uuid,
    first_source            varchar(32) NOT NULL,
    first_source_event_id   varchar(255),
    -- The outage the span was first placed in; merges move the span, never this (a replay puts
    -- the span back where it was at its start time).
    origin_outage_id        uuid,
    -- Taken into an outage at a DP other than the one the registry names, in step with that DP's
    -- outage: a suspected mapping error (oms_suspected_mismapped_meters lists them).
    suspected_mismapped     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (outage_id, meter_id, off_at)
);
-- The correlator reads an outage's spans by its key; these serve everyone else: a meter's
-- interruptions, and the spans placed in an outage that a replay looks for.
CREATE INDEX oms_outage_meters_meter_idx ON @extschema@.oms_outage_meters (meter_id, off_at);
CREATE INDEX oms_outage_meters_origin_idx ON @extschema@.oms_outage_meters (origin_outage_id);

-- What each source contributed. The operations API reads the same facts under its own names
-- (event_timestamp, confidence_weight, event_data); the extension writes both, and a row written
-- under only one of the names gets the other from oms_sync_api_columns().
CREATE TABLE @extschema@.oms_event_sources (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_event_id     uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    source_type         varchar(32) NOT NULL,
    source_event_id     varchar(255) NOT NULL,
    source_table        varchar(100),
    correlation_weight  numeric(5, 2) DEFAULT 1.0,
    detected_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at          timestamptz DEFAULT pg_catalog.now(),
    event_timestamp     timestamptz,
    confidence_weight   numeric(5, 2),
    event_data          jsonb,
    -- The outage it was first a source of (as `oms_outage_meters.origin_outage_id`).
    origin_outage_id    uuid,
    UNIQUE (outage_event_id, source_type, source_event_id)
);

-- The outage's story. The operations API writes its own entries (status changes, crews,
-- notifications) as event_description / event_timestamp / created_by and reads everything back
-- under those names; the extension writes both spellings.
CREATE TABLE @extschema@.oms_event_timeline (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_event_id     uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    event_type          varchar(50) NOT NULL,
    status              varchar(32),
    description         text,
    source              varchar(64),
    "timestamp"         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata            jsonb,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    event_description   text,
    event_timestamp     timestamptz,
    created_by          varchar(100)
);
CREATE INDEX oms_event_timeline_outage_idx ON @extschema@.oms_event_timeline (outage_event_id, "timestamp");

-- Correlation rules, in the legacy shape: each active rule gives a weight to each source it lists.
-- A source's weight is the largest an active rule listing it gives (oms_source_weight()); the
-- seeded rules give SPEC §3's scada 1.0, kaifa 0.8, onu 0.6, call_center 0.4.
CREATE TABLE @extschema@.oms_correlation_rules (
    id                          uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    rule_name                   varchar(100) NOT NULL UNIQUE,
    source_types                varchar(100)[] NOT NULL,
    correlation_window_minutes  integer DEFAULT 30 CHECK (correlation_window_minutes > 0),
    spatial_radius_meters       integer DEFAULT 1000,
    confidence_threshold        numeric(5, 2) DEFAULT 0.7,
    weight_scada                numeric(5, 2) DEFAULT 1.0 CHECK (weight_scada BETWEEN 0 AND 1),
    weight_kaifa                numeric(5, 2) DEFAULT 0.8 CHECK (weight_kaifa BETWEEN 0 AND 1),
    weight_onu                  numeric(5, 2) DEFAULT 0.6 CHECK (weight_onu BETWEEN 0 AND 1),
    weight_call_center          numeric(5, 2) DEFAULT 0.4 CHECK (weight_call_center BETWEEN 0 AND 1),
    is_active                   boolean DEFAULT true,
    description                 text,
    created_at                  timestamptz DEFAULT pg_catalog.now(),
    updated_at                  timestamptz DEFAULT pg_catalog.now()
);

-- The one weight lookup. A per-source weight read here for every outage a signal joins; the rules
-- table holds a handful of rows. PL/pgSQL keeps its plan for the session: a SQL function with a
-- pinned search_path is never inlined, and is planned again at every call (0.5 ms of an ingest).
CREATE FUNCTION @extschema@.oms_source_weight(p_source_type text) RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT max(CASE p_source_type WHEN 'scada' THEN weight_scada WHEN 'kaifa' THEN weight_kaifa
                                          WHEN 'onu' THEN weight_onu WHEN 'call_center' THEN weight_call_center END)
            FROM oms_correlation_rules
            WHERE is_active IS NOT FALSE AND p_source_type = ANY (source_types));
END
$$;

-- Storm mode (SPEC §5.6). One row of settings (config_name 'default', in the legacy columns), and
-- the operations API's key/value rows (config_key, config_value), such as 'storm_mode_active'.
CREATE TABLE @extschema@.oms_storm_mode_config (
    id                              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    config_name                     varchar(100) UNIQUE,
    is_active                       boolean DEFAULT false,
    correlation_window_minutes      integer DEFAULT 60,
    spatial_radius_meters           integer DEFAULT 2000,
    confidence_threshold            numeric(5, 2) DEFAULT 0.5,
    auto_activation_threshold       integer DEFAULT 100,
    deactivation_threshold_per_minute integer DEFAULT 20,
    window_multiplier               numeric(5, 2) DEFAULT 2.0,
    activated_at                    timestamptz,
    deactivated_at                  timestamptz,
    created_at                      timestamptz DEFAULT pg_catalog.now(),
    updated_at                      timestamptz DEFAULT pg_catalog.now(),
    config_key                      varchar(100) UNIQUE,
    config_value                    text,
    description                     text,
    -- The rate is measured over this window; storm mode ends after the rate has stayed below the
    -- exit threshold this long.
    rate_window_seconds             integer DEFAULT 60 CHECK (rate_window_seconds > 0),
    cooldown_seconds                integer DEFAULT 600 CHECK (cooldown_seconds >= 0)
);

-- Storm mode's count of power-off signals (one per meter) per second of event time, kept by the
-- correlator (src/correlation/storm.rs), which decides storm mode from it: ingest writes nothing
-- here, so no session waits on a counter. `shard` is always 0 since 0.4.0 (one writer).
CREATE TABLE @extschema@.oms_signal_rate (
    bucket      timestamptz NOT NULL,
    shard       smallint NOT NULL,
    signals     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, shard)
);

-- Every storm-mode switch, with the rate that made it.
CREATE TABLE @extschema@.oms_storm_mode_log (
    id                      uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    switched_at             timestamptz NOT NULL DEFAULT pg_catalog.now(),
    active                  boolean NOT NULL,
    rate_per_minute         numeric,
    threshold_per_minute    integer,
    -- When, in event time, the storm began or ended (switched_at is when the correlator saw it).
    event_at                timestamptz
);


-- SCADA alarm vocabulary (SPEC §4.1): DBAs add rows to teach the classifier new alarm texts.
-- Terms and alarm texts are compared after lower-casing and dropping everything but letters and
-- digits, so 'Loss of Voltage', 'LossOfVoltage' and 'loss_of_voltage' are one term; the longest
-- matching term wins, which keeps 'de-energized' (outage) apart from 'energized' (restoration).
CREATE TABLE @extschema@.scada_alarm_vocabulary (
    term            varchar(100) PRIMARY KEY,
    classification  varchar(20) NOT NULL CHECK (classification IN ('outage', 'restoration', 'informational')),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
