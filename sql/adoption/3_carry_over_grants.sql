-- Adopting a legacy database, step 3 of 3: runs last (see 1_set_aside.sql for the whole plan).
--
-- Whoever could call a legacy function or read a legacy view can call or read ours, so consumers
-- keep working under their own roles:
--   - explicit grants are granted again;
--   - a legacy function left at the default (EXECUTE for PUBLIC) ran with its caller's rights, so
--     only roles that could write its source table could really use it. Our ingest functions run
--     with the extension owner's rights and are not public (SPEC §7): those roles get EXECUTE.
--     Our helper functions are public, like the old ones.
DO $carry_over$
DECLARE
    home_ns constant regnamespace := '@extschema@'::regnamespace;
    home constant text := (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = '@extschema@'::regnamespace);
    written_table constant jsonb := '{
        "insert_scada_event_with_meter_check": "scada_events", "insert_scada_event_from_json": "scada_events",
        "insert_onu_event_from_json_with_meter_sync": "onu_events", "insert_onu_event_from_json": "onu_events",
        "insert_kaifa_event_from_json_with_meter_sync": "kaifa_events", "insert_kaifa_event_from_json": "kaifa_events",
        "insert_callcenter_ticket_from_json_with_meter_link": "callcenter_tickets",
        "insert_callcenter_ticket_from_json": "callcenter_tickets"}';
    old record;
    ours oid;
    grantee text;
    owner_of_ours oid;
BEGIN
    IF to_regnamespace('oms_correlation_adoption') IS NULL THEN
        RETURN;  -- a fresh database
    END IF;
    FOR old IN SELECT * FROM oms_correlation_adoption.legacy_privileges LOOP
        IF old.object_kind = 'function' THEN
            SELECT p.oid, p.proowner INTO ours, owner_of_ours FROM pg_proc p
            WHERE p.pronamespace = home_ns AND p.proname = old.object_name
              AND pg_get_function_identity_arguments(p.oid) = old.identity_args;
            IF ours IS NULL THEN
                SELECT p.oid, p.proowner INTO ours, owner_of_ours FROM pg_proc p
                WHERE p.pronamespace = home_ns AND p.proname = old.object_name LIMIT 1;
            END IF;
            CONTINUE WHEN ours IS NULL;
            FOR grantee IN
                SELECT DISTINCT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END
                FROM aclexplode(old.acl) e
                WHERE e.privilege_type = 'EXECUTE' AND e.grantee <> owner_of_ours
                  AND (e.grantee <> 0 OR NOT written_table ? old.object_name)
                UNION
                -- The default ACL, or an explicit PUBLIC grant, on an ingest function.
                SELECT quote_ident(r.rolname) FROM pg_roles r
                WHERE written_table ? old.object_name
                  AND (old.acl IS NULL OR EXISTS (SELECT FROM aclexplode(old.acl) e
                                                  WHERE e.grantee = 0 AND e.privilege_type = 'EXECUTE'))
                  AND NOT r.rolsuper AND r.oid <> owner_of_ours AND r.rolname !~ '^pg_'
                  AND has_table_privilege(r.oid, format('%I.%I', home, written_table ->> old.object_name), 'INSERT')
            LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', ours::regprocedure, grantee);
                RAISE WARNING 'oms_correlation adoption: GRANT EXECUTE ON FUNCTION % TO %', ours::regprocedure, grantee;
            END LOOP;
        ELSE
            FOR grantee IN
                SELECT format('GRANT %s ON %I.%I TO %s', e.privilege_type, home, old.object_name,
                              CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END)
                FROM aclexplode(old.acl) e
                JOIN pg_class c ON c.relnamespace = home_ns AND c.relname = old.object_name
                WHERE e.grantee <> c.relowner
            LOOP
                EXECUTE grantee;
            END LOOP;
        END IF;
    END LOOP;
    DROP SCHEMA oms_correlation_adoption CASCADE;
END
$carry_over$;
