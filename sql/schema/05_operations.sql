-- The operations API's tables (../shared/LEGACY_SCHEMA.md, last section): the HTTP service behind
-- the dashboards reads and writes them directly. Columns it leaves out of its inserts (a crew
-- assignment's crew_id, a broadcast notification's customer and channel) are nullable here.

-- The customers of an outage's affected meters, kept by the extension as meters join and leave
-- (restored_at: the customer's last meter back on). The API lists them to notify them.
CREATE TABLE @extschema@.oms_outage_customers (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_id       uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    customer_id     uuid NOT NULL REFERENCES @extschema@.oms_customers (id) ON DELETE CASCADE,
    linked_at       timestamptz DEFAULT pg_catalog.now(),
    restored_at     timestamptz,
    UNIQUE (outage_id, customer_id)
);
CREATE INDEX oms_outage_customers_customer_idx ON @extschema@.oms_outage_customers (customer_id);

CREATE TABLE @extschema@.oms_crew_assignments (
    id                      uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_event_id         uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    crew_id                 varchar(64),
    crew_name               varchar(200),
    crew_type               varchar(64),
    crew_size               integer,
    assignment_type         varchar(32),
    status                  varchar(32) NOT NULL DEFAULT 'assigned',
    priority                varchar(32),
    assigned_at             timestamptz DEFAULT pg_catalog.now(),
    estimated_arrival       timestamptz,
    estimated_arrival_time  timestamptz,
    actual_arrival          timestamptz,
    actual_arrival_time     timestamptz,
    completed_at            timestamptz,
    work_completed_at       timestamptz,
    notes                   text,
    location_lat            numeric,
    location_lng            numeric,
    current_location_lat    numeric,
    current_location_lng    numeric,
    equipment               text
);
CREATE INDEX oms_crew_assignments_outage_idx ON @extschema@.oms_crew_assignments (outage_event_id);
CREATE INDEX oms_crew_assignments_crew_idx ON @extschema@.oms_crew_assignments (crew_id);
CREATE INDEX oms_crew_assignments_status_idx ON @extschema@.oms_crew_assignments (status);

CREATE TABLE @extschema@.oms_customer_notifications (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    outage_event_id     uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    customer_id         uuid REFERENCES @extschema@.oms_customers (id),
    notification_type   varchar(32) NOT NULL,
    channel             varchar(32),
    channels_used       text,
    status              varchar(32) NOT NULL DEFAULT 'pending',
    sent_at             timestamptz,
    delivered_at        timestamptz,
    message_content     text,
    created_at          timestamptz DEFAULT pg_catalog.now()
);
CREATE INDEX oms_customer_notifications_outage_idx ON @extschema@.oms_customer_notifications (outage_event_id);
CREATE INDEX oms_customer_notifications_customer_idx ON @extschema@.oms_customer_notifications (customer_id);
CREATE INDEX oms_customer_notifications_status_idx ON @extschema@.oms_customer_notifications (status);
