-- Grid topology and customers: the devices events are correlated against.
--
-- Every table here holds the legacy surface (../shared/LEGACY_SCHEMA.md): its columns, as wide or
-- wider, nullable where the legacy ones are, and its foreign keys with their ON DELETE actions, so
-- a DBA's load or delete that worked on the legacy scripts' schema works here (issue 10).
-- Coordinates are numeric without a typmod: the legacy data carries 8 decimals, and any legacy
-- numeric(p,s) converts to it without a rewrite.

CREATE TABLE @extschema@.network_substations (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    substation_id   varchar(100) NOT NULL UNIQUE,
    name            varchar(255),
    location_lat    numeric,
    location_lng    numeric,
    region_code     varchar(10),
    voltage_level   varchar(50),
    status          varchar(20) DEFAULT 'active',
    created_at      timestamptz DEFAULT pg_catalog.now(),
    updated_at      timestamptz DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.network_feeders (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    feeder_id       varchar(100) NOT NULL UNIQUE,
    substation_id   uuid REFERENCES @extschema@.network_substations (id) ON DELETE CASCADE,
    name            varchar(255),
    voltage_level   varchar(50),
    location_lat    numeric,
    location_lng    numeric,
    capacity_kva    numeric(12, 2),
    status          varchar(20) DEFAULT 'active',
    created_at      timestamptz DEFAULT pg_catalog.now(),
    updated_at      timestamptz DEFAULT pg_catalog.now(),
    -- Its breaker reports to SCADA: set by a DBA, and by the first outage or restoration alarm that
    -- names the feeder. The correlator never predicts a monitored feeder out (SPEC §5.3).
    scada_monitored boolean NOT NULL DEFAULT false
);
CREATE INDEX network_feeders_substation_idx ON @extschema@.network_feeders (substation_id);

CREATE TABLE @extschema@.network_distribution_points (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    dp_id           varchar(100) NOT NULL UNIQUE,
    feeder_id       uuid REFERENCES @extschema@.network_feeders (id) ON DELETE CASCADE,
    name            varchar(255),
    location_lat    numeric,
    location_lng    numeric,
    building_id     varchar(50),
    status          varchar(20) DEFAULT 'active',
    created_at      timestamptz DEFAULT pg_catalog.now(),
    updated_at      timestamptz DEFAULT pg_catalog.now()
);
CREATE INDEX network_distribution_points_feeder_idx ON @extschema@.network_distribution_points (feeder_id);

CREATE TABLE @extschema@.oms_customers (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    customer_id     varchar(100) NOT NULL UNIQUE,
    customer_name   varchar(255),
    account_id      varchar(100),
    phone           varchar(50),
    address         text,
    building_id     varchar(50),
    dp_id           uuid REFERENCES @extschema@.network_distribution_points (id),
    location_lat    numeric,
    location_lng    numeric,
    status          varchar(20) DEFAULT 'active',
    created_at      timestamptz DEFAULT pg_catalog.now(),
    updated_at      timestamptz DEFAULT pg_catalog.now()
);
CREATE INDEX oms_customers_phone_idx ON @extschema@.oms_customers (phone);

-- ONU terminals. Ids come from the NMS; many ONUs arrive with an empty serial, so it is not unique.
-- An ONU that an event or a registry row names before the NMS reported it gets a stub row
-- (stub = true), which the NMS's own row fills in when it arrives (sql/schema/06_legacy_compat.sql).
CREATE TABLE @extschema@.onus (
    id                  integer PRIMARY KEY,
    onu_serial_no       varchar(100),
    name                varchar(255),
    model               varchar(100),
    fibertech_id        varchar(50),
    building_id         varchar(50),
    region_code         varchar(10),
    olt_name            varchar(200),
    area_fibertech      varchar(200),
    onu_power_flag      boolean DEFAULT false,
    onu_power_flag_date timestamptz,
    location_lat        numeric,
    location_lng        numeric,
    status              varchar(20) DEFAULT 'active',
    created_at          timestamptz DEFAULT pg_catalog.now(),
    updated_at          timestamptz DEFAULT pg_catalog.now(),
    stub                boolean NOT NULL DEFAULT false
);
CREATE INDEX onus_serial_idx ON @extschema@.onus (onu_serial_no);
