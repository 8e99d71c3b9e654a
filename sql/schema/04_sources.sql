-- What each field system sent, as the base insert_*_from_json functions store it.

-- SCADA -----------------------------------------------------------------------------------------
CREATE TABLE @extschema@.scada_events (
    id                      uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_type              varchar(100) NOT NULL,
    substation_id           varchar(100) NOT NULL,
    feeder_id               varchar(100),
    main_station_id         varchar(100),
    alarm_type              varchar(100),
    event_timestamp         timestamptz NOT NULL,
    voltage                 numeric(12, 3),
    severity                varchar(50),
    reason                  text,
    latitude                numeric,
    longitude               numeric,
    source                  varchar(128),
    created_at              timestamptz DEFAULT pg_catalog.now(),
    affected_meter_count    integer DEFAULT 0,
    meters_checked_at       timestamptz,
    -- No foreign key, as in the legacy schema: an outage a DBA deletes leaves its alarms.
    outage_event_id         uuid,
    -- What insert_scada_event_with_meter_check returned, so a redelivery returns it again.
    check_result            jsonb
);
-- The identity of an alarm (SPEC §6): a redelivery finds the original through this index.
CREATE UNIQUE INDEX scada_events_alarm_identity
    ON @extschema@.scada_events (substation_id, feeder_id, event_type, alarm_type, event_timestamp) NULLS NOT DISTINCT;
CREATE INDEX scada_events_timestamp_idx ON @extschema@.scada_events (event_timestamp);
CREATE INDEX scada_events_outage_idx ON @extschema@.scada_events (outage_event_id) WHERE outage_event_id IS NOT NULL;

-- One row per meter a SCADA check marked; a 100,000-meter check writes 100,000 of them, so the
-- table carries its key (which the restoration reads by scada_event_id) and nothing more.
-- meter_id has no foreign key, as in the legacy schema. The legacy id column is kept and filled by
-- gen_random_uuid(), the cheapest generator, since nothing looks rows up by it.
CREATE TABLE @extschema@.scada_event_affected_meters (
    scada_event_id      uuid NOT NULL REFERENCES @extschema@.scada_events (id) ON DELETE CASCADE,
    meter_id            uuid NOT NULL,
    meter_status_before varchar(20),
    meter_status_after  varchar(20),
    checked_at          timestamptz DEFAULT pg_catalog.now(),
    id                  uuid DEFAULT pg_catalog.gen_random_uuid(),
    PRIMARY KEY (scada_event_id, meter_id)
);

-- Each SCADA payload as received, as the legacy functions kept it.
CREATE TABLE @extschema@.scada_raw_messages (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    raw_payload     jsonb NOT NULL,
    received_at     timestamptz DEFAULT pg_catalog.now(),
    scada_event_id  uuid REFERENCES @extschema@.scada_events (id) ON DELETE CASCADE
);
CREATE INDEX scada_raw_messages_event_idx ON @extschema@.scada_raw_messages (scada_event_id);

-- ONU -------------------------------------------------------------------------------------------
CREATE TABLE @extschema@.meters (
    id              serial PRIMARY KEY,
    meter_id        varchar(100) NOT NULL UNIQUE,
    onu_id          integer REFERENCES @extschema@.onus (id) ON DELETE SET NULL,
    meter_type      varchar(50),
    building_id     varchar(50),
    location_lat    numeric,
    location_lng    numeric,
    status          varchar(20) NOT NULL DEFAULT 'active',
    created_at      timestamptz DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    oms_meter_id    uuid
);
CREATE INDEX meters_onu_idx ON @extschema@.meters (onu_id);
CREATE INDEX meters_oms_meter_idx ON @extschema@.meters (oms_meter_id) WHERE oms_meter_id IS NOT NULL;

CREATE TABLE @extschema@.onu_events (
    id              serial PRIMARY KEY,
    event_id        varchar(100) NOT NULL UNIQUE,
    onu_id          integer REFERENCES @extschema@.onus (id) ON DELETE SET NULL,
    event_type      varchar(100) NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    alarm_category  varchar(100),
    alarm_type      varchar(100),
    parcel_code     varchar(100),
    serial_number   varchar(100),
    location_lat    numeric,
    location_lng    numeric,
    nms_type        varchar(100),
    raw_payload     jsonb NOT NULL,
    meter_id        uuid,
    created_at      timestamptz DEFAULT pg_catalog.now()
);
-- The consumer invents a fresh eventId for a message that had none, so the same ONU, type and
-- time is the same event too (SPEC §6).
CREATE UNIQUE INDEX onu_events_occurrence ON @extschema@.onu_events (onu_id, event_type, "timestamp");

-- Kaifa head-end --------------------------------------------------------------------------------
CREATE TABLE @extschema@.kaifa_events (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    message_type    varchar(100),
    event_timestamp timestamptz NOT NULL,
    -- 'message_id:<header.message_id>' or 'event_id:<payload.event_id>': the redelivery key (SPEC §6).
    delivery_key    varchar(120) UNIQUE,
    created_at      timestamptz DEFAULT pg_catalog.now(),
    updated_at      timestamptz DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.kaifa_event_headers (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id            uuid NOT NULL REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    verb                varchar(50),
    noun                varchar(100),
    revision            varchar(20),
    header_timestamp    timestamptz,
    source              varchar(100),
    async_reply_flag    boolean DEFAULT false,
    ack_required        boolean DEFAULT false,
    message_id          varchar(100) UNIQUE,
    correlation_id      varchar(100),
    comment             text,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX kaifa_event_headers_event_idx ON @extschema@.kaifa_event_headers (event_id);

-- The children hang off the payload (payload_id) and the user off the header (header_id), as in the
-- legacy schema, where readers join them that way. event_id names the message too, without a key:
-- deleting a message cascades through its payload.
CREATE TABLE @extschema@.kaifa_event_users (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id        uuid,
    user_id         varchar(100),
    organization    varchar(100),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    header_id       uuid REFERENCES @extschema@.kaifa_event_headers (id) ON DELETE CASCADE
);
CREATE INDEX kaifa_event_users_header_idx ON @extschema@.kaifa_event_users (header_id);

CREATE TABLE @extschema@.kaifa_event_payloads (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id            uuid NOT NULL REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    event_id_value      varchar(100),
    created_date_time   timestamptz,
    issuer_id           varchar(100),
    issuer_tracking_id  varchar(100),
    reason              text,
    severity            varchar(50),
    user_id             varchar(100),
    event_type_ref      varchar(50),
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX kaifa_event_payloads_event_idx ON @extschema@.kaifa_event_payloads (event_id);
CREATE INDEX kaifa_event_payloads_value_idx ON @extschema@.kaifa_event_payloads (event_id_value);

-- meter_id has no foreign key, as in the legacy schema (a message about a meter the registry does
-- not know yet is linked later by oms_sync_meter_registry()).
CREATE TABLE @extschema@.kaifa_event_assets (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id            uuid,
    mrid                varchar(100),
    name                varchar(255),
    name_type           varchar(100),
    meter_id            uuid,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    payload_id          uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE,
    name_description    text
);
CREATE INDEX kaifa_event_assets_payload_idx ON @extschema@.kaifa_event_assets (payload_id);
CREATE INDEX kaifa_event_assets_mrid_idx ON @extschema@.kaifa_event_assets (mrid);
CREATE INDEX kaifa_event_assets_meter_idx ON @extschema@.kaifa_event_assets (meter_id) WHERE meter_id IS NOT NULL;

CREATE TABLE @extschema@.kaifa_event_usage_points (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id            uuid,
    mrid                varchar(100),
    name                varchar(255),
    name_type           varchar(100),
    meter_id            uuid,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    payload_id          uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE,
    name_description    text
);
CREATE INDEX kaifa_event_usage_points_payload_idx ON @extschema@.kaifa_event_usage_points (payload_id);
CREATE INDEX kaifa_event_usage_points_mrid_idx ON @extschema@.kaifa_event_usage_points (mrid);
CREATE INDEX kaifa_event_usage_points_meter_idx ON @extschema@.kaifa_event_usage_points (meter_id)
    WHERE meter_id IS NOT NULL;

CREATE TABLE @extschema@.kaifa_event_details (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id        uuid,
    name            varchar(255),
    value           text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    payload_id      uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE,
    detail_order    integer DEFAULT 0
);
CREATE INDEX kaifa_event_details_payload_idx ON @extschema@.kaifa_event_details (payload_id);

CREATE TABLE @extschema@.kaifa_event_names (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id            uuid,
    name                varchar(255),
    name_type           varchar(100),
    name_description    text,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    payload_id          uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE
);
CREATE INDEX kaifa_event_names_payload_idx ON @extschema@.kaifa_event_names (payload_id);

CREATE TABLE @extschema@.kaifa_event_status (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id        uuid,
    date_time       timestamptz,
    reason          text,
    remark          text,
    value           varchar(100),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    payload_id      uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE
);
CREATE INDEX kaifa_event_status_payload_idx ON @extschema@.kaifa_event_status (payload_id);

CREATE TABLE @extschema@.kaifa_event_metadata (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id        uuid NOT NULL REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    source          varchar(255),
    processed_at    timestamptz,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX kaifa_event_metadata_event_idx ON @extschema@.kaifa_event_metadata (event_id);

CREATE TABLE @extschema@.kaifa_event_original_messages (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    event_id            uuid NOT NULL REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    original_timestamp  timestamptz,
    source              varchar(255),
    topic               varchar(255),
    processed_at        timestamptz,
    original_message    jsonb,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX kaifa_event_original_messages_event_idx ON @extschema@.kaifa_event_original_messages (event_id);

-- Call center -----------------------------------------------------------------------------------
-- intake_id and oms_event_id repeat in real traffic (three characters plus milliseconds mod 1000).
CREATE TABLE @extschema@.callcenter_tickets (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    external_ticket_id  varchar(100) NOT NULL UNIQUE,
    intake_id           varchar(100),
    oms_event_id        varchar(100),
    status              varchar(50) NOT NULL DEFAULT 'Registered',
    intake_timestamp    timestamptz NOT NULL,
    source              varchar(100) DEFAULT 'call-center',
    created_at          timestamptz DEFAULT pg_catalog.now(),
    updated_at          timestamptz DEFAULT pg_catalog.now()
);
CREATE INDEX callcenter_tickets_intake_idx ON @extschema@.callcenter_tickets (intake_id);

CREATE TABLE @extschema@.callcenter_customers (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    ticket_id       uuid NOT NULL REFERENCES @extschema@.callcenter_tickets (id) ON DELETE CASCADE,
    phone           varchar(50),
    meter_number    varchar(100),
    address         text,
    notes           text,
    meter_id        uuid,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX callcenter_customers_ticket_idx ON @extschema@.callcenter_customers (ticket_id);
CREATE INDEX callcenter_customers_meter_number_idx ON @extschema@.callcenter_customers (meter_number);
CREATE INDEX callcenter_customers_meter_idx ON @extschema@.callcenter_customers (meter_id) WHERE meter_id IS NOT NULL;

CREATE TABLE @extschema@.callcenter_ticket_status_history (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    ticket_id       uuid NOT NULL REFERENCES @extschema@.callcenter_tickets (id) ON DELETE CASCADE,
    status          varchar(50) NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    note            text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX callcenter_ticket_status_history_ticket_idx ON @extschema@.callcenter_ticket_status_history (ticket_id);

CREATE TABLE @extschema@.callcenter_raw_messages (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    ticket_id       uuid REFERENCES @extschema@.callcenter_tickets (id) ON DELETE SET NULL,
    raw_payload     jsonb NOT NULL,
    received_at     timestamptz DEFAULT pg_catalog.now()
);
CREATE INDEX callcenter_raw_messages_ticket_idx ON @extschema@.callcenter_raw_messages (ticket_id);

-- Bad input (SPEC §6): kept whole, with the reason, so nothing a producer sent is lost.
CREATE TABLE @extschema@.oms_rejected_events (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    source          varchar(20) NOT NULL,
    function_name   varchar(100) NOT NULL,
    raw_payload     jsonb,
    message         text NOT NULL,
    sqlstate        char(5) NOT NULL,
    field_path      text,
    received_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX oms_rejected_events_received_idx ON @extschema@.oms_rejected_events (received_at);
