-- Outage records, their contributing sources and timeline, and the correlation settings tables.

CREATE TABLE @extschema@.oms_outage_events (
    id                          uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id                    varchar(100) NOT NULL UNIQUE,
    event_type                  varchar(50) NOT NULL DEFAULT 'outage',
    status                      varchar(20) NOT NULL DEFAULT 'detected'
        CHECK (status IN ('detected', 'confirmed', 'in_progress', 'restored', 'cleared')),
    severity                    varchar(20),
    confidence_score            numeric(5, 2),
    affected_customers_count    integer NOT NULL DEFAULT 0,
    estimated_restoration_time  timestamptz,
    actual_restoration_time     timestamptz,
    root_cause                  text,
    description                 text,
    affected_area_geojson       jsonb,
    event_latitude              numeric(10, 7),
    event_longitude             numeric(10, 7),
    substation_id               uuid REFERENCES @extschema@.network_substations (id),
    feeder_id                   uuid REFERENCES @extschema@.network_feeders (id),
    dp_id                       uuid REFERENCES @extschema@.network_distribution_points (id),
    first_detected_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_updated_at             timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at                  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- At most one open outage per device. Also the index the join-or-create lookup uses.
CREATE UNIQUE INDEX oms_outage_events_one_open_per_device
    ON @extschema@.oms_outage_events (substation_id, feeder_id, dp_id) NULLS NOT DISTINCT
    WHERE status IN ('detected', 'confirmed', 'in_progress');
CREATE INDEX oms_outage_events_substation_idx ON @extschema@.oms_outage_events (substation_id, first_detected_at);
CREATE INDEX oms_outage_events_feeder_idx ON @extschema@.oms_outage_events (feeder_id) WHERE feeder_id IS NOT NULL;
CREATE INDEX oms_outage_events_dp_idx ON @extschema@.oms_outage_events (dp_id) WHERE dp_id IS NOT NULL;

CREATE TABLE @extschema@.oms_event_sources (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_event_id     uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id),
    source_type         varchar(20) NOT NULL,
    source_event_id     varchar(255) NOT NULL,
    source_table        varchar(100),
    correlation_weight  numeric(5, 2),
    detected_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (outage_event_id, source_type, source_event_id)
);

CREATE TABLE @extschema@.oms_event_timeline (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_event_id     uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id),
    event_type          varchar(50) NOT NULL,
    status              varchar(20),
    description         text,
    source              varchar(50),
    "timestamp"         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata            jsonb,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX oms_event_timeline_outage_idx ON @extschema@.oms_event_timeline (outage_event_id, "timestamp");

-- Per-source correlation weights (SPEC §3, §5).
CREATE TABLE @extschema@.oms_correlation_rules (
    id                          serial PRIMARY KEY,
    rule_name                   varchar(100) NOT NULL UNIQUE,
    source_type                 varchar(20) NOT NULL UNIQUE
        CHECK (source_type IN ('scada', 'onu', 'kaifa', 'call_center')),
    correlation_weight          numeric(5, 2) NOT NULL CHECK (correlation_weight BETWEEN 0 AND 1),
    correlation_window_minutes  integer NOT NULL DEFAULT 30 CHECK (correlation_window_minutes > 0),
    enabled                     boolean NOT NULL DEFAULT true,
    description                 text,
    created_at                  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.oms_storm_mode_config (
    id                              serial PRIMARY KEY,
    config_name                     varchar(100) NOT NULL UNIQUE,
    is_active                       boolean NOT NULL DEFAULT false,
    activation_threshold_per_minute integer NOT NULL DEFAULT 100,
    deactivation_threshold_per_minute integer NOT NULL DEFAULT 20,
    window_multiplier               numeric(5, 2) NOT NULL DEFAULT 2.0,
    activated_at                    timestamptz,
    deactivated_at                  timestamptz,
    created_at                      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                      timestamptz NOT NULL DEFAULT pg_catalog.now()
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
