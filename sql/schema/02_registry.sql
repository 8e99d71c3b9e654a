-- The live meter registry and its audit trail.
--
-- oms_meters is updated once per affected meter by every correlated event, so it carries only the
-- indexes that lookups need (no index on the status columns) and fillfactor 80, which keeps status
-- updates HOT. updated_at is set by the writing statements; the legacy row trigger that sets it for
-- everyone else fires only when a statement left it unchanged (sql/schema/06_legacy_compat.sql).
--
-- onu_id has no foreign key, as in the legacy schema: a registry exported from the MDM is loaded
-- before the fibre NMS reports its ONUs. The ONU a meter names gets a stub row instead.

CREATE TABLE @extschema@.oms_meters (
    id                      uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    meter_number            varchar(100) NOT NULL UNIQUE,
    meter_type              varchar(50) DEFAULT 'smart',
    customer_id             uuid REFERENCES @extschema@.oms_customers (id) ON DELETE SET NULL,
    substation_id           uuid REFERENCES @extschema@.network_substations (id) ON DELETE SET NULL,
    feeder_id               uuid REFERENCES @extschema@.network_feeders (id) ON DELETE SET NULL,
    dp_id                   uuid REFERENCES @extschema@.network_distribution_points (id) ON DELETE SET NULL,
    location_lat            numeric,
    location_lng            numeric,
    building_id             varchar(100),
    communication_status    varchar(20) DEFAULT 'unknown'
        CHECK (communication_status IN ('online', 'offline', 'unknown')),
    last_communication      timestamptz,
    last_status_change      timestamptz,
    power_status            varchar(20) DEFAULT 'unknown'
        CHECK (power_status IN ('on', 'off', 'unknown')),
    last_power_change       timestamptz,
    -- Event time of the newest status event applied to this meter: older events are audited, not applied.
    last_event_at           timestamptz,
    asset_mrid              varchar(100),
    usage_point_mrid        varchar(100),
    onu_id                  integer,
    onu_serial_no           varchar(100),
    status                  varchar(20) DEFAULT 'active'
        CHECK (status IN ('active', 'inactive', 'decommissioned')),
    created_at              timestamptz DEFAULT pg_catalog.now(),
    updated_at              timestamptz DEFAULT pg_catalog.now()
) WITH (fillfactor = 80);
CREATE INDEX oms_meters_feeder_idx ON @extschema@.oms_meters (feeder_id);
CREATE INDEX oms_meters_substation_idx ON @extschema@.oms_meters (substation_id);
CREATE INDEX oms_meters_dp_idx ON @extschema@.oms_meters (dp_id) WHERE dp_id IS NOT NULL;
CREATE INDEX oms_meters_onu_idx ON @extschema@.oms_meters (onu_id) WHERE onu_id IS NOT NULL;
CREATE INDEX oms_meters_asset_mrid_idx ON @extschema@.oms_meters (asset_mrid) WHERE asset_mrid IS NOT NULL;
CREATE INDEX oms_meters_usage_point_mrid_idx ON @extschema@.oms_meters (usage_point_mrid)
    WHERE usage_point_mrid IS NOT NULL;
CREATE INDEX oms_meters_customer_idx ON @extschema@.oms_meters (customer_id) WHERE customer_id IS NOT NULL;

-- A meter belongs to a substation or feeder through its own column or through one of these rows.
CREATE TABLE @extschema@.network_substation_meters (
    substation_id   uuid NOT NULL REFERENCES @extschema@.network_substations (id) ON DELETE CASCADE,
    meter_id        uuid NOT NULL REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    feeder_id       uuid REFERENCES @extschema@.network_feeders (id) ON DELETE SET NULL,
    priority        integer DEFAULT 1,
    created_at      timestamptz DEFAULT pg_catalog.now(),
    id              uuid NOT NULL DEFAULT @extschema@.oms_uuid_v7() UNIQUE,
    PRIMARY KEY (substation_id, meter_id)
);
CREATE INDEX network_substation_meters_meter_idx ON @extschema@.network_substation_meters (meter_id);

CREATE TABLE @extschema@.network_feeder_meters (
    feeder_id       uuid NOT NULL REFERENCES @extschema@.network_feeders (id) ON DELETE CASCADE,
    meter_id        uuid NOT NULL REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    circuit_path    varchar(255),
    priority        integer DEFAULT 2,
    created_at      timestamptz DEFAULT pg_catalog.now(),
    id              uuid NOT NULL DEFAULT @extschema@.oms_uuid_v7() UNIQUE,
    PRIMARY KEY (feeder_id, meter_id)
);
CREATE INDEX network_feeder_meters_meter_idx ON @extschema@.network_feeder_meters (meter_id);

CREATE TABLE @extschema@.oms_meter_status_events (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    meter_id            uuid NOT NULL REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    event_type          varchar(50) NOT NULL
        CHECK (event_type IN ('power_on', 'power_off', 'communication_lost', 'communication_restored')),
    source_type         varchar(32) NOT NULL
        CHECK (source_type IN ('scada', 'onu', 'kaifa', 'call_center', 'system')),
    source_event_id     varchar(255),
    previous_status     varchar(20),
    new_status          varchar(20),
    event_timestamp     timestamptz NOT NULL,
    confidence_score    numeric(5, 2) DEFAULT 1.0,
    -- false when the event was older than the meter's newest applied event (SPEC §6, ordering).
    applied             boolean NOT NULL DEFAULT true,
    metadata            jsonb,
    created_at          timestamptz DEFAULT pg_catalog.now()
);
CREATE INDEX oms_meter_status_events_meter_idx ON @extschema@.oms_meter_status_events (meter_id, event_timestamp);
-- A meter's next power-on after a late signal (the engine's episodes): found directly, not by
-- walking every later status event of a meter that SCADA checks write to often.
CREATE INDEX oms_meter_status_events_power_on_idx ON @extschema@.oms_meter_status_events (meter_id, event_timestamp)
    WHERE event_type = 'power_on';
