-- Grid topology and customers: the devices events are correlated against.

CREATE TABLE @extschema@.network_substations (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    substation_id   varchar(100) NOT NULL UNIQUE,
    name            varchar(255),
    location_lat    numeric(10, 7),
    location_lng    numeric(10, 7),
    voltage_level   varchar(50),
    status          varchar(20) NOT NULL DEFAULT 'active',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.network_feeders (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    feeder_id       varchar(100) NOT NULL UNIQUE,
    substation_id   uuid REFERENCES @extschema@.network_substations (id),
    name            varchar(255),
    voltage_level   varchar(50),
    status          varchar(20) NOT NULL DEFAULT 'active',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX network_feeders_substation_idx ON @extschema@.network_feeders (substation_id);

CREATE TABLE @extschema@.network_distribution_points (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    dp_id           varchar(100) NOT NULL UNIQUE,
    feeder_id       uuid REFERENCES @extschema@.network_feeders (id),
    name            varchar(255),
    location_lat    numeric(10, 7),
    location_lng    numeric(10, 7),
    status          varchar(20) NOT NULL DEFAULT 'active',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX network_distribution_points_feeder_idx ON @extschema@.network_distribution_points (feeder_id);

CREATE TABLE @extschema@.oms_customers (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    customer_id     varchar(100) NOT NULL UNIQUE,
    name            varchar(255),
    phone           varchar(50),
    address         text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX oms_customers_phone_idx ON @extschema@.oms_customers (phone);

-- ONU terminals. Ids come from the NMS; many ONUs arrive with an empty serial, so it is not unique.
CREATE TABLE @extschema@.onus (
    id              integer PRIMARY KEY,
    onu_serial_no   varchar(100),
    name            varchar(255),
    model           varchar(100),
    location_lat    numeric(10, 7),
    location_lng    numeric(10, 7),
    status          varchar(20) NOT NULL DEFAULT 'active',
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX onus_serial_idx ON @extschema@.onus (onu_serial_no);
