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
