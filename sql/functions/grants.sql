-- The ingest functions run as the extension's owner (SECURITY DEFINER), so a consumer role needs
-- nothing but EXECUTE on them (SPEC §7); that EXECUTE is granted, not public.
REVOKE EXECUTE ON FUNCTION @extschema@.insert_scada_event_with_meter_check(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_onu_event_from_json_with_meter_sync(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_kaifa_event_from_json_with_meter_sync(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_callcenter_ticket_from_json_with_meter_link(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_scada_event_from_json(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_onu_event_from_json(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_kaifa_event_from_json(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.insert_callcenter_ticket_from_json(jsonb) FROM PUBLIC;
