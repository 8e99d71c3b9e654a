-- oms_correlation 0.2.0 -> 0.3.0: the whole legacy surface (issue 10).
-- Fresh installs get the same objects from sql/schema and sql/functions;
-- tests/integration/test_upgrade.py checks that both paths agree, from every released version.
\echo Use "ALTER EXTENSION oms_correlation UPDATE TO '0.3.0'" to load this file. \quit

-- 1. The library. Every C function is bound to this release's library first, so that nothing this
-- script calls (oms_uuid_v7() for new keys) runs the previous release's code.
--@rebind-begin
CREATE OR REPLACE FUNCTION @extschema@."insert_callcenter_ticket_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_callcenter_ticket_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_callcenter_ticket_from_json_with_meter_link"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_callcenter_ticket_from_json_with_meter_link_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_kaifa_event_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_kaifa_event_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_kaifa_event_from_json_with_meter_sync"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_kaifa_event_from_json_with_meter_sync_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_onu_event_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS INT /* Option < i32 > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_onu_event_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_onu_event_from_json_with_meter_sync"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS INT /* Option < i32 > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_onu_event_from_json_with_meter_sync_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_scada_event_from_json"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS uuid /* Option < Uuid > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_scada_event_from_json_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."insert_scada_event_with_meter_check"(
	"json_data" jsonb /* Option < RawJsonb > */
) RETURNS jsonb /* Option < JsonB > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'insert_scada_event_with_meter_check_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_engine_is_writing"() RETURNS bool /* bool */
STRICT VOLATILE PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'oms_engine_is_writing_wrapper';
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
AS 'oms_correlation-0.3.0', 'oms_process_scada_event_meters_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_storm_mode_refresh"() RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'oms_storm_mode_refresh_wrapper';
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
AS 'oms_correlation-0.3.0', 'oms_update_meter_status_wrapper';
CREATE OR REPLACE FUNCTION @extschema@."oms_uuid_v7"() RETURNS uuid /* Uuid */
STRICT VOLATILE PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'oms_correlation-0.3.0', 'oms_uuid_v7_wrapper';
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

-- The views read columns that change type below; they are made again at the end.
DROP VIEW @extschema@.oms_meters_with_topology, @extschema@.network_substations_with_meters,
    @extschema@.network_feeders_with_meters, @extschema@.oms_active_outages,
    @extschema@.oms_correlation_summary, @extschema@.oms_unmatched_events;

-- 2. Topology and customers: the legacy columns, nullability and delete actions; coordinates as
-- numeric without a typmod (a relabel, no rewrite).
ALTER TABLE @extschema@.network_substations
    ALTER COLUMN location_lat TYPE numeric, ALTER COLUMN location_lng TYPE numeric,
    ADD COLUMN region_code varchar(10),
    ALTER COLUMN status DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL;

ALTER TABLE @extschema@.network_feeders
    DROP CONSTRAINT network_feeders_substation_id_fkey,
    ADD CONSTRAINT network_feeders_substation_id_fkey FOREIGN KEY (substation_id)
        REFERENCES @extschema@.network_substations (id) ON DELETE CASCADE,
    ADD COLUMN location_lat numeric, ADD COLUMN location_lng numeric, ADD COLUMN capacity_kva numeric(12, 2),
    ALTER COLUMN status DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL;

ALTER TABLE @extschema@.network_distribution_points
    DROP CONSTRAINT network_distribution_points_feeder_id_fkey,
    ADD CONSTRAINT network_distribution_points_feeder_id_fkey FOREIGN KEY (feeder_id)
        REFERENCES @extschema@.network_feeders (id) ON DELETE CASCADE,
    ALTER COLUMN location_lat TYPE numeric, ALTER COLUMN location_lng TYPE numeric,
    ADD COLUMN building_id varchar(50),
    ALTER COLUMN status DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL;

ALTER TABLE @extschema@.oms_customers RENAME COLUMN name TO customer_name;
ALTER TABLE @extschema@.oms_customers
    ADD COLUMN account_id varchar(100), ADD COLUMN building_id varchar(50),
    ADD COLUMN dp_id uuid REFERENCES @extschema@.network_distribution_points (id),
    ADD COLUMN location_lat numeric, ADD COLUMN location_lng numeric,
    ADD COLUMN status varchar(20) DEFAULT 'active',
    ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL;

ALTER TABLE @extschema@.onus
    ADD COLUMN fibertech_id varchar(50), ADD COLUMN building_id varchar(50), ADD COLUMN region_code varchar(10),
    ADD COLUMN olt_name varchar(200), ADD COLUMN area_fibertech varchar(200),
    ADD COLUMN onu_power_flag boolean DEFAULT false, ADD COLUMN onu_power_flag_date timestamptz,
    ALTER COLUMN location_lat TYPE numeric, ALTER COLUMN location_lng TYPE numeric,
    ALTER COLUMN status DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL,
    ADD COLUMN stub boolean NOT NULL DEFAULT false;
-- 0.2.0 made a row for every ONU an event named, with no name; the NMS's row for one of them
-- fills it in from now on. (For an ONU the NMS did load, that only turns a repeated load's
-- failure into an update.)
UPDATE @extschema@.onus SET stub = true WHERE name IS NULL;

-- 3. The registry: no key on onu_id (stub ONUs instead), SET NULL where the legacy keys had it.
ALTER TABLE @extschema@.oms_meters
    DROP CONSTRAINT oms_meters_onu_id_fkey,
    DROP CONSTRAINT oms_meters_customer_id_fkey,
    ADD CONSTRAINT oms_meters_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES @extschema@.oms_customers (id) ON DELETE SET NULL,
    DROP CONSTRAINT oms_meters_substation_id_fkey,
    ADD CONSTRAINT oms_meters_substation_id_fkey FOREIGN KEY (substation_id)
        REFERENCES @extschema@.network_substations (id) ON DELETE SET NULL,
    DROP CONSTRAINT oms_meters_feeder_id_fkey,
    ADD CONSTRAINT oms_meters_feeder_id_fkey FOREIGN KEY (feeder_id)
        REFERENCES @extschema@.network_feeders (id) ON DELETE SET NULL,
    DROP CONSTRAINT oms_meters_dp_id_fkey,
    ADD CONSTRAINT oms_meters_dp_id_fkey FOREIGN KEY (dp_id)
        REFERENCES @extschema@.network_distribution_points (id) ON DELETE SET NULL,
    ALTER COLUMN location_lat TYPE numeric, ALTER COLUMN location_lng TYPE numeric,
    ALTER COLUMN meter_type DROP NOT NULL, ALTER COLUMN communication_status DROP NOT NULL,
    ALTER COLUMN power_status DROP NOT NULL, ALTER COLUMN status DROP NOT NULL,
    ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL;

ALTER TABLE @extschema@.network_substation_meters
    DROP CONSTRAINT network_substation_meters_substation_id_fkey,
    ADD CONSTRAINT network_substation_meters_substation_id_fkey FOREIGN KEY (substation_id)
        REFERENCES @extschema@.network_substations (id) ON DELETE CASCADE,
    DROP CONSTRAINT network_substation_meters_meter_id_fkey,
    ADD CONSTRAINT network_substation_meters_meter_id_fkey FOREIGN KEY (meter_id)
        REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    DROP CONSTRAINT network_substation_meters_feeder_id_fkey,
    ADD CONSTRAINT network_substation_meters_feeder_id_fkey FOREIGN KEY (feeder_id)
        REFERENCES @extschema@.network_feeders (id) ON DELETE SET NULL,
    ALTER COLUMN priority DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL,
    ADD COLUMN id uuid NOT NULL DEFAULT @extschema@.oms_uuid_v7() UNIQUE;

ALTER TABLE @extschema@.network_feeder_meters
    DROP CONSTRAINT network_feeder_meters_feeder_id_fkey,
    ADD CONSTRAINT network_feeder_meters_feeder_id_fkey FOREIGN KEY (feeder_id)
        REFERENCES @extschema@.network_feeders (id) ON DELETE CASCADE,
    DROP CONSTRAINT network_feeder_meters_meter_id_fkey,
    ADD CONSTRAINT network_feeder_meters_meter_id_fkey FOREIGN KEY (meter_id)
        REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    ALTER COLUMN priority DROP NOT NULL, ALTER COLUMN priority SET DEFAULT 2, ALTER COLUMN created_at DROP NOT NULL,
    ADD COLUMN id uuid NOT NULL DEFAULT @extschema@.oms_uuid_v7() UNIQUE;

ALTER TABLE @extschema@.oms_meter_status_events
    DROP CONSTRAINT oms_meter_status_events_meter_id_fkey,
    ADD CONSTRAINT oms_meter_status_events_meter_id_fkey FOREIGN KEY (meter_id)
        REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    DROP CONSTRAINT oms_meter_status_events_source_type_check,
    ALTER COLUMN source_type TYPE varchar(32),
    ADD CONSTRAINT oms_meter_status_events_source_type_check
        CHECK (source_type IN ('scada', 'onu', 'kaifa', 'call_center', 'system')),
    ALTER COLUMN confidence_score SET DEFAULT 1.0, ALTER COLUMN created_at DROP NOT NULL;
CREATE INDEX oms_meter_status_events_power_on_idx ON @extschema@.oms_meter_status_events (meter_id, event_timestamp)
    WHERE event_type = 'power_on';

-- 4. Outages: a device key per outage (one open outage per key), the legacy status width and
-- defaults, and the operations API's names on sources and timeline entries.
ALTER TABLE @extschema@.oms_outage_events
    DROP CONSTRAINT oms_outage_events_status_check,
    ALTER COLUMN status TYPE varchar(32),
    ADD CONSTRAINT oms_outage_events_status_check
        CHECK (status IN ('detected', 'confirmed', 'in_progress', 'restored', 'cleared', 'cancelled', 'merged')),
    ALTER COLUMN severity SET DEFAULT 'medium', ALTER COLUMN confidence_score SET DEFAULT 0.0,
    ALTER COLUMN affected_customers_count DROP NOT NULL,
    ALTER COLUMN event_latitude TYPE numeric, ALTER COLUMN event_longitude TYPE numeric,
    ALTER COLUMN last_updated_at DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL,
    ADD COLUMN scope varchar(20) CHECK (scope IN ('service', 'distribution_point', 'feeder', 'substation')),
    ADD COLUMN device_key varchar(120),
    ADD COLUMN customers_out integer DEFAULT 0,
    ADD COLUMN merged_into uuid REFERENCES @extschema@.oms_outage_events (id) ON DELETE SET NULL,
    ADD COLUMN parent_outage_id uuid REFERENCES @extschema@.oms_outage_events (id) ON DELETE SET NULL;
-- A roll-up reads a feeder's outages around a signal's time.
CREATE INDEX oms_outage_events_feeder_start_idx ON @extschema@.oms_outage_events (feeder_id, first_detected_at)
    WHERE feeder_id IS NOT NULL;
CREATE INDEX oms_outage_events_merged_into_idx ON @extschema@.oms_outage_events (merged_into)
    WHERE merged_into IS NOT NULL;
CREATE INDEX oms_outage_events_parent_idx ON @extschema@.oms_outage_events (parent_outage_id)
    WHERE parent_outage_id IS NOT NULL;
-- The open outages under a device, which a SCADA outage absorbs.
CREATE INDEX oms_outage_events_open_feeder_idx ON @extschema@.oms_outage_events (feeder_id)
    WHERE status IN ('detected', 'confirmed', 'in_progress');
CREATE INDEX oms_outage_events_open_substation_idx ON @extschema@.oms_outage_events (substation_id)
    WHERE status IN ('detected', 'confirmed', 'in_progress');
-- 0.2.0 recorded SCADA outages only, on a feeder or else a substation.
UPDATE @extschema@.oms_outage_events
SET scope = CASE WHEN feeder_id IS NOT NULL THEN 'feeder' ELSE 'substation' END,
    device_key = CASE WHEN feeder_id IS NOT NULL THEN 'feeder:' || feeder_id ELSE 'substation:' || substation_id END
WHERE feeder_id IS NOT NULL OR substation_id IS NOT NULL;
DROP INDEX @extschema@.oms_outage_events_one_open_per_device;
CREATE UNIQUE INDEX oms_outage_events_one_open_per_device
    ON @extschema@.oms_outage_events (device_key)
    WHERE status IN ('detected', 'confirmed', 'in_progress');

ALTER TABLE @extschema@.oms_event_sources
    DROP CONSTRAINT oms_event_sources_outage_event_id_fkey,
    ADD CONSTRAINT oms_event_sources_outage_event_id_fkey FOREIGN KEY (outage_event_id)
        REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    ALTER COLUMN source_type TYPE varchar(32),
    ALTER COLUMN correlation_weight SET DEFAULT 1.0, ALTER COLUMN created_at DROP NOT NULL,
    ADD COLUMN event_timestamp timestamptz, ADD COLUMN confidence_weight numeric(5, 2), ADD COLUMN event_data jsonb;
UPDATE @extschema@.oms_event_sources SET event_timestamp = detected_at, confidence_weight = correlation_weight;

ALTER TABLE @extschema@.oms_event_timeline
    DROP CONSTRAINT oms_event_timeline_outage_event_id_fkey,
    ADD CONSTRAINT oms_event_timeline_outage_event_id_fkey FOREIGN KEY (outage_event_id)
        REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    ALTER COLUMN status TYPE varchar(32), ALTER COLUMN source TYPE varchar(64),
    ADD COLUMN event_description text, ADD COLUMN event_timestamp timestamptz, ADD COLUMN created_by varchar(100);
UPDATE @extschema@.oms_event_timeline
SET event_description = description, event_timestamp = "timestamp", created_by = 'oms_correlation';

-- 5. Correlation rules in the legacy shape. Each 0.2.0 per-source row becomes a rule that lists
-- its one source with its weight, so every source keeps the weight the DBA gave it.
ALTER TABLE @extschema@.oms_correlation_rules
    ADD COLUMN source_types varchar(100)[],
    ADD COLUMN spatial_radius_meters integer DEFAULT 1000,
    ADD COLUMN confidence_threshold numeric(5, 2) DEFAULT 0.7,
    ADD COLUMN weight_scada numeric(5, 2) DEFAULT 1.0 CHECK (weight_scada BETWEEN 0 AND 1),
    ADD COLUMN weight_kaifa numeric(5, 2) DEFAULT 0.8 CHECK (weight_kaifa BETWEEN 0 AND 1),
    ADD COLUMN weight_onu numeric(5, 2) DEFAULT 0.6 CHECK (weight_onu BETWEEN 0 AND 1),
    ADD COLUMN weight_call_center numeric(5, 2) DEFAULT 0.4 CHECK (weight_call_center BETWEEN 0 AND 1);
UPDATE @extschema@.oms_correlation_rules
SET source_types = ARRAY[source_type]::varchar(100)[],
    weight_scada = CASE source_type WHEN 'scada' THEN correlation_weight END,
    weight_kaifa = CASE source_type WHEN 'kaifa' THEN correlation_weight END,
    weight_onu = CASE source_type WHEN 'onu' THEN correlation_weight END,
    weight_call_center = CASE source_type WHEN 'call_center' THEN correlation_weight END;
ALTER TABLE @extschema@.oms_correlation_rules RENAME COLUMN enabled TO is_active;
ALTER TABLE @extschema@.oms_correlation_rules
    DROP COLUMN source_type, DROP COLUMN correlation_weight,
    ALTER COLUMN source_types SET NOT NULL,
    ALTER COLUMN is_active DROP NOT NULL, ALTER COLUMN correlation_window_minutes DROP NOT NULL,
    ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL,
    ALTER COLUMN id DROP DEFAULT;
ALTER EXTENSION oms_correlation DROP SEQUENCE @extschema@.oms_correlation_rules_id_seq;
DROP SEQUENCE @extschema@.oms_correlation_rules_id_seq;
ALTER TABLE @extschema@.oms_correlation_rules
    ALTER COLUMN id TYPE uuid USING @extschema@.oms_uuid_v7(),
    ALTER COLUMN id SET DEFAULT @extschema@.oms_uuid_v7();

-- The one weight lookup (PL/pgSQL: its plan is kept for the session).
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

-- 6. Storm mode: the legacy settings columns and the operations API's key/value rows.
ALTER TABLE @extschema@.oms_storm_mode_config RENAME COLUMN activation_threshold_per_minute TO auto_activation_threshold;
ALTER TABLE @extschema@.oms_storm_mode_config
    ALTER COLUMN config_name DROP NOT NULL, ALTER COLUMN is_active DROP NOT NULL,
    ALTER COLUMN auto_activation_threshold DROP NOT NULL,
    ALTER COLUMN deactivation_threshold_per_minute DROP NOT NULL, ALTER COLUMN window_multiplier DROP NOT NULL,
    ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL,
    ADD COLUMN correlation_window_minutes integer DEFAULT 60,
    ADD COLUMN spatial_radius_meters integer DEFAULT 2000,
    ADD COLUMN confidence_threshold numeric(5, 2) DEFAULT 0.5,
    ADD COLUMN config_key varchar(100) UNIQUE, ADD COLUMN config_value text, ADD COLUMN description text,
    ALTER COLUMN id DROP DEFAULT;
ALTER EXTENSION oms_correlation DROP SEQUENCE @extschema@.oms_storm_mode_config_id_seq;
DROP SEQUENCE @extschema@.oms_storm_mode_config_id_seq;
ALTER TABLE @extschema@.oms_storm_mode_config
    ALTER COLUMN id TYPE uuid USING @extschema@.oms_uuid_v7(),
    ALTER COLUMN id SET DEFAULT @extschema@.oms_uuid_v7();

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
    END IF;
    RETURN NEW;
END
$$;

-- 7. Source tables.
ALTER TABLE @extschema@.scada_events
    DROP CONSTRAINT scada_events_outage_event_id_fkey,
    ALTER COLUMN latitude TYPE numeric, ALTER COLUMN longitude TYPE numeric,
    ALTER COLUMN source TYPE varchar(128),
    ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN affected_meter_count SET DEFAULT 0;

ALTER TABLE @extschema@.scada_event_affected_meters
    DROP CONSTRAINT scada_event_affected_meters_scada_event_id_fkey,
    ADD CONSTRAINT scada_event_affected_meters_scada_event_id_fkey FOREIGN KEY (scada_event_id)
        REFERENCES @extschema@.scada_events (id) ON DELETE CASCADE,
    DROP CONSTRAINT scada_event_affected_meters_meter_id_fkey,
    ALTER COLUMN checked_at DROP NOT NULL,
    ADD COLUMN id uuid;
-- A default for new rows only: the rows 0.2.0 wrote keep a NULL id rather than be rewritten.
ALTER TABLE @extschema@.scada_event_affected_meters ALTER COLUMN id SET DEFAULT pg_catalog.gen_random_uuid();

CREATE TABLE @extschema@.scada_raw_messages (
    id              uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    raw_payload     jsonb NOT NULL,
    received_at     timestamptz DEFAULT pg_catalog.now(),
    scada_event_id  uuid REFERENCES @extschema@.scada_events (id) ON DELETE CASCADE
);
CREATE INDEX scada_raw_messages_event_idx ON @extschema@.scada_raw_messages (scada_event_id);

ALTER TABLE @extschema@.meters
    DROP CONSTRAINT meters_onu_id_fkey,
    ADD CONSTRAINT meters_onu_id_fkey FOREIGN KEY (onu_id) REFERENCES @extschema@.onus (id) ON DELETE SET NULL,
    DROP CONSTRAINT meters_oms_meter_id_fkey,
    ADD COLUMN building_id varchar(50),
    ALTER COLUMN location_lat TYPE numeric, ALTER COLUMN location_lng TYPE numeric,
    ALTER COLUMN created_at DROP NOT NULL;

ALTER TABLE @extschema@.onu_events
    DROP CONSTRAINT onu_events_onu_id_fkey,
    ADD CONSTRAINT onu_events_onu_id_fkey FOREIGN KEY (onu_id) REFERENCES @extschema@.onus (id) ON DELETE SET NULL,
    DROP CONSTRAINT onu_events_meter_id_fkey,
    ALTER COLUMN onu_id DROP NOT NULL,
    ALTER COLUMN location_lat TYPE numeric, ALTER COLUMN location_lng TYPE numeric,
    ALTER COLUMN created_at DROP NOT NULL;

ALTER TABLE @extschema@.kaifa_events
    ALTER COLUMN created_at DROP NOT NULL, ADD COLUMN updated_at timestamptz DEFAULT pg_catalog.now();

ALTER TABLE @extschema@.kaifa_event_headers
    DROP CONSTRAINT kaifa_event_headers_event_id_fkey,
    ADD CONSTRAINT kaifa_event_headers_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    ALTER COLUMN async_reply_flag SET DEFAULT false, ALTER COLUMN ack_required SET DEFAULT false;

ALTER TABLE @extschema@.kaifa_event_payloads
    DROP CONSTRAINT kaifa_event_payloads_event_id_fkey,
    ADD CONSTRAINT kaifa_event_payloads_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE;

-- The user hangs off its header, the payload's children off the payload, as legacy readers join
-- them; event_id stays on them without a key.
ALTER TABLE @extschema@.kaifa_event_users
    DROP CONSTRAINT kaifa_event_users_event_id_fkey, ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN header_id uuid REFERENCES @extschema@.kaifa_event_headers (id) ON DELETE CASCADE;
UPDATE @extschema@.kaifa_event_users u SET header_id = h.id
FROM @extschema@.kaifa_event_headers h WHERE h.event_id = u.event_id;
DROP INDEX @extschema@.kaifa_event_users_event_idx;
CREATE INDEX kaifa_event_users_header_idx ON @extschema@.kaifa_event_users (header_id);

ALTER TABLE @extschema@.kaifa_event_assets
    DROP CONSTRAINT kaifa_event_assets_event_id_fkey, ALTER COLUMN event_id DROP NOT NULL,
    DROP CONSTRAINT kaifa_event_assets_meter_id_fkey,
    ADD COLUMN payload_id uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE,
    ADD COLUMN name_description text;
ALTER TABLE @extschema@.kaifa_event_usage_points
    DROP CONSTRAINT kaifa_event_usage_points_event_id_fkey, ALTER COLUMN event_id DROP NOT NULL,
    DROP CONSTRAINT kaifa_event_usage_points_meter_id_fkey,
    ADD COLUMN payload_id uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE,
    ADD COLUMN name_description text;
ALTER TABLE @extschema@.kaifa_event_details
    DROP CONSTRAINT kaifa_event_details_event_id_fkey, ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN payload_id uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE,
    ADD COLUMN detail_order integer DEFAULT 0;
ALTER TABLE @extschema@.kaifa_event_names RENAME COLUMN name_type_name TO name_type;
ALTER TABLE @extschema@.kaifa_event_names RENAME COLUMN name_type_description TO name_description;
ALTER TABLE @extschema@.kaifa_event_names
    DROP CONSTRAINT kaifa_event_names_event_id_fkey, ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN payload_id uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE;
ALTER TABLE @extschema@.kaifa_event_status RENAME COLUMN status_time TO date_time;
ALTER TABLE @extschema@.kaifa_event_status
    DROP CONSTRAINT kaifa_event_status_event_id_fkey, ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN payload_id uuid REFERENCES @extschema@.kaifa_event_payloads (id) ON DELETE CASCADE;
UPDATE @extschema@.kaifa_event_assets c SET payload_id = p.id
FROM @extschema@.kaifa_event_payloads p WHERE p.event_id = c.event_id;
UPDATE @extschema@.kaifa_event_usage_points c SET payload_id = p.id
FROM @extschema@.kaifa_event_payloads p WHERE p.event_id = c.event_id;
UPDATE @extschema@.kaifa_event_details c SET payload_id = p.id
FROM @extschema@.kaifa_event_payloads p WHERE p.event_id = c.event_id;
UPDATE @extschema@.kaifa_event_names c SET payload_id = p.id
FROM @extschema@.kaifa_event_payloads p WHERE p.event_id = c.event_id;
UPDATE @extschema@.kaifa_event_status c SET payload_id = p.id
FROM @extschema@.kaifa_event_payloads p WHERE p.event_id = c.event_id;
DROP INDEX @extschema@.kaifa_event_assets_event_idx, @extschema@.kaifa_event_usage_points_event_idx,
    @extschema@.kaifa_event_details_event_idx, @extschema@.kaifa_event_names_event_idx,
    @extschema@.kaifa_event_status_event_idx;
CREATE INDEX kaifa_event_assets_payload_idx ON @extschema@.kaifa_event_assets (payload_id);
CREATE INDEX kaifa_event_usage_points_payload_idx ON @extschema@.kaifa_event_usage_points (payload_id);
CREATE INDEX kaifa_event_details_payload_idx ON @extschema@.kaifa_event_details (payload_id);
CREATE INDEX kaifa_event_names_payload_idx ON @extschema@.kaifa_event_names (payload_id);
CREATE INDEX kaifa_event_status_payload_idx ON @extschema@.kaifa_event_status (payload_id);

ALTER TABLE @extschema@.kaifa_event_metadata
    DROP CONSTRAINT kaifa_event_metadata_event_id_fkey,
    ADD CONSTRAINT kaifa_event_metadata_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    ALTER COLUMN metadata DROP NOT NULL;
ALTER TABLE @extschema@.kaifa_event_original_messages RENAME COLUMN message_time TO original_timestamp;
ALTER TABLE @extschema@.kaifa_event_original_messages
    DROP CONSTRAINT kaifa_event_original_messages_event_id_fkey,
    ADD CONSTRAINT kaifa_event_original_messages_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES @extschema@.kaifa_events (id) ON DELETE CASCADE,
    ALTER COLUMN original_message DROP NOT NULL;

ALTER TABLE @extschema@.callcenter_tickets
    ALTER COLUMN status SET DEFAULT 'Registered', ALTER COLUMN source SET DEFAULT 'call-center',
    ALTER COLUMN created_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL;
ALTER TABLE @extschema@.callcenter_customers
    DROP CONSTRAINT callcenter_customers_ticket_id_fkey,
    ADD CONSTRAINT callcenter_customers_ticket_id_fkey FOREIGN KEY (ticket_id)
        REFERENCES @extschema@.callcenter_tickets (id) ON DELETE CASCADE,
    DROP CONSTRAINT callcenter_customers_meter_id_fkey;
ALTER TABLE @extschema@.callcenter_ticket_status_history
    DROP CONSTRAINT callcenter_ticket_status_history_ticket_id_fkey,
    ADD CONSTRAINT callcenter_ticket_status_history_ticket_id_fkey FOREIGN KEY (ticket_id)
        REFERENCES @extschema@.callcenter_tickets (id) ON DELETE CASCADE,
    ALTER COLUMN changed_at SET DEFAULT pg_catalog.now();
ALTER TABLE @extschema@.callcenter_raw_messages
    DROP CONSTRAINT callcenter_raw_messages_ticket_id_fkey,
    ADD CONSTRAINT callcenter_raw_messages_ticket_id_fkey FOREIGN KEY (ticket_id)
        REFERENCES @extschema@.callcenter_tickets (id) ON DELETE SET NULL,
    ALTER COLUMN ticket_id DROP NOT NULL, ALTER COLUMN received_at DROP NOT NULL;

-- 8. New tables: the operations API's and the legacy device tables.
--@operations-begin
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
--@operations-end

--@legacy-compat-begin
-- The rest of the legacy surface (../shared/LEGACY_SCHEMA.md): two device tables the legacy scripts
-- created and DBAs' scripts still load, the legacy trigger functions with the triggers they drive,
-- and the behaviour that keeps legacy loads valid where the extension stores things its own way.

CREATE TABLE @extschema@.oms_smart_meters (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    meter_number        varchar(64) NOT NULL UNIQUE,
    customer_id         uuid REFERENCES @extschema@.oms_customers (id),
    asset_mrid          varchar(100),
    usage_point_mrid    varchar(100),
    dp_id               uuid REFERENCES @extschema@.network_distribution_points (id),
    location_lat        numeric,
    location_lng        numeric,
    meter_type          varchar(50) DEFAULT 'kaifa',
    status              varchar(20) DEFAULT 'active',
    last_communication  timestamptz,
    created_at          timestamptz DEFAULT pg_catalog.now(),
    updated_at          timestamptz DEFAULT pg_catalog.now()
);

CREATE TABLE @extschema@.oms_onu_devices (
    id                  uuid PRIMARY KEY DEFAULT @extschema@.oms_uuid_v7(),
    onu_id              integer NOT NULL UNIQUE,
    onu_serial_no       varchar(100) UNIQUE,
    customer_id         uuid REFERENCES @extschema@.oms_customers (id),
    dp_id               uuid REFERENCES @extschema@.network_distribution_points (id),
    fibertech_id        varchar(50),
    olt_name            varchar(200),
    location_lat        numeric,
    location_lng        numeric,
    power_status        boolean DEFAULT true,
    last_power_change   timestamptz,
    status              varchar(20) DEFAULT 'active',
    created_at          timestamptz DEFAULT pg_catalog.now(),
    updated_at          timestamptz DEFAULT pg_catalog.now()
);

-- The legacy scripts' four updated_at trigger functions, under their own names. The triggers fire
-- only when the statement left updated_at as it was: the extension's own statements set it, so a
-- status update of a whole feeder pays a comparison per row, not a function call.
CREATE FUNCTION @extschema@.oms_update_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION @extschema@.onu_update_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION @extschema@.cc_update_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE FUNCTION @extschema@.update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE TRIGGER oms_network_substations_updated_at BEFORE UPDATE ON @extschema@.network_substations
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_network_feeders_updated_at BEFORE UPDATE ON @extschema@.network_feeders
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_network_dp_updated_at BEFORE UPDATE ON @extschema@.network_distribution_points
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_customers_updated_at BEFORE UPDATE ON @extschema@.oms_customers
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_meters_updated_at BEFORE UPDATE ON @extschema@.oms_meters
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_onu_devices_updated_at BEFORE UPDATE ON @extschema@.oms_onu_devices
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER oms_smart_meters_updated_at BEFORE UPDATE ON @extschema@.oms_smart_meters
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.oms_update_updated_at();
CREATE TRIGGER onu_onus_updated_at BEFORE UPDATE ON @extschema@.onus
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.onu_update_updated_at();
CREATE TRIGGER cc_tickets_updated_at BEFORE UPDATE ON @extschema@.callcenter_tickets
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.cc_update_updated_at();
CREATE TRIGGER update_kaifa_events_updated_at BEFORE UPDATE ON @extschema@.kaifa_events
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION @extschema@.update_updated_at_column();

-- A registry row may name an ONU the fibre NMS has not reported yet (the MDM export is loaded
-- first). The legacy schema had no key there and took the row; so does this one, and the ONU gets
-- a stub row, as an event naming an unknown ONU does, which the NMS load later fills in.
CREATE FUNCTION @extschema@.oms_stub_unknown_onu() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO onus (id, stub) SELECT NEW.onu_id, true WHERE NOT EXISTS (SELECT FROM onus WHERE id = NEW.onu_id)
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_meters_stub_unknown_onu AFTER INSERT OR UPDATE OF onu_id ON @extschema@.oms_meters
    FOR EACH ROW WHEN (NEW.onu_id IS NOT NULL)
    EXECUTE FUNCTION @extschema@.oms_stub_unknown_onu();

-- A row for an ONU that has a stub replaces the stub, instead of failing on its key as it would
-- not have on the legacy schema: the INSERT becomes an UPDATE of the stub (so it reports no row
-- inserted). A value the NMS leaves out keeps what events taught the stub (its serial, its place).
-- pg_restore relies on it too: restoring oms_meters before onus makes stubs, which the restored
-- onus rows then replace exactly. The extension's own stub inserts skip a known ONU beforehand, so
-- this fires for new ONUs only.
CREATE FUNCTION @extschema@.oms_fill_onu_stub() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE onus o SET
        onu_serial_no = coalesce(NEW.onu_serial_no, o.onu_serial_no), name = NEW.name, model = NEW.model,
        fibertech_id = NEW.fibertech_id, building_id = NEW.building_id, region_code = NEW.region_code,
        olt_name = NEW.olt_name, area_fibertech = NEW.area_fibertech, onu_power_flag = NEW.onu_power_flag,
        onu_power_flag_date = NEW.onu_power_flag_date,
        location_lat = coalesce(NEW.location_lat, o.location_lat),
        location_lng = coalesce(NEW.location_lng, o.location_lng),
        status = NEW.status, created_at = NEW.created_at, updated_at = NEW.updated_at, stub = NEW.stub
    WHERE o.id = NEW.id AND o.stub;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER onus_fill_stub BEFORE INSERT ON @extschema@.onus
    FOR EACH ROW EXECUTE FUNCTION @extschema@.oms_fill_onu_stub();

-- The operations API reads sources and timeline entries under its own column names and writes
-- timeline entries under them alone. The extension's statements write both spellings, so this
-- fires only for rows written under one: it fills in the other, and a timeline entry's status
-- (NOT NULL in the legacy schema, which the API never sets) from its outage.
CREATE FUNCTION @extschema@.oms_fill_api_columns() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'oms_event_timeline' THEN
        IF TG_OP = 'UPDATE' AND NEW.event_description IS DISTINCT FROM OLD.event_description
           AND NEW.description IS NOT DISTINCT FROM OLD.description THEN
            NEW.description := NEW.event_description;
        ELSIF TG_OP = 'UPDATE' AND NEW.description IS DISTINCT FROM OLD.description
           AND NEW.event_description IS NOT DISTINCT FROM OLD.event_description THEN
            NEW.event_description := NEW.description;
        END IF;
        NEW.description := coalesce(NEW.description, NEW.event_description);
        NEW.event_description := coalesce(NEW.event_description, NEW.description);
        -- "timestamp" defaults to now(): an API row that gave only event_timestamp takes that.
        IF NEW.event_timestamp IS NOT NULL AND (TG_OP = 'INSERT' AND NEW."timestamp" = now()
                                               OR TG_OP = 'UPDATE' AND NEW."timestamp" = OLD."timestamp") THEN
            NEW."timestamp" := NEW.event_timestamp;
        END IF;
        NEW.event_timestamp := coalesce(NEW.event_timestamp, NEW."timestamp");
        IF NEW.status IS NULL THEN
            NEW.status := (SELECT o.status FROM oms_outage_events o WHERE o.id = NEW.outage_event_id);
        END IF;
    ELSE
        NEW.event_timestamp := coalesce(NEW.event_timestamp, NEW.detected_at);
        NEW.confidence_weight := coalesce(NEW.confidence_weight, NEW.correlation_weight);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER oms_event_timeline_api_columns BEFORE INSERT OR UPDATE ON @extschema@.oms_event_timeline
    FOR EACH ROW WHEN (NEW.event_description IS DISTINCT FROM NEW.description
                       OR NEW.event_timestamp IS DISTINCT FROM NEW."timestamp" OR NEW.status IS NULL)
    EXECUTE FUNCTION @extschema@.oms_fill_api_columns();
CREATE TRIGGER oms_event_sources_api_columns BEFORE INSERT OR UPDATE ON @extschema@.oms_event_sources
    FOR EACH ROW WHEN (NEW.event_timestamp IS NULL OR NEW.confidence_weight IS NULL)
    EXECUTE FUNCTION @extschema@.oms_fill_api_columns();

-- The legacy great-circle distance, in meters (oms_correlate_events places external reports by it).
CREATE FUNCTION @extschema@.haversine_distance_meters(lat1 numeric, lon1 numeric, lat2 numeric, lon2 numeric)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 2 * 6371000 * asin(sqrt(
        power(sin(radians((lat2 - lat1)::float8) / 2), 2)
        + cos(radians(lat1::float8)) * cos(radians(lat2::float8)) * power(sin(radians((lon2 - lon1)::float8) / 2), 2)))
$$;
--@legacy-compat-end

-- 9. pg_dump keeps the new tables' rows.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.scada_raw_messages', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_outage_customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_crew_assignments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_customer_notifications', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_smart_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_onu_devices', '');

-- 10. The customers of 0.2.0's outages: those of the meters their alarms found affected.
INSERT INTO @extschema@.oms_outage_customers (outage_id, customer_id, linked_at, restored_at)
SELECT o.id, m.customer_id, min(e.event_timestamp), o.actual_restoration_time
FROM @extschema@.oms_outage_events o
JOIN @extschema@.scada_events e ON e.outage_event_id = o.id
JOIN @extschema@.scada_event_affected_meters a ON a.scada_event_id = e.id
JOIN @extschema@.oms_meters m ON m.id = a.meter_id AND m.customer_id IS NOT NULL
WHERE a.meter_status_after = 'off'
GROUP BY o.id, m.customer_id, o.actual_restoration_time;

-- 10b. Outage memberships (the correlation engine, SPEC §5.1). 0.2.0's outages keep their meters:
-- those their alarms marked off, each off from the first alarm that did, and back on at the
-- outage's end (an open outage's are still out; a meter out in two open outages stays out in the
-- newer one only).
CREATE TABLE @extschema@.oms_outage_meters (
    outage_id               uuid NOT NULL REFERENCES @extschema@.oms_outage_events (id) ON DELETE CASCADE,
    meter_id                uuid NOT NULL REFERENCES @extschema@.oms_meters (id) ON DELETE CASCADE,
    off_at                  timestamptz NOT NULL,
    on_at                   timestamptz,
    customer_key            uuid NOT NULL,
    customer_id             uuid REFERENCES @extschema@.oms_customers (id) ON DELETE SET NULL,
    dp_id                   uuid REFERENCES @extschema@.network_distribution_points (id) ON DELETE SET NULL,
    feeder_id               uuid REFERENCES @extschema@.network_feeders (id) ON DELETE SET NULL,
    substation_id           uuid REFERENCES @extschema@.network_substations (id) ON DELETE SET NULL,
    first_source            varchar(32) NOT NULL,
    first_source_event_id   varchar(255),
    PRIMARY KEY (outage_id, meter_id, off_at)
);
CREATE UNIQUE INDEX oms_outage_meters_out ON @extschema@.oms_outage_meters (meter_id) WHERE on_at IS NULL;
-- A late signal finds the episode its meter's next power-on ended.
CREATE INDEX oms_outage_meters_meter_idx ON @extschema@.oms_outage_meters (meter_id, on_at);
-- Whether an outage still has a meter out, after every power-on, and whether a customer is still
-- out in it. The customer is in the key so that a lookup of one customer never reads every meter
-- still out in a feeder outage (a join of 10,000 meters took 3.6 s reading them for each meter).
CREATE INDEX oms_outage_meters_open_idx ON @extschema@.oms_outage_meters (outage_id, customer_key) WHERE on_at IS NULL;
CREATE INDEX oms_outage_meters_customer_idx ON @extschema@.oms_outage_meters (outage_id, customer_key);
CREATE INDEX oms_outage_meters_dp_idx ON @extschema@.oms_outage_meters (dp_id, off_at);
CREATE INDEX oms_outage_meters_feeder_idx ON @extschema@.oms_outage_meters (feeder_id, off_at);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_outage_meters', '');

WITH affected AS (
    SELECT DISTINCT ON (o.id, a.meter_id)
           o.id AS outage_id, a.meter_id, e.event_timestamp AS off_at, e.id AS scada_event_id,
           o.status IN ('detected', 'confirmed', 'in_progress') AS open, o.first_detected_at,
           CASE WHEN o.status NOT IN ('detected', 'confirmed', 'in_progress')
                THEN greatest(coalesce(o.actual_restoration_time, o.last_updated_at, e.event_timestamp),
                              e.event_timestamp) END AS on_at,
           o.feeder_id, o.substation_id
    FROM @extschema@.oms_outage_events o
    JOIN @extschema@.scada_events e ON e.outage_event_id = o.id
    JOIN @extschema@.scada_event_affected_meters a ON a.scada_event_id = e.id
    WHERE a.meter_status_after = 'off'
    ORDER BY o.id, a.meter_id, e.event_timestamp
), placed AS (
    SELECT * FROM affected WHERE NOT open
    UNION ALL
    (SELECT DISTINCT ON (meter_id) * FROM affected WHERE open ORDER BY meter_id, first_detected_at DESC)
)
INSERT INTO @extschema@.oms_outage_meters
    (outage_id, meter_id, off_at, on_at, customer_key, customer_id, dp_id, feeder_id, substation_id,
     first_source, first_source_event_id)
SELECT p.outage_id, p.meter_id, p.off_at, p.on_at, coalesce(m.customer_id, m.id), m.customer_id, m.dp_id,
       coalesce(m.feeder_id, p.feeder_id), coalesce(m.substation_id, p.substation_id), 'scada', p.scada_event_id::text
FROM placed p JOIN @extschema@.oms_meters m ON m.id = p.meter_id;

-- Their counts from their meters; SCADA's open outages are confirmed at 1.0, as SCADA's are now.
UPDATE @extschema@.oms_outage_events o
SET affected_customers_count = greatest(coalesce(o.affected_customers_count, 0), c.affected),
    customers_out = CASE WHEN o.status IN ('detected', 'confirmed', 'in_progress') THEN c.still_out ELSE 0 END
FROM (SELECT outage_id, count(DISTINCT customer_key)::int AS affected,
             count(DISTINCT customer_key) FILTER (WHERE on_at IS NULL)::int AS still_out
      FROM @extschema@.oms_outage_meters GROUP BY outage_id) AS c
WHERE c.outage_id = o.id;
UPDATE @extschema@.oms_outage_events o SET status = 'confirmed', confidence_score = 1.0
WHERE o.status = 'detected'
  AND EXISTS (SELECT FROM @extschema@.oms_event_sources s WHERE s.outage_event_id = o.id AND s.source_type = 'scada');

-- 11. Views and functions that read the changed tables.
--@views-begin
-- Views for operators and dashboards (SPEC §2).

-- Each view has the legacy view's columns first, under the legacy names and meanings
-- (../shared/LEGACY_SCHEMA.md): dashboards written for the legacy database read them unchanged.
-- The extension's own columns follow.

-- Legacy: substation_id, feeder_id, dp_id and customer_id are the devices' and customer's codes.
CREATE VIEW @extschema@.oms_meters_with_topology AS
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
CREATE VIEW @extschema@.network_substations_with_meters AS
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

CREATE VIEW @extschema@.network_feeders_with_meters AS
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
CREATE VIEW @extschema@.oms_active_outages AS
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
CREATE VIEW @extschema@.oms_correlation_summary AS
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
GROUP BY o.id;

-- One row per source: what each field system has told the registry, and the weight its signals
-- carry (oms_source_weight()).
CREATE VIEW @extschema@.oms_source_summary AS
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
CREATE VIEW @extschema@.oms_unmatched_events AS
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

--@sync-begin
-- oms_sync_meter_registry() (issue 6): builds or refreshes the meter registry from what the legacy
-- sources already know, and links their rows to it. Set-based: one statement per step, whatever
-- the number of meters; idempotent: a second call creates and links nothing.
--
--   * the ONU `meters` table: meter id as meter number, its ONU;
--   * Kaifa assets: the asset mRID (as meter number when no meter has it), with the usage point
--     reported in the same message;
--   * call-center tickets: the meter number the customer gave.
CREATE OR REPLACE FUNCTION @extschema@.oms_sync_meter_registry()
RETURNS TABLE(meters_created int, meters_refreshed int, onu_meters_linked int, kaifa_assets_linked int,
              kaifa_usage_points_linked int, callcenter_customers_linked int)
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    created_onu int;
    created_kaifa int;
    created_callcenter int;
    refreshed_onu int;
    refreshed_kaifa int;
BEGIN
    -- ONU meters: new meters, then the ONU link on meters that lack it.
    INSERT INTO oms_meters (meter_number, meter_type, onu_id, location_lat, location_lng, status)
    SELECT m.meter_id, coalesce(m.meter_type, 'smart'), m.onu_id, m.location_lat, m.location_lng,
           CASE WHEN m.status IN ('active', 'inactive', 'decommissioned') THEN m.status ELSE 'active' END
    FROM meters m
    WHERE m.meter_id IS NOT NULL AND m.meter_id <> ''
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_onu = ROW_COUNT;

    UPDATE oms_meters o SET onu_id = m.onu_id, updated_at = now()
    FROM meters m
    WHERE o.meter_number = m.meter_id AND m.onu_id IS NOT NULL AND o.onu_id IS DISTINCT FROM m.onu_id;
    GET DIAGNOSTICS refreshed_onu = ROW_COUNT;

    -- Kaifa assets: a meter per asset mRID nobody knows yet; the mRIDs on meters known by number.
    INSERT INTO oms_meters (meter_number, asset_mrid)
    SELECT DISTINCT a.mrid, a.mrid
    FROM kaifa_event_assets a
    WHERE a.mrid IS NOT NULL AND a.mrid <> ''
      AND NOT EXISTS (SELECT 1 FROM oms_meters o WHERE o.asset_mrid = a.mrid)
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_kaifa = ROW_COUNT;

    WITH pairs AS (
        SELECT DISTINCT ON (a.mrid) a.mrid AS asset_mrid, u.mrid AS usage_point_mrid
        FROM kaifa_event_assets a
        LEFT JOIN kaifa_event_usage_points u ON u.payload_id = a.payload_id AND u.mrid IS NOT NULL AND u.mrid <> ''
        WHERE a.mrid IS NOT NULL AND a.mrid <> ''
        ORDER BY a.mrid, u.mrid NULLS LAST
    )
    UPDATE oms_meters o
    SET asset_mrid = coalesce(o.asset_mrid, p.asset_mrid),
        usage_point_mrid = coalesce(o.usage_point_mrid, p.usage_point_mrid),
        updated_at = now()
    FROM pairs p
    WHERE (o.meter_number = p.asset_mrid OR o.asset_mrid = p.asset_mrid)
      AND (o.asset_mrid IS NULL OR (o.usage_point_mrid IS NULL AND p.usage_point_mrid IS NOT NULL));
    GET DIAGNOSTICS refreshed_kaifa = ROW_COUNT;

    -- Call-center meter numbers.
    INSERT INTO oms_meters (meter_number)
    SELECT DISTINCT c.meter_number FROM callcenter_customers c
    WHERE c.meter_number IS NOT NULL AND c.meter_number <> ''
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_callcenter = ROW_COUNT;

    meters_created := created_onu + created_kaifa + created_callcenter;
    meters_refreshed := refreshed_onu + refreshed_kaifa;

    -- Links, for the rows that have none yet.
    UPDATE meters m SET oms_meter_id = o.id
    FROM oms_meters o WHERE o.meter_number = m.meter_id AND m.oms_meter_id IS NULL;
    GET DIAGNOSTICS onu_meters_linked = ROW_COUNT;

    UPDATE kaifa_event_assets a SET meter_id = o.id
    FROM oms_meters o WHERE o.asset_mrid = a.mrid AND a.meter_id IS NULL;
    GET DIAGNOSTICS kaifa_assets_linked = ROW_COUNT;

    UPDATE kaifa_event_usage_points u SET meter_id = o.id
    FROM oms_meters o WHERE o.usage_point_mrid = u.mrid AND u.meter_id IS NULL;
    GET DIAGNOSTICS kaifa_usage_points_linked = ROW_COUNT;

    UPDATE callcenter_customers c SET meter_id = o.id
    FROM oms_meters o WHERE o.meter_number = c.meter_number AND c.meter_id IS NULL;
    GET DIAGNOSTICS callcenter_customers_linked = ROW_COUNT;

    RETURN NEXT;
END
$$;
--@sync-end

-- 12. The DROP guard decides from each statement's parse tree (a C function now).
DROP EVENT TRIGGER oms_correlation_guard_drop;
DROP FUNCTION @extschema@.oms_guard_drop();
--@drop-guard-begin
-- What DROP EXTENSION does to data (issue 6).
--
-- The tables are members of the extension, so DROP EXTENSION would drop them and every outage
-- record with them. It refuses to while they hold data. A DBA chooses:
--   * SELECT oms_keep_data_on_drop();   the tables (and their sequences) leave the extension and
--                                       survive DROP EXTENSION; a later CREATE EXTENSION adopts
--                                       them again, rows and all;
--   * SET oms_correlation.allow_drop_with_data = on;   (a superuser) DROP EXTENSION deletes the
--                                       data too.

-- What a DROP of the extension would delete: nothing once oms_keep_data_on_drop() has detached
-- the tables.
CREATE OR REPLACE FUNCTION @extschema@.oms_data_at_stake(OUT outages bigint, OUT status_events bigint)
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    outages := 0;
    status_events := 0;
    IF EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE e.extname = 'oms_correlation' AND d.classid = 'pg_class'::regclass
                 AND d.objid = 'oms_outage_events'::regclass AND d.deptype = 'e') THEN
        SELECT count(*) INTO outages FROM oms_outage_events;
        SELECT count(*) INTO status_events FROM oms_meter_status_events;
    END IF;
END
$$;

-- The guard reads each statement's parse tree (src/api/drop_guard.rs): it refuses a DROP
-- EXTENSION naming this extension, a DROP SCHEMA ... CASCADE of its schema and a DROP OWNED BY its
-- owner while the tables hold data, and lets every other statement through.
-- (Bound to the library the rest of this release is: each release has its own, named by version.)
DO $bind$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION @extschema@.oms_guard_drop() RETURNS event_trigger LANGUAGE c '
                   'SET search_path = @extschema@, pg_catalog, pg_temp AS %L, %L',
                   (SELECT probin FROM pg_catalog.pg_proc WHERE oid = '@extschema@.oms_uuid_v7()'::pg_catalog.regprocedure),
                   'oms_guard_drop_wrapper');
END
$bind$;

CREATE EVENT TRIGGER oms_correlation_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.oms_guard_drop();

-- Detaches every data table and sequence from the extension so that DROP EXTENSION leaves them.
-- Their defaults stop calling the extension's uuid function (gen_random_uuid() instead), and the
-- seeded tables lose their restore-merge triggers, which belong to the extension.
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
        WHERE c.relkind IN ('r', 'p', 'S')
        ORDER BY c.relkind DESC
    LOOP
        IF member.relkind IN ('r', 'p') THEN
            EXECUTE (SELECT coalesce(string_agg(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.gen_random_uuid()',
                                              member.rel, a.attname), '; '), 'SELECT 1')
                     FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                     WHERE ad.adrelid = member.rel AND pg_get_expr(ad.adbin, ad.adrelid) LIKE '%oms_uuid_v7()%');
            EXECUTE (SELECT coalesce(string_agg(format('DROP TRIGGER %I ON %s', t.tgname, member.rel), '; '), 'SELECT 1')
                     FROM pg_trigger t WHERE t.tgrelid = member.rel AND NOT t.tgisinternal);
            EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %s', member.rel);
        ELSE
            EXECUTE format('ALTER EXTENSION oms_correlation DROP SEQUENCE %s', member.rel);
        END IF;
        kept := kept + 1;
    END LOOP;
    RETURN kept;
END
$$;
--@drop-guard-end

-- 13. Finishing an adoption: what CREATE EXTENSION leaves for later, online (new).
--@finish-adoption-begin
-- Finishing an adoption (README, "Adopting a legacy database"). CREATE EXTENSION adopts a legacy
-- database in seconds because it rewrites nothing; what a rewrite would take is left to this
-- procedure, which a DBA runs afterwards, online, in committed steps with progress notices:
--
--   CALL oms_finish_adoption();
--
--   1. legacy timeline entries and sources get the operations API's column values (event_description,
--      event_timestamp, status; event_timestamp, confidence_weight), in batches of batch_rows;
--   2. each hash-partitioned legacy table (kaifa_events, kaifa_event_payloads) becomes a plain
--      table of the extension's shape: a copy fed in batches while a trigger mirrors the writes
--      consumers make meanwhile, then a swap under a short lock (keys, indexes, triggers, grants,
--      the views that read it, foreign keys from and to it), then the foreign keys validated
--      without blocking writes.
-- Afterwards pg_dump / pg_restore restores the database whole, as it does a fresh install. Run it
-- again after an interruption: every step picks up where it stopped. On a database that needs
-- nothing it does nothing. It needs a superuser, as CREATE EXTENSION does.
--
-- A procedure that commits cannot have a SET clause, so it pins no search_path: every name in it
-- is qualified (the #[pg_test] on pinned search paths names it as the one exception).
CREATE PROCEDURE @extschema@.oms_finish_adoption(batch_rows integer DEFAULT 20000)
LANGUAGE plpgsql
AS $procedure$
DECLARE
    home constant text := (SELECT n.nspname FROM pg_catalog.pg_namespace n
                           JOIN pg_catalog.pg_extension e ON e.extnamespace = n.oid WHERE e.extname = 'oms_correlation');
    step record;
    last_id uuid;
    upper_id uuid;
    done bigint;
    total bigint;
    moved bigint;
BEGIN
    -- 1. The operations API's columns on rows written before the extension.
    FOR step IN
        SELECT * FROM (VALUES
            ('oms_event_timeline',
             'event_description = coalesce(event_description, description), '
             'event_timestamp = coalesce(event_timestamp, "timestamp"), '
             'status = coalesce(status, (SELECT o.status FROM %1$I.oms_outage_events o WHERE o.id = outage_event_id))',
             'event_timestamp IS NULL OR event_description IS DISTINCT FROM description OR status IS NULL'),
            ('oms_event_sources',
             'event_timestamp = coalesce(event_timestamp, detected_at), '
             'confidence_weight = coalesce(confidence_weight, correlation_weight)',
             'event_timestamp IS NULL OR (confidence_weight IS NULL AND correlation_weight IS NOT NULL)')) AS s(table_name, assignments, needs)
    LOOP
        EXECUTE format('SELECT count(*) FROM %I.%I WHERE %s', home, step.table_name, step.needs) INTO total;
        CONTINUE WHEN total = 0;
        last_id := '00000000-0000-0000-0000-000000000000';
        done := 0;
        LOOP
            EXECUTE format('SELECT (array_agg(id ORDER BY id DESC))[1] FROM (SELECT id FROM %I.%I WHERE id > $1 ORDER BY id LIMIT $2) AS batch',
                           home, step.table_name) INTO upper_id USING last_id, batch_rows;
            EXIT WHEN upper_id IS NULL;
            EXECUTE format('UPDATE %2$I.%3$I SET ' || step.assignments || ' WHERE id > $1 AND id <= $2 AND (%4$s)',
                           home, home, step.table_name, step.needs) USING last_id, upper_id;
            GET DIAGNOSTICS moved = ROW_COUNT;
            done := done + moved;
            last_id := upper_id;
            COMMIT;
            RAISE NOTICE 'oms_finish_adoption: %: % of % rows filled in', step.table_name, done, total;
        END LOOP;
    END LOOP;

    -- 2. The partitioned legacy tables, messages first (their payloads refer to them).
    FOR step IN
        SELECT c.relname::text AS table_name FROM pg_catalog.pg_class c
        WHERE c.relnamespace = home::regnamespace AND c.relname IN ('kaifa_events', 'kaifa_event_payloads')
          AND c.relkind = 'p'
        ORDER BY c.relname = 'kaifa_events' DESC
    LOOP
        CALL @extschema@.oms_unpartition(step.table_name, batch_rows);
    END LOOP;
END
$procedure$;

-- Mirrors a row written to a table being unpartitioned into its copy (TG_ARGV: the copy, and the
-- SET list of an upsert of all its columns).
CREATE FUNCTION @extschema@.oms_mirror_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('DELETE FROM %s WHERE id = $1', TG_ARGV[0]) USING OLD.id;
    ELSE
        EXECUTE format('INSERT INTO %s SELECT ($1).* ON CONFLICT (id) DO UPDATE SET %s', TG_ARGV[0], TG_ARGV[1])
            USING NEW;
    END IF;
    RETURN NULL;
END
$$;

-- One partitioned table into a plain one (step 2 of oms_finish_adoption).
CREATE PROCEDURE @extschema@.oms_unpartition(table_name text, batch_rows integer)
LANGUAGE plpgsql
AS $procedure$
DECLARE
    home constant text := (SELECT n.nspname FROM pg_catalog.pg_namespace n
                           JOIN pg_catalog.pg_extension e ON e.extnamespace = n.oid WHERE e.extname = 'oms_correlation');
    copy_name constant text := 'oms_unpartitioned_' || table_name;
    original regclass;
    copy_rel regclass;
    part record;
    item record;
    last_id uuid;
    upper_id uuid;
    done bigint := 0;
    total bigint;
    copied bigint;
    acl aclitem[];
    upsert text;
    references_in text[];
    references_out text[];
    triggers text[];
    indexes text[];
    views jsonb;
BEGIN
    original := format('%I.%I', home, table_name)::regclass;
    -- a. The copy, and the mirror that keeps it up with writes from now on (an interrupted run
    --    finds both and goes on).
    IF to_regclass(format('%I.%I', home, copy_name)) IS NULL THEN
        EXECUTE format('CREATE TABLE %1$I.%2$I (LIKE %3$s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       home, copy_name, original);
        EXECUTE format('ALTER TABLE %I.%I ADD PRIMARY KEY (id)', home, copy_name);
        SELECT string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum) INTO upsert
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = original AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE format('CREATE TRIGGER oms_mirror_to_copy AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION %I.oms_mirror_row(%L, %L)',
                       original, home, format('%I.%I', home, copy_name), upsert);
    END IF;
    copy_rel := format('%I.%I', home, copy_name)::regclass;
    COMMIT;

    -- b. The rows already there, a batch at a time, partition by partition in key order.
    EXECUTE format('SELECT count(*) FROM %s', original) INTO total;
    FOR part IN SELECT i.inhrelid::regclass AS rel FROM pg_catalog.pg_inherits i WHERE i.inhparent = original LOOP
        last_id := '00000000-0000-0000-0000-000000000000';
        LOOP
            EXECUTE format('SELECT (array_agg(id ORDER BY id DESC))[1] FROM (SELECT id FROM %s WHERE id > $1 ORDER BY id LIMIT $2) AS batch', part.rel)
                INTO upper_id USING last_id, batch_rows;
            EXIT WHEN upper_id IS NULL;
            EXECUTE format('INSERT INTO %s SELECT * FROM %s WHERE id > $1 AND id <= $2 ON CONFLICT (id) DO NOTHING',
                           copy_rel, part.rel) USING last_id, upper_id;
            GET DIAGNOSTICS copied = ROW_COUNT;
            done := done + copied;
            last_id := upper_id;
            COMMIT;
            RAISE NOTICE 'oms_finish_adoption: %: % of % rows copied', table_name, done, total;
        END LOOP;
    END LOOP;

    -- c. The swap, under one lock of the table and every table whose keys point at it (those
    --    first, the order a consumer's insert takes them).
    EXECUTE (SELECT 'LOCK TABLE ' || string_agg(rel, ', ' ORDER BY ord) || ' IN ACCESS EXCLUSIVE MODE'
             FROM (SELECT DISTINCT k.conrelid::regclass::text AS rel, 0 AS ord FROM pg_catalog.pg_constraint k
                   WHERE k.confrelid = original AND k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> original
                   UNION ALL SELECT original::text, 1) AS locked);
    EXECUTE format('INSERT INTO %s SELECT * FROM %s ON CONFLICT (id) DO NOTHING', copy_rel, original);
    EXECUTE format('SELECT (SELECT count(*) FROM %s) - (SELECT count(*) FROM %s)', original, copy_rel) INTO copied;
    IF copied <> 0 THEN
        RAISE EXCEPTION 'oms_finish_adoption: % and its copy differ by % rows; nothing was swapped', table_name, copied;
    END IF;

    -- What the table carries that the copy must carry too.
    SELECT c.relacl INTO acl FROM pg_catalog.pg_class c WHERE c.oid = original;
    -- (A key from a partitioned table cannot be added NOT VALID: it is checked at once.)
    SELECT coalesce(array_agg(format('ALTER TABLE %s ADD CONSTRAINT %I %s%s', k.conrelid::regclass, k.conname,
                                     pg_catalog.pg_get_constraintdef(k.oid),
                                     CASE WHEN c.relkind = 'p' THEN '' ELSE ' NOT VALID' END)), '{}')
        INTO references_in
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
    WHERE k.confrelid = original AND k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> original;
    SELECT coalesce(array_agg(format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s NOT VALID', home, table_name, k.conname,
                                     pg_catalog.pg_get_constraintdef(k.oid))), '{}')
        INTO references_out
    FROM pg_catalog.pg_constraint k WHERE k.conrelid = original AND k.contype = 'f' AND k.conparentid = 0;
    SELECT coalesce(array_agg(pg_catalog.pg_get_triggerdef(t.oid)), '{}') INTO triggers
    FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = original AND NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgname <> 'oms_mirror_to_copy';
    SELECT coalesce(array_agg(replace(pg_catalog.pg_get_indexdef(x.indexrelid), ' ON ONLY ', ' ON ')), '{}') INTO indexes
    FROM pg_catalog.pg_index x
    WHERE x.indrelid = original AND NOT x.indisprimary
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid);
    -- The views that read it, with the views on them, shallowest first.
    WITH RECURSIVE dependent AS (
        SELECT DISTINCT r.ev_class AS view, 1 AS depth FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
        WHERE d.refobjid = original AND r.ev_class <> original
        UNION
        SELECT r.ev_class, dependent.depth + 1 FROM dependent
        JOIN pg_catalog.pg_depend d ON d.refobjid = dependent.view
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
        WHERE r.ev_class <> dependent.view AND dependent.depth < 20
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'name', v.view::regclass::text, 'kind', c.relkind, 'definition', pg_catalog.pg_get_viewdef(v.view),
               'acl', coalesce(c.relacl::text[], '{}'), 'owner', c.relowner::regrole::text,
               'member', EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass
                                 AND e.objid = v.view AND e.deptype = 'e'))
             ORDER BY v.depth), '[]')
        INTO views
    FROM (SELECT view, max(depth) AS depth FROM dependent GROUP BY view) AS v
    JOIN pg_catalog.pg_class c ON c.oid = v.view;

    FOR item IN SELECT * FROM jsonb_array_elements(views) WITH ORDINALITY AS v(view, n) ORDER BY n DESC LOOP
        IF (item.view ->> 'member')::boolean THEN
            EXECUTE format('ALTER EXTENSION oms_correlation DROP VIEW %s', item.view ->> 'name');
        END IF;
        EXECUTE format('DROP %s %s', CASE item.view ->> 'kind' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       item.view ->> 'name');
    END LOOP;
    FOR item IN
        SELECT k.conrelid::regclass AS rel, k.conname FROM pg_catalog.pg_constraint k
        WHERE k.confrelid = original AND k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> original
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', item.rel, item.conname);
    END LOOP;

    -- The partitioned table goes (every row is in the copy); the copy takes its name and place.
    EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %s', original);
    EXECUTE format('DROP TABLE %s', original);
    EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', home, copy_name, table_name);
    EXECUTE format('ALTER TABLE %I.%I RENAME CONSTRAINT %I TO %I', home, table_name, copy_name || '_pkey',
                   table_name || '_pkey');
    EXECUTE format('DROP TRIGGER IF EXISTS oms_mirror_to_copy ON %I.%I', home, table_name);
    EXECUTE format('ALTER EXTENSION oms_correlation ADD TABLE %I.%I', home, table_name);
    -- pg_extension_config_dump() works only inside CREATE EXTENSION; this is what it records (a
    -- superuser's catalog update, as CREATE EXTENSION of this extension needs a superuser anyway).
    UPDATE pg_catalog.pg_extension
    SET extconfig = pg_catalog.array_append(extconfig, format('%I.%I', home, table_name)::regclass::oid),
        extcondition = pg_catalog.array_append(extcondition, '')
    WHERE extname = 'oms_correlation';
    FOREACH upsert IN ARRAY indexes || triggers || references_out || references_in LOOP
        EXECUTE upsert;
    END LOOP;
    -- The key the partitioning forbade (adoption made it a plain index).
    IF table_name = 'kaifa_events' THEN
        EXECUTE format('ALTER TABLE %I.kaifa_events ADD CONSTRAINT kaifa_events_delivery_key_key UNIQUE (delivery_key)',
                       home);
        EXECUTE format('DROP INDEX IF EXISTS %I.kaifa_events_delivery_key_idx', home);
    END IF;
    FOR item IN SELECT a.privilege_type, a.grantee, a.is_grantable FROM pg_catalog.aclexplode(acl) AS a LOOP
        EXECUTE format('GRANT %s ON %I.%I TO %s%s', item.privilege_type, home, table_name,
                       CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                       CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    FOR item IN SELECT * FROM jsonb_array_elements(views) WITH ORDINALITY AS v(view, n) ORDER BY n LOOP
        EXECUTE format('CREATE %s %s AS %s', CASE item.view ->> 'kind' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       item.view ->> 'name', item.view ->> 'definition');
        EXECUTE format('ALTER %s %s OWNER TO %s', CASE item.view ->> 'kind' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       item.view ->> 'name', item.view ->> 'owner');
        IF (item.view ->> 'member')::boolean THEN
            EXECUTE format('ALTER EXTENSION oms_correlation ADD VIEW %s', item.view ->> 'name');
        END IF;
        CONTINUE WHEN jsonb_array_length(item.view -> 'acl') = 0;
        FOR part IN
            SELECT a.privilege_type, a.grantee, a.is_grantable
            FROM pg_catalog.aclexplode(ARRAY(SELECT jsonb_array_elements_text(item.view -> 'acl'))::aclitem[]) AS a
        LOOP
            EXECUTE format('GRANT %s ON %s TO %s', part.privilege_type, item.view ->> 'name',
                           CASE WHEN part.grantee = 0 THEN 'PUBLIC' ELSE part.grantee::regrole::text END);
        END LOOP;
    END LOOP;
    COMMIT;
    RAISE NOTICE 'oms_finish_adoption: % is a plain table of % rows', table_name, total;

    -- d. The keys, checked against the rows without holding up writes.
    FOR item IN
        SELECT k.conrelid::regclass AS rel, k.conname FROM pg_catalog.pg_constraint k
        WHERE NOT k.convalidated AND k.contype = 'f' AND k.conparentid = 0
          AND (k.confrelid = format('%I.%I', home, table_name)::regclass
               OR k.conrelid = format('%I.%I', home, table_name)::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', item.rel, item.conname);
        COMMIT;
    END LOOP;
END
$procedure$;
--@finish-adoption-end

-- 14. The legacy correlation entry point (new).
--@correlate-events-begin
-- oms_correlate_events (SPEC §5.9): the legacy correlation entry point. The consumers call it
-- through the operations API right after each ingest, with these ids (LEGACY_SCHEMA.md): SCADA
-- 'scada_<scada_events.id>', ONU the payload's eventId, Kaifa the payload's event_id or else
-- 'kaifa_<kaifa_events.id>', call center 'cc_<callcenter_tickets.id>'.
--
-- The ingest call has already correlated an event the extension stored, so for those it only
-- answers which outage that was (NULL: none, or a payload rejected as bad input) and writes
-- nothing. An id the extension never stored (an external system's, an operator's) keeps the
-- legacy behaviour: it joins an open outage within the radius and the window, or opens one at its
-- coordinates; once per source type and id. Without coordinates there is nowhere to put it: NULL.
CREATE FUNCTION @extschema@.oms_correlate_events(
    p_event_type varchar, p_source_type varchar, p_source_event_id varchar, p_timestamp timestamptz,
    p_latitude numeric, p_longitude numeric, p_correlation_window_minutes integer,
    p_spatial_radius_meters integer)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    v_source text := lower(replace(coalesce(p_source_type, ''), '-', '_'));
    v_id text := coalesce(p_source_event_id, '');
    stored_key text;
    stored boolean := false;
    outage uuid;
    window_minutes integer := coalesce(p_correlation_window_minutes, 30);
    radius integer := coalesce(p_spatial_radius_meters, 1000);
    weight numeric;
    opened boolean := false;
BEGIN
    IF v_source = 'callcenter' THEN
        v_source := 'call_center';
    END IF;
    -- 1. An event the extension stored: the source key its ingest recorded it under.
    IF v_source = 'scada' AND v_id ~* '^scada_' THEN
        IF substr(v_id, 7) !~* '^[0-9a-f-]{36}$' THEN
            RETURN NULL;  -- the ingest returned no id: a rejected payload
        END IF;
        SELECT true, e.outage_event_id INTO stored, outage FROM scada_events e WHERE e.id = substr(v_id, 7)::uuid;
        IF stored THEN
            RETURN outage;
        END IF;
    ELSIF v_source = 'call_center' AND v_id ~* '^cc_' THEN
        IF substr(v_id, 4) !~* '^[0-9a-f-]{36}$' THEN
            RETURN NULL;
        END IF;
        SELECT t.external_ticket_id INTO stored_key FROM callcenter_tickets t WHERE t.id = substr(v_id, 4)::uuid;
    ELSIF v_source = 'kaifa' AND v_id ~* '^kaifa_' THEN
        IF substr(v_id, 7) !~* '^[0-9a-f-]{36}$' THEN
            RETURN NULL;
        END IF;
        SELECT substr(k.delivery_key, strpos(k.delivery_key, ':') + 1) INTO stored_key FROM kaifa_events k WHERE k.id = substr(v_id, 7)::uuid;
    ELSIF v_source = 'kaifa' THEN
        SELECT substr(k.delivery_key, strpos(k.delivery_key, ':') + 1) INTO stored_key
        FROM kaifa_event_payloads p JOIN kaifa_events k ON k.id = p.event_id
        WHERE p.event_id_value = v_id AND k.delivery_key IS NOT NULL LIMIT 1;
    ELSIF v_source = 'onu' THEN
        SELECT e.event_id INTO stored_key FROM onu_events e WHERE e.event_id = v_id;
    END IF;
    IF stored_key IS NOT NULL THEN
        SELECT s.outage_event_id INTO outage FROM oms_event_sources s
        JOIN oms_outage_events o ON o.id = s.outage_event_id
        WHERE s.source_type = v_source AND s.source_event_id = stored_key
        ORDER BY o.first_detected_at DESC LIMIT 1;
        RETURN outage;
    END IF;
    -- A payload the ingest rejected: nothing to correlate.
    IF EXISTS (SELECT FROM oms_rejected_events r
               WHERE r.source = v_source
                 AND (r.raw_payload ->> 'eventId' = v_id OR r.raw_payload #>> '{payload,event_id}' = v_id
                      OR r.raw_payload ->> 'ticketId' = v_id)) THEN
        RETURN NULL;
    END IF;

    -- 2. An external event: once per source type and id.
    PERFORM pg_advisory_xact_lock(1869440366, hashtext(v_source || ':' || v_id));
    SELECT s.outage_event_id INTO outage FROM oms_event_sources s
    WHERE s.source_type = v_source AND s.source_event_id = v_id LIMIT 1;
    IF outage IS NOT NULL OR p_latitude IS NULL OR p_longitude IS NULL THEN
        RETURN outage;
    END IF;
    SELECT o.id INTO outage FROM oms_outage_events o
    WHERE o.status IN ('detected', 'confirmed', 'in_progress')
      AND o.event_latitude IS NOT NULL AND o.event_longitude IS NOT NULL
      AND o.first_detected_at BETWEEN p_timestamp - make_interval(mins => window_minutes)
                                  AND p_timestamp + make_interval(mins => window_minutes)
      AND haversine_distance_meters(o.event_latitude, o.event_longitude, p_latitude, p_longitude) <= radius
    ORDER BY haversine_distance_meters(o.event_latitude, o.event_longitude, p_latitude, p_longitude)
    LIMIT 1
    FOR UPDATE;
    weight := coalesce(oms_source_weight(v_source), 0.5);
    IF outage IS NULL THEN
        INSERT INTO oms_outage_events (event_id, event_type, status, severity, confidence_score, description,
                                       event_latitude, event_longitude, first_detected_at)
        VALUES ('OMS_EXT_' || upper(v_source) || '_' || to_char(coalesce(p_timestamp, now()) AT TIME ZONE 'UTC',
                                                              'YYYYMMDD"T"HH24MISS')
                    || '_' || substr(md5(v_source || ':' || v_id), 1, 16),
                coalesce(nullif(p_event_type, ''), 'outage'), 'detected', 'medium', weight,
                format('Reported by %s event %s', v_source, v_id), p_latitude, p_longitude, coalesce(p_timestamp, now()))
        RETURNING oms_outage_events.id INTO outage;
        opened := true;
        INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp",
                                        event_description, event_timestamp, created_by)
        VALUES (outage, 'outage_detected', 'detected', format('Reported by %s event %s', v_source, v_id), v_source,
                coalesce(p_timestamp, now()), format('Reported by %s event %s', v_source, v_id), coalesce(p_timestamp, now()),
                'oms_correlate_events');
    ELSE
        INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp",
                                        event_description, event_timestamp, created_by)
        SELECT outage, 'source_joined', o.status, format('%s event %s joined', v_source, v_id), v_source,
               coalesce(p_timestamp, now()), format('%s event %s joined', v_source, v_id), coalesce(p_timestamp, now()),
               'oms_correlate_events'
        FROM oms_outage_events o WHERE o.id = outage;
    END IF;
    INSERT INTO oms_event_sources (outage_event_id, source_type, source_event_id, source_table, correlation_weight,
                                   detected_at, event_timestamp, confidence_weight)
    VALUES (outage, v_source, v_id, 'oms_correlate_events', weight, coalesce(p_timestamp, now()), coalesce(p_timestamp, now()),
            weight)
    ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING;
    -- Confidence: 1 - prod(1 - w) over the outage's sources (SPEC §5.2).
    UPDATE oms_outage_events o SET
        confidence_score = (SELECT CASE WHEN bool_or(w >= 1) THEN 1 ELSE 1 - exp(sum(ln(1 - least(w, 0.9999)))) END
                            FROM (SELECT correlation_weight AS w FROM oms_event_sources
                                  WHERE outage_event_id = o.id AND correlation_weight IS NOT NULL) AS weights),
        last_updated_at = now()
    WHERE o.id = outage;
    PERFORM oms_announce_outages(ARRAY[outage], ARRAY[CASE WHEN opened THEN 'opened' ELSE 'joined' END],
                                 v_source, v_id);
    RETURN outage;
END
$$;
--@correlate-events-end

-- 15. The outage stream: one message shape for every change, and operators' status changes (new).
--@stream-begin
-- The outage stream (SPEC §5.8): every change to an outage is announced on channel 'oms_outage',
-- delivered at commit. This function is the one place that builds the message, from the outage
-- row as the change left it, so every announcement has the same keys; fixed-width fields keep it
-- far below NOTIFY's 8000 bytes. The engine calls it at the end of each ingest
-- (src/correlation/stream.rs); the trigger below calls it for status changes made by others.
CREATE FUNCTION @extschema@.oms_announce_outages(
    p_outage_ids uuid[], p_changes text[], p_source_type text, p_source_event_id text)
RETURNS void
-- PL/pgSQL keeps its plan for the session (a SQL function with a pinned search_path is planned
-- again at every call).
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('oms_outage', json_build_object(
        'outage_event_id', o.id, 'event_id', o.event_id, 'change', c.change, 'status', o.status,
        'scope', o.scope, 'device_key', o.device_key, 'substation_id', o.substation_id,
        'feeder_id', o.feeder_id, 'dp_id', o.dp_id,
        'affected_customers_count', o.affected_customers_count, 'customers_out', o.customers_out,
        'confidence', o.confidence_score, 'first_detected_at', o.first_detected_at,
        'actual_restoration_time', o.actual_restoration_time, 'merged_into', o.merged_into,
        'parent_outage_id', o.parent_outage_id, 'source_type', left(p_source_type, 32),
        'source_event_id', left(p_source_event_id, 255))::text)
    FROM unnest(p_outage_ids, p_changes) WITH ORDINALITY AS c(id, change, n)
    -- By key, one outage at a time: the plan is generic, and a join could scan them all.
    CROSS JOIN LATERAL (SELECT * FROM oms_outage_events WHERE id = c.id) AS o
    ORDER BY c.n;
END
$$;

-- An operator (through the operations API's UPDATE) or a DBA setting an outage's status is an
-- outage change too. The engine's own status changes are announced by the engine, once.
CREATE FUNCTION @extschema@.oms_announce_status_set() RETURNS trigger
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
-- minutes. The engine closes its own outages itself. A role that sets statuses needs UPDATE on
-- oms_outage_meters and oms_outage_customers as well (this trigger runs with its rights).
CREATE FUNCTION @extschema@.oms_close_outage_set_by_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    ended timestamptz := coalesce(NEW.actual_restoration_time, now());
BEGIN
    IF oms_engine_is_writing() THEN
        RETURN NULL;
    END IF;
    UPDATE oms_outage_meters SET on_at = greatest(off_at, ended) WHERE outage_id = NEW.id AND on_at IS NULL;
    UPDATE oms_outage_customers SET restored_at = ended WHERE outage_id = NEW.id AND restored_at IS NULL;
    UPDATE oms_outage_events
    SET customers_out = 0,
        actual_restoration_time = CASE WHEN NEW.status IN ('restored', 'cleared') THEN ended
                                       ELSE actual_restoration_time END
    WHERE id = NEW.id
      AND (customers_out IS DISTINCT FROM 0 OR (NEW.status IN ('restored', 'cleared') AND actual_restoration_time IS NULL));
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_outage_closed_by_status
    AFTER UPDATE OF status ON @extschema@.oms_outage_events
    FOR EACH ROW WHEN (OLD.status IN ('detected', 'confirmed', 'in_progress')
                       AND NEW.status IN ('restored', 'cleared', 'cancelled'))
    EXECUTE FUNCTION @extschema@.oms_close_outage_set_by_status();
--@stream-end

-- 16. Reliability: storm mode's rate and switches, interruption classes, flapping meters, IEEE 1366
-- indices (new).
ALTER TABLE @extschema@.oms_storm_mode_config
    ADD COLUMN rate_window_seconds integer DEFAULT 60 CHECK (rate_window_seconds > 0),
    ADD COLUMN cooldown_seconds integer DEFAULT 600 CHECK (cooldown_seconds >= 0);

-- Storm mode's count of power-off signals (src/correlation/storm.rs): a row per second and per
-- shard of backends, so that concurrent sessions do not queue on one row. Rows older than a day are
-- pruned as signals arrive.
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
    threshold_per_minute    integer
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_storm_mode_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_signal_rate', '');

--@reliability-begin
-- Reliability (SPEC §5.5, §5.7, §5.10): what a utility reports to its regulator, computed from the
-- outage records at read time.

-- The momentary window (setting oms_correlation.momentary_window; 5 minutes before the library is
-- loaded in the session).
CREATE FUNCTION @extschema@.oms_momentary_window() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('oms_correlation.momentary_window', true), '')::interval,
                    interval '5 minutes')
$$;

-- An outage's class under IEEE 1366 (SPEC §5.5), right at read time: momentary when all its meters
-- were back within the window of its start, sustained once it has lasted longer, pending until
-- then. Merged and cancelled outages are none: they are not interruptions of their own.
CREATE FUNCTION @extschema@.oms_outage_class(p_status text, p_started timestamptz, p_ended timestamptz,
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
CREATE VIEW @extschema@.oms_outage_interruptions AS
SELECT o.id, o.event_id, o.scope, o.device_key, o.status,
       @extschema@.oms_outage_class(o.status, o.first_detected_at, o.actual_restoration_time) AS interruption_class,
       o.first_detected_at AS started_at, o.actual_restoration_time AS ended_at,
       coalesce(o.actual_restoration_time, now()) - o.first_detected_at AS duration,
       o.affected_customers_count, o.customers_out, o.substation_id, o.feeder_id, o.dp_id, o.parent_outage_id
FROM @extschema@.oms_outage_events o
WHERE o.status NOT IN ('merged', 'cancelled');

-- Storm mode in one place (SPEC §5.6): whether it is on, since when, the rate now, the thresholds
-- and the switches so far (each one is a row of oms_storm_mode_log).
CREATE VIEW @extschema@.oms_storm_mode AS
SELECT c.is_active AS active, c.activated_at, c.deactivated_at,
       round((SELECT coalesce(sum(r.signals), 0) FROM @extschema@.oms_signal_rate r
               WHERE r.bucket > clock_timestamp() - make_interval(secs => c.rate_window_seconds))
             * 60.0 / c.rate_window_seconds, 2) AS rate_per_minute,
       c.auto_activation_threshold AS enter_per_minute, c.deactivation_threshold_per_minute AS exit_per_minute,
       c.cooldown_seconds, c.rate_window_seconds, c.window_multiplier,
       (SELECT count(*) FROM @extschema@.oms_storm_mode_log) AS switches,
       (SELECT max(l.switched_at) FROM @extschema@.oms_storm_mode_log l) AS last_switch_at
FROM @extschema@.oms_storm_mode_config c
WHERE c.config_name = 'default';

-- Whether a meter is flapping at p_at (SPEC §5.7): more than p_threshold power changes within an
-- hour, and no quiet hour (an hour without a change) since. A change at p_at counts. It looks back
-- a day: a meter whose last burst is older than that counts again. The engine asks it for every
-- meter of a power-off signal, and the view below for every meter that changed in the last hour.
-- It reads at most the day's last 24 x (p_threshold + 1) + 1 changes: that many changes in a day
-- hold an hour of more than p_threshold, so a meter with more is flapping whatever came before.
CREATE FUNCTION @extschema@.oms_meter_is_flapping(p_meter uuid, p_at timestamptz, p_threshold integer)
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
CREATE VIEW @extschema@.oms_flapping_meters AS
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
--   count nowhere.
-- - With p_exclude_major_event_days, days whose system SAIDI exceeds T_MED = exp(α + 2.5 β) (α, β:
--   mean and standard deviation of ln(daily SAIDI) over the five years before p_to) are left out.
CREATE FUNCTION @extschema@.oms_reliability_indices(
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
              AND om.off_at >= p_to - interval '5 years' AND om.off_at < p_to
            GROUP BY 1, 2
        ), daily AS (
            SELECT (s.off_at AT TIME ZONE 'UTC')::date AS day,
                   sum(date_part('epoch', s.on_at - s.off_at) / 60)::numeric / (SELECT n FROM served) AS daily_saidi
            FROM spans s GROUP BY 1
        ), beta AS MATERIALIZED (  -- once, not once per day
            SELECT exp(avg(ln(daily_saidi)) + 2.5 * stddev_samp(ln(daily_saidi))) AS t_med
            FROM daily WHERE daily_saidi > 0
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
