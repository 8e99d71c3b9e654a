-- oms_correlation 0.3.0 -> 0.4.0.
-- Fresh installs get the same objects from sql/schema and sql/functions;
-- tests/integration/test_upgrade.py checks that both paths agree, from every released version.
\echo Use "ALTER EXTENSION oms_correlation UPDATE TO '0.4.0'" to load this file. \quit

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
CREATE OR REPLACE FUNCTION @extschema@."oms_storm_mode_refresh"() RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
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
